"""A provider's own local Ray, its readiness probe, its jobs' environments and what a job leaves behind.

Two :class:`~provider.compute.LocalRayHead` run side by side here, as two providers on one machine do: each
must have a job API that runs jobs (a default Ray would give the second one a dashboard agent that cannot
bind its port). Jobs run through :class:`~provider.jobs.JobRunner` on them, with the session directory
known, so the test can check that nothing of a job stays after it ends. Dependencies are installed from a
wheel the test builds, never from PyPI.
"""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from blendr.errors import ComputeError
from blendr.payload import JobPayload, pack_workdir
from provider.compute import LocalRayHead
from provider.envs import EnvCache
from provider.jobs import JobEvent, JobRunner, submission_id_for

FAR = 4_000_000_000.0
PIN = "blendr-runtime-test-pin"


@pytest.fixture(scope="module")
def heads() -> Iterator[tuple[LocalRayHead, LocalRayHead]]:
    a = LocalRayHead(num_gpus=0, num_cpus=1, resources={PIN: 1000.0})
    b = LocalRayHead(num_gpus=0, num_cpus=1, resources={PIN: 1000.0})
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def runner_on(head: LocalRayHead, home: Path, **kw: object) -> JobRunner:
    return JobRunner(dashboard_address=head.dashboard_url, home=home, pin_resource=PIN, poll_s=0.2,
                     session_dir=head.session_dir, auth_token=head.token, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def runner(heads: tuple[LocalRayHead, LocalRayHead], tmp_path: Path) -> AsyncIterator[JobRunner]:
    r = runner_on(heads[0], tmp_path)
    yield r
    await r.close()


async def run_job(r: JobRunner, job_id: str, payload: JobPayload, timeout: float = 240.0) -> list[JobEvent]:
    await r.start(job_id, payload, gpus=0, deadline_unix=FAR)
    out = []

    async def collect() -> None:
        async for ev in r.events(job_id):
            out.append(ev)

    await asyncio.wait_for(collect(), timeout)
    return out


def tiny_wheel(dst: Path, value: int = 42) -> Path:
    """A pure-Python wheel ``blendr-tiny 0.1`` whose module says ``VALUE = value`` (built by hand: no network)."""
    dst.mkdir(parents=True, exist_ok=True)
    files = {
        "blendr_tiny/__init__.py": f"VALUE = {value}\n",
        "blendr_tiny-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: blendr-tiny\nVersion: 0.1\n",
        "blendr_tiny-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                           "Tag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "blendr_tiny-0.1.dist-info/RECORD,,\n"
    path = dst / "blendr_tiny-0.1-py3-none-any.whl"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in {**files, "blendr_tiny-0.1.dist-info/RECORD": record}.items():
            zf.writestr(name, text)
    path.write_bytes(buf.getvalue())
    return path


async def gone(leftovers: Callable[[], list[str]], timeout: float = 30.0) -> None:
    """Wait until ``leftovers()`` is empty (the runner sweeps a job's session files again seconds after it ends)."""
    deadline = time.monotonic() + timeout
    while left := leftovers():
        if time.monotonic() > deadline:
            pytest.fail(f"still on the provider {timeout:.0f} s after the job ended: {left}")
        await asyncio.sleep(0.2)


def session_leftovers(head: LocalRayHead, submission_id: str) -> list[str]:
    assert head.session_dir is not None
    session = head.session_dir.resolve()
    left = [str(p) for p in (session / "logs").glob(f"job-driver-{submission_id}*")]
    wd = session / "runtime_resources" / "working_dir_files"
    left += [str(p) for p in wd.glob("_ray_pkg_*")] if wd.exists() else []
    return left


async def test_two_local_heads_on_one_machine_both_run_jobs(heads: tuple[LocalRayHead, LocalRayHead],
                                                            tmp_path: Path) -> None:
    a, b = heads
    ports = {a.gcs_address, a.dashboard_url} & {b.gcs_address, b.dashboard_url}
    assert not ports and a.temp_dir != b.temp_dir
    ra, rb = runner_on(a, tmp_path / "a"), runner_on(b, tmp_path / "b")
    try:
        # Both job APIs really run a job (the second head's agent is not fighting the first one's port).
        await asyncio.gather(ra.probe(120.0), rb.probe(120.0))
        # A probe leaves nothing either: no record on Ray, no driver log.
        await gone(lambda: session_leftovers(a, "blendr-readiness-probe-") + session_leftovers(b, "blendr-readiness-probe-"))
    finally:
        await ra.close()
        await rb.close()


async def test_probe_of_a_dead_job_api_says_why(tmp_path: Path) -> None:
    from blendr.ports import free_ports

    r = JobRunner(dashboard_address=f"http://127.0.0.1:{free_ports(1)[0]}", home=tmp_path, request_timeout_s=5.0)
    try:
        with pytest.raises(ComputeError, match="cannot reach the Ray dashboard"):
            await r.probe(10.0)
    finally:
        await r.close()


async def test_job_base_environment_and_nothing_left_after_it(heads: tuple[LocalRayHead, LocalRayHead],
                                                              runner: JobRunner, tmp_path: Path) -> None:
    import sys

    work = tmp_path / "src"
    work.mkdir()
    (work / "main.py").write_text(
        "import os, sys, numpy, ray\n"
        "print('python', sys.executable)\n"
        "print('versions', sys.version_info[:2], numpy.__version__, ray.__version__)\n"
        "print('job', os.environ['BLENDR_JOB_ID'])\n")
    payload = JobPayload("python main.py", {}, pack_workdir(work))
    events = await run_job(runner, "job-base.1", payload)
    logs = [e.message for e in events if e.kind == "log"]
    assert events[-1].kind == "succeeded", events
    assert f"python {Path(sys.executable).parent}/python" in logs  # the agent's own interpreter environment
    assert "job job-base" in logs
    # Ray's record, the driver log, the unpacked working directory and our files are gone.
    sid = submission_id_for("job-base.1")
    await gone(lambda: session_leftovers(heads[0], sid))
    assert not (tmp_path / "jobs" / "job-base.1").exists()
    from ray.job_submission import JobSubmissionClient

    from provider.jobs import resolve_auth_token

    token = resolve_auth_token(heads[0].token)
    client = JobSubmissionClient(heads[0].dashboard_url, headers={"Authorization": f"Bearer {token}"} if token else None)
    # (Ray's supervisor may store the record again with its last status: the runner's later sweeps delete it)
    await gone(lambda: [j.submission_id for j in client.list_jobs() if j.submission_id == sid])


async def test_declared_dependencies_are_installed_for_the_job(runner: JobRunner, tmp_path: Path) -> None:
    work = tmp_path / "src"
    tiny_wheel(work / "wheels")
    (work / "requirements.txt").write_text("--no-index\n--find-links ./wheels\nblendr-tiny==0.1\n")
    (work / "main.py").write_text("import blendr_tiny, numpy, ray\nprint('tiny', blendr_tiny.VALUE)\n")
    events = await run_job(runner, "job-deps.1", JobPayload("python main.py", {}, pack_workdir(work)))
    assert events[-1].kind == "succeeded", events
    assert "tiny 42" in [e.message for e in events if e.kind == "log"]
    # Built for this job alone (it names the job's own files), and gone with it.
    assert not (tmp_path / "jobs" / "job-deps.1").exists()


async def test_failed_install_fails_the_job_with_pips_words_as_the_jobs_fault(runner: JobRunner,
                                                                              tmp_path: Path) -> None:
    work = tmp_path / "src"
    work.mkdir()
    (work / "requirements.txt").write_text("--no-index\n")
    payload = JobPayload("python -c 'print(1)'", {}, pack_workdir(work), pip=("blendr-no-such-package==9.9",))
    started = time.monotonic()
    events = await run_job(runner, "job-badpip.1", payload)
    end = events[-1]
    assert end.kind == "failed" and not end.provider_fault and "installing the job's dependencies failed" in end.message
    assert any("blendr-no-such-package" in e.message for e in events if e.kind == "log"), events
    assert time.monotonic() - started < 120
    assert not (tmp_path / "jobs" / "job-badpip.1").exists()
    assert not [p for p in (tmp_path / "envs").glob("*") if (p / ".blendr-env.json").exists()]


async def test_env_cache_shares_builds_and_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = EnvCache(tmp_path / "envs", max_envs=1)
    builds: list[Path] = []
    build = cache._build

    async def counted(target: Path, args: list[str], *, cwd: Path, key: str) -> None:
        builds.append(target)
        await build(target, args, cwd=cwd, key=key)

    cache._build = counted  # type: ignore[method-assign]
    work = tmp_path / "w"
    work.mkdir()
    # Requirements the base environment already satisfies: pip needs no index.
    a1, a2 = await asyncio.gather(cache.acquire(work, ["numpy"], tmp_path / "j1"),
                                  cache.acquire(work, ["numpy"], tmp_path / "j2"))
    assert a1 == a2 and a1.key and not a1.private and cache.cached() == [a1.key]
    assert len(builds) == 1  # two jobs with the same set at once: one build
    b = await cache.acquire(work, ["ray"], tmp_path / "j3")
    assert set(cache.cached()) == {a1.key, b.key}  # a1 is in use: never evicted under a running job
    cache.release(a1)
    cache.release(a2)
    cache.release(b)
    c = await cache.acquire(work, ["numpy", "ray"], tmp_path / "j4")
    assert cache.cached() == [c.key]
    again = await cache.acquire(work, ["numpy", "ray"], tmp_path / "j5")
    assert again == c and len(builds) == 3  # a cached set is not built again
    # A restarted provider re-attaching to a running job holds its env from the job's VIRTUAL_ENV.
    fresh = EnvCache(tmp_path / "envs", max_envs=1)
    assert fresh.adopt(str(c.bin_dir.parent)) == c and fresh.adopt("") is None
    assert fresh.adopt(str(tmp_path / "j1")) is None and fresh.adopt(str(tmp_path / "envs" / "nope")) is None
    assert fresh._in_use == {c.key: 1}
    import subprocess

    out = subprocess.run([str(c.bin_dir / "python"), "-c", "import numpy, ray; print('ok')"], capture_output=True,
                         text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr


async def test_install_time_is_bounded(tmp_path: Path) -> None:
    import socket

    # An index that accepts connections and never answers: pip would wait on it far longer than the limit.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    try:
        work = tmp_path / "w"
        work.mkdir()
        (work / "requirements.txt").write_text(f"--index-url http://127.0.0.1:{srv.getsockname()[1]}/simple\n"
                                               "blendr-tiny==0.1\n")
        cache = EnvCache(tmp_path / "envs", install_timeout_s=8.0)
        from provider.envs import EnvInstallError

        started = time.monotonic()
        with pytest.raises(EnvInstallError, match="ran past its 8 s limit"):
            await cache.acquire(work, [], tmp_path / "j")
        assert time.monotonic() - started < 30
        assert cache.cached() == []
    finally:
        srv.close()


def _kv(head: LocalRayHead, code: str) -> str:
    """Run ``code`` in a fresh process connected to ``head`` (a process holds one ray.init); its stdout."""
    import subprocess
    import sys

    prog = f"import ray\nfrom ray.experimental import internal_kv\nray.init(address={head.gcs_address!r})\n{code}\n"
    import os

    out = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, **head.auth_env})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


async def test_nothing_of_the_renters_reaches_ray_or_stays_after_the_job(
        heads: tuple[LocalRayHead, LocalRayHead], tmp_path: Path) -> None:
    """The renter's files and variables never go through Ray (no working-directory package, no variables in the
    job's record), and nothing of the job is left in Ray's session or the provider's home when it ends."""
    head = heads[1]
    r = runner_on(head, tmp_path / "home")
    try:
        work = tmp_path / "src"
        work.mkdir()
        (work / "main.py").write_text("print('ran ' + 'fine')  # SECRET-RENTER-CODE\n")
        events = await run_job(r, "job-gcs.1", JobPayload("python main.py", {"RENTER_SECRET": "SECRET-VAR"},
                                                          pack_workdir(work)))
        assert events[-1].kind == "succeeded", events
        assert "ran fine" in [e.message for e in events]
        assert _kv(head, "print(sorted(k for k in internal_kv._internal_kv_list('') if b'_ray_pkg_' in k))") == "[]"
        leftovers = [p for p in head.session_dir.rglob("*") if p.is_file() and p.stat().st_size < 50_000_000
                     and (b"SECRET-RENTER-CODE" in p.read_bytes() or b"SECRET-VAR" in p.read_bytes())]
        assert leftovers == []
        assert not (tmp_path / "home" / "jobs" / "job-gcs.1").exists()
    finally:
        await r.close()


PROVIDER_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from provider.compute import RayRuntime
from provider.gpus import cpu_device
from provider.jobs import JobRunner

async def main():
    rt = RayRuntime(address="", pin_resource=sys.argv[1], devices=[cpu_device()], use_gpu=False)
    info = await rt.start()
    head = rt.head
    runner = JobRunner(dashboard_address=rt.dashboard_address, home=Path(sys.argv[2]), pin_resource=sys.argv[1],
                       auth_token=head.token, session_dir=head.session_dir)
    try:
        await runner.probe(120.0)
    finally:
        await runner.close()
        temp = head.temp_dir
        await rt.close()
    print(json.dumps({"dashboard": rt.dashboard_address, "gcs": head.gcs_address, "temp": str(temp),
                      "temp_left": temp.exists(), "cpus": info.num_cpus}))

asyncio.run(main())
"""


async def test_two_provider_runtimes_on_one_machine_each_run_jobs(tmp_path: Path) -> None:
    """Two provider processes, each with RayRuntime's own local head, at once: both run a job, both clean up."""
    import json
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROVIDER_SCRIPT, f"blendr-two-{i}", str(tmp_path / f"p{i}"), env=env,
        cwd=Path(__file__).resolve().parents[2], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        for i in range(2)]
    outs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 400)
    results = []
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()[-3000:]
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    assert results[0]["dashboard"] != results[1]["dashboard"] and results[0]["gcs"] != results[1]["gcs"]
    assert not any(r["temp_left"] for r in results)


ORPHAN_SCRIPT = """
import json, sys, time
from provider.compute import LocalRayHead
head = LocalRayHead(num_gpus=0, resources={}, num_cpus=1)
head.start()
print(json.dumps({"dashboard": head.dashboard_url, "temp": str(head.temp_dir)}), flush=True)
time.sleep(3600)
"""


def _processes_under(path: str) -> list[int]:
    """Pids whose command line names ``path`` (the head's temp directory)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if path.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


async def test_a_killed_agent_leaves_no_ray_head_behind(tmp_path: Path) -> None:
    """An agent SIGKILLed (no atexit, no stop) takes its local head with it: no process, no temp directory."""
    import json
    import os
    import signal
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ORPHAN_SCRIPT, env=env, cwd=Path(__file__).resolve().parents[2],
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert agent.stdout is not None
        line = await asyncio.wait_for(agent.stdout.readline(), 400)
        assert line, "the agent exited before its head was up"
        temp = json.loads(line)["temp"]
        assert _processes_under(temp), "the head's processes should be running while the agent lives"
    finally:
        agent.send_signal(signal.SIGKILL)
        await agent.wait()
    deadline = time.monotonic() + 120
    while _processes_under(temp) or Path(temp).exists():
        assert time.monotonic() < deadline, f"head left behind: pids {_processes_under(temp)}, {temp} exists"
        await asyncio.sleep(0.5)


async def test_pip_reads_no_config_a_job_could_have_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pip.conf in the agent's home (a job runs as the agent's user and could write one) steers no install."""
    import subprocess

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    (tmp_path / "home" / ".config" / "pip").mkdir(parents=True)
    (tmp_path / "home" / ".config" / "pip" / "pip.conf").write_text("[install]\ndry-run = true\n")
    cache = EnvCache(tmp_path / "envs")
    work = tmp_path / "w"
    tiny_wheel(work / "wheels")
    (work / "requirements.txt").write_text("--no-index\n--find-links ./wheels\nblendr-tiny==0.1\n")
    env = await cache.acquire(work, [], tmp_path / "j1")
    assert env.private and env.bin_dir == tmp_path / "j1" / "venv" / "bin"
    out = subprocess.run([str(env.bin_dir / "python"), "-c", "import blendr_tiny; print(blendr_tiny.VALUE)"],
                         capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "42", out.stderr


async def test_an_environment_over_the_size_bound_fails_the_job_and_is_not_cached(tmp_path: Path) -> None:
    from provider.envs import EnvInstallError

    cache = EnvCache(tmp_path / "envs", max_bytes=1000)
    work = tmp_path / "w"
    work.mkdir()
    with pytest.raises(EnvInstallError, match="more than this provider's limit of 1000 bytes"):
        await cache.acquire(work, ["numpy"], tmp_path / "j")
    assert cache.cached() == [] and cache._in_use == {} and cache._locks == {}


def test_a_head_whose_raylet_port_is_taken_starts_again_on_fresh_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Something binds the raylet's port between its choice and Ray's start: the head starts again on fresh
    ports rather than hand its agent a head without a raylet."""
    import socket

    from blendr.ports import free_ports
    from provider import compute

    raylet_at = compute._PORT_FLAGS.index("--node-manager-port")
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))  # as a stranger's service would, on every interface (the raylet binds those)
    taken.listen(1)
    draws: list[list[int]] = []

    def ports(n: int) -> list[int]:
        got = free_ports(n)
        if not draws:
            got[raylet_at] = taken.getsockname()[1]
        draws.append(got)
        return got

    monkeypatch.setattr(compute, "free_ports", ports)
    head = LocalRayHead(num_gpus=0, num_cpus=1, resources={PIN: 1.0})
    try:
        head.start()
        assert len(draws) == 2, draws  # the first head's raylet died on the taken port; its start failed
        assert head._proc is not None and compute._session_has(head._proc.pid, "raylet")  # the kept head's runs
        assert head._raylet_fatal() == ""
    finally:
        head.stop()
        taken.close()
