"""The job sandbox's cost against the same job unsandboxed, side by side in one run, and what it blocks.

The bench drives the launcher directly, as Ray's job supervisor runs it for a provider: it writes a job's
:class:`provider.sandbox.SandboxSpec` (as ``provider.jobs.JobRunner`` does: the job's folders under a provider
home, the venv's Python bound read-only, the limits a deployment gets from ``provider.app.job_limits`` with
``ProviderConfig`` defaults) and runs ``python -m provider.jail run SPEC.json`` as a subprocess. Ray is left
out on purpose: it adds the same seconds to every kind, and this measures the sandbox, not Ray.

Kinds: ``none`` (the baseline: no sandbox, the same launcher), ``bubblewrap`` and ``gvisor`` (skipped, with the
reason, when ``runsc`` is missing or this is not root). ``job_network = "none"`` (the default).

* **Start latency**: from launching the jail to the job's first output line, for a job that prints at once
  (``python -c "print('ready')"`` with the venv's Python: the interpreter starting is part of what the renter
  waits for, in every kind). Rounds alternate the kinds (rotated each round); the median per kind is reported
  and ``added_s`` = median(kind) - median(none) (goal: <= 1 s added).
* **Compute throughput**: a fixed CPU-bound NumPy workload (float64 matrix multiplies, BLAS on every CPU the
  limits give) timed inside the job with ``perf_counter``; kinds alternate round by round to cancel drift.
  ``ratio`` = the median over rounds of none's in-job seconds over the kind's in the same round (the two ran
  next to each other; goal: >= 0.98x); ``ratio_of_medians`` and ``ratio_of_best`` (fastest over fastest)
  are other views of the same runs. ``cpu_ratio`` compares CPU seconds (gVisor's clocks count them
  differently: not comparable for it).
* **Escape table**: tests/escapes.py's ``ESCAPE_JOB`` in each kind (``none`` included, to show the attempts
  really work there) against a fake provider home this bench makes (``node.key``, ``tls/key.pem``,
  ``provider.sqlite``, another job's working folder), a listener on the host's loopback standing in for a
  queen, and Ray's GCS and dashboard ports and auth token: a real local Ray head in a full run (its ports are
  real; its token lives in its processes' environment, so the target is the head's ``/proc/PID/environ``),
  stand-in listeners and a fake token file with ``--quick`` (where the attempt to run a Ray task, which cannot
  succeed against a stand-in, gives up after 3 s instead of 20). The host checks afterwards whether a
  file was planted and whether the job's lingering process outlived it. Each cell: ``blocked`` / ``ESCAPED``.

The report's ``machine.transparent_hugepage`` holds the host's huge-page modes: gVisor backs a job's memory with
one memfd, so whether its jobs get 2 MiB pages follows ``shmem_enabled`` (``never``, the kernel default, keeps them
on 4 KiB pages and costs a few per cent on TLB-heavy compute; docs/sandbox.md).

``--quick`` (for ``make test``): 2 latency rounds, 1 compute round with a tiny workload, escapes with stand-ins
(the Ray task attempt bounded to 3 s).
The machine may be loaded by others: compare the ratios in one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import format_table, machine_info, result_path, write_json

from blendr.config import ProviderConfig
from provider.app import job_limits
from provider.sandbox import JOB_OUTPUTS, SandboxSpec, gvisor_memory_advice, host_thp
from tests.escapes import ESCAPE_JOB

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("none", "bubblewrap", "gvisor")
GOAL_ADDED_S = 1.0
GOAL_RATIO = 0.98
JOB_TIMEOUT_S = 300.0
QUICK_RAY_TIMEOUT_S = 3.0

COMPUTE_JOB = r'''
import sys, time
import numpy as np
n, reps = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(7)
a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
a @ b  # warm-up: BLAS threads started, pages touched
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(reps):
    c = a @ b
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print("COMPUTE", wall, cpu, float(c[0, 0]), flush=True)
'''


def gvisor_skip_reason() -> str:
    """Why gVisor cannot run here ("" when it can)."""
    if not any(os.access(os.path.join(d, "runsc"), os.X_OK) for d in ("/usr/bin", "/usr/sbin", "/usr/local/bin")):
        return "runsc is not installed"
    if os.geteuid() != 0:
        return "gVisor (runsc run) needs root"
    return ""


class Provider:
    """A fake provider home (key, TLS key, store) and job folders laid out as provider.jobs.JobRunner lays them."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        (self.home / "tls").mkdir(parents=True)
        (self.home / "node.key").write_text("SECRET-NODE-KEY")
        (self.home / "tls" / "key.pem").write_text("SECRET-TLS-KEY")
        (self.home / "provider.sqlite").write_text("SECRET-STORE")
        self.limits = job_limits(ProviderConfig(), 0)(0)  # what a deployment's job gets (CPU provider)
        self._n = 0

    def spec(self, kind: str, command: str, files: dict[str, str], env: dict[str, str] | None = None
             ) -> tuple[SandboxSpec, Path]:
        """A job's folders and spec (as JobRunner writes them); returns the spec and its file."""
        self._n += 1
        job_id = f"bench-{kind}-{self._n}.1"
        job_dir = self.home / "jobs" / job_id
        work, out = job_dir / "work", self.home / "outputs" / job_id
        for d in (work, out):
            d.mkdir(mode=0o700, parents=True)
        for name, text in files.items():
            (work / name).write_text(text)
        variables = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
                     "BLENDR_JOB_ID": job_id.rsplit(".", 1)[0],
                     "BLENDR_OUTPUT_DIR": JOB_OUTPUTS if kind != "none" else str(out), **(env or {})}
        ro = list(dict.fromkeys([sys.base_prefix, sys.prefix]))
        spec = SandboxSpec(job_id=job_id, kind=kind, command=command, workdir=str(work), outdir=str(out),
                           state_dir=str(job_dir / "sandbox"), env=variables, ro_paths=ro, limits=self.limits)
        path = job_dir / "sandbox.json"
        path.write_text(spec.to_json())
        return spec, path

    def clean(self, spec: SandboxSpec) -> None:
        shutil.rmtree(Path(spec.workdir).parent, ignore_errors=True)
        shutil.rmtree(spec.outdir, ignore_errors=True)


def jail(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "provider.jail", "run", str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})


def run_job(path: Path) -> tuple[int, str, str]:
    proc = jail(path)
    try:
        out, err = proc.communicate(timeout=JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def start_latency(prov: Provider, kind: str) -> tuple[float, float]:
    """Seconds from launching the jail to the job's first line, and to the jail's exit (cleanup included)."""
    spec, path = prov.spec(kind, f"{sys.executable} -c \"print('ready', flush=True)\"", {})
    try:
        t0 = time.perf_counter()
        proc = jail(path)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        first = time.perf_counter() - t0
        _, err = proc.communicate(timeout=JOB_TIMEOUT_S)
        total = time.perf_counter() - t0
        if line.strip() != "ready" or proc.returncode != 0:
            raise RuntimeError(f"{kind}: the job did not start (exit {proc.returncode}): {line!r} {err[-400:]}")
        return first, total
    finally:
        prov.clean(spec)


def compute(prov: Provider, kind: str, n: int, reps: int) -> tuple[float, float]:
    """The workload's (wall, CPU) seconds measured inside the job."""
    spec, path = prov.spec(kind, f"{sys.executable} main.py {n} {reps}", {"main.py": COMPUTE_JOB})
    try:
        code, out, err = run_job(path)
        line = next((ln for ln in out.splitlines() if ln.startswith("COMPUTE ")), None)
        if code != 0 or line is None:
            raise RuntimeError(f"{kind}: the compute job failed (exit {code}): {out[-300:]} {err[-400:]}")
        _, wall, cpu, _ = line.split()
        return float(wall), float(cpu)
    finally:
        prov.clean(spec)


@contextlib.contextmanager
def listener() -> Iterator[int]:
    """A TCP service on the host's loopback that accepts and closes (a queen, a chain's RPC, a Ray port)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    s.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = s.accept()
                conn.close()
            except OSError:
                continue

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        yield s.getsockname()[1]
    finally:
        stop.set()
        th.join()
        s.close()


@contextlib.contextmanager
def ray_targets(root: Path, real: bool) -> Iterator[dict[str, Any]]:
    """The Ray ports and token the hostile job aims at: a real local head, or stand-ins."""
    if real:
        from provider.compute import LocalRayHead

        head = LocalRayHead(num_gpus=0, num_cpus=1, resources={})
        try:
            head.start()
            yield {"gcs_port": int(head.gcs_address.rsplit(":", 1)[1]),
                   "dashboard_port": int(head.dashboard_url.rsplit(":", 1)[1]),
                   # The head keeps its token in its processes' environment, not in a file: that is where
                   # a job would read it.
                   "ray_token": f"/proc/{head._proc.pid}/environ" if head._proc else "",
                   "ray": "a real local Ray head (1 CPU, token auth; the token target is the head's "
                          "/proc/PID/environ)"}
        finally:
            head.stop()
        return
    token = root / "ray" / "auth_token"
    token.parent.mkdir()
    token.write_text("SECRET-RAY-TOKEN")
    with listener() as gcs, listener() as dash:
        yield {"gcs_port": gcs, "dashboard_port": dash, "ray_token": str(token),
               "ray": "stand-in listeners for GCS and dashboard, a fake token file",
               # a task cannot run against a stand-in: the attempt is bounded tighter than against a real head
               "ray_timeout_s": QUICK_RAY_TIMEOUT_S}


def lingering(marker: str) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=False).stdout
    return [int(ln.split()[0]) for ln in out.splitlines() if f"sleep {marker}" in ln and "ps -eo" not in ln]


def escapes(root: Path, kinds: list[str], ray: dict[str, Any], queen_port: int) -> dict[str, dict[str, Any]]:
    """Run the hostile job in every kind at once, each against a provider home of its own (so the host's
    checks afterwards tell the kinds apart); each kind's attempts as ``{name: {blocked, detail}}``."""
    runs: dict[str, tuple[Provider, SandboxSpec, subprocess.Popen[str], str, Path]] = {}
    for i, kind in enumerate(kinds):
        prov = Provider(root / f"escapes-{kind}")
        other = prov.home / "jobs" / "other-renter.1" / "work"
        other.mkdir(parents=True)
        (other / "mine.txt").write_text("another renter's decrypted file")
        marker = str(4_100_000 + (os.getpid() % 10_000) * 10 + i)
        targets = {"node_key": str(prov.home / "node.key"), "tls_key": str(prov.home / "tls" / "key.pem"),
                   "store": str(prov.home / "provider.sqlite"), "home": str(prov.home), "other_job": str(other),
                   "ray_token": ray["ray_token"], "gcs_port": ray["gcs_port"],
                   "dashboard_port": ray["dashboard_port"], "loopback": {"queen": queen_port},
                   "linger_s": marker, "use_ray": False}
        if "ray_timeout_s" in ray:
            targets["ray_timeout_s"] = ray["ray_timeout_s"]
        spec, path = prov.spec(kind, f"{sys.executable} main.py", {"main.py": ESCAPE_JOB},
                               {"ESCAPE_TARGETS": json.dumps(targets)})
        runs[kind] = (prov, spec, jail(path), marker, other)
    table: dict[str, dict[str, Any]] = {}
    for kind, (prov, spec, proc, marker, other) in runs.items():
        try:
            out, err = proc.communicate(timeout=JOB_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        line = next((ln for ln in out.splitlines() if ln.startswith("ESCAPES ")), None)
        if line is None:
            raise RuntimeError(f"{kind}: the hostile job reported nothing (exit {proc.returncode}): "
                               f"{out[-300:]} {err[-600:]}")
        res: dict[str, Any] = json.loads(line.removeprefix("ESCAPES "))
        res.pop("own Ray", None)
        for name, v in res.items():  # what a read got (the host's files, a process's environment) is not kept
            if name.startswith("read ") and v["blocked"] is False:
                v["detail"] = "read it (content not kept)"
        left = lingering(marker)
        res["leave a process running after the job"] = {
            "blocked": not left, "detail": f"host saw {len(left)} process(es) left" if left else "none left"}
        for pid in left:  # this bench's own job's process: end it
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        for name, planted in (("host: file planted in the provider home", prov.home / "planted"),
                              ("host: file planted in another job's folder", other / "planted")):
            res[name] = {"blocked": not planted.exists(), "detail": "found" if planted.exists() else "absent"}
        res["job's legitimate work"] = {"blocked": None, "detail": "done" if "LEGIT 499500.0" in out else "failed"}
        table[kind] = res
        prov.clean(spec)
    return table


def cell(v: dict[str, Any]) -> str:
    if v["blocked"] is None:
        return v["detail"][:12]
    return "blocked" if v["blocked"] else "ESCAPED"


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds per part (make test)")
    ap.add_argument("--out", type=Path, default=None, help="where to write the JSON report")
    args = ap.parse_args()
    quick = args.quick
    t_start = time.perf_counter()
    reason = gvisor_skip_reason()
    kinds = [k for k in KINDS if k != "gvisor" or not reason]
    skipped = {"gvisor": reason} if reason else {}
    lat_rounds = 2 if quick else 10
    comp_rounds = 1 if quick else 15
    n, reps = (256, 4) if quick else (1024, 16)
    thp = host_thp()  # gVisor's memory is one memfd: huge pages for it follow shmem_enabled, not enabled
    advice = gvisor_memory_advice(thp) if "gvisor" in kinds else ""

    with tempfile.TemporaryDirectory(prefix="blendr-bench-sandbox-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)
        prov = Provider(root)
        print(f"kinds: {', '.join(kinds)}" + (f" (gvisor skipped: {reason})" if reason else "")
              + f"; job limits: {prov.limits}", flush=True)

        # Start latency.
        first: dict[str, list[float]] = {k: [] for k in kinds}
        total: dict[str, list[float]] = {k: [] for k in kinds}
        for k in kinds:  # one warm-up each (page cache, runsc's first start), not kept
            start_latency(prov, k)
        for r in range(lat_rounds):
            for k in kinds[r % len(kinds):] + kinds[: r % len(kinds)]:
                f, t = start_latency(prov, k)
                first[k].append(f)
                total[k].append(t)
        latency = {k: {"first_line_s": first[k], "exit_s": total[k], "median_first_line_s": med(first[k]),
                       "median_exit_s": med(total[k]),
                       "added_s": med(first[k]) - med(first["none"]),
                       "added_exit_s": med(total[k]) - med(total["none"])} for k in kinds}
        print(format_table(["start latency", "first line p50 s", "added s", "exit p50 s", "added to exit s"],
                           [[k, f"{latency[k]['median_first_line_s']:.3f}", f"{latency[k]['added_s']:+.3f}",
                             f"{latency[k]['median_exit_s']:.3f}", f"{latency[k]['added_exit_s']:+.3f}"]
                            for k in kinds]), flush=True)

        # Compute throughput.
        wall: dict[str, list[float]] = {k: [] for k in kinds}
        cpu: dict[str, list[float]] = {k: [] for k in kinds}
        for r in range(comp_rounds):
            for k in kinds[r % len(kinds):] + kinds[: r % len(kinds)]:
                w, c = compute(prov, k, n, reps)
                wall[k].append(w)
                cpu[k].append(c)
        throughput = {k: {"wall_s": wall[k], "cpu_s": cpu[k], "median_wall_s": med(wall[k]),
                          "ratio": med([a / b for a, b in zip(wall["none"], wall[k], strict=True)]),
                          "ratio_of_medians": med(wall["none"]) / med(wall[k]),
                          "ratio_of_best": min(wall["none"]) / min(wall[k]),
                          # None: the kind's clocks showed no CPU time (gVisor's, for a tiny --quick workload)
                          "cpu_ratio": med(cpu["none"]) / med(cpu[k]) if med(cpu[k]) > 0 else None} for k in kinds}
        # gVisor's clocks inside the sandbox count CPU time differently (its CPU-time ratio is not comparable).
        print(format_table(["compute", "in-job p50 s", "ratio (pairs p50)", "ratio of p50s", "ratio of best",
                            "CPU-time ratio"],
                           [[k, f"{throughput[k]['median_wall_s']:.3f}", f"{throughput[k]['ratio']:.3f}",
                             f"{throughput[k]['ratio_of_medians']:.3f}", f"{throughput[k]['ratio_of_best']:.3f}",
                             "-" if throughput[k]["cpu_ratio"] is None else f"{throughput[k]['cpu_ratio']:.3f}"]
                            for k in kinds]), flush=True)
        print(f"host transparent huge pages: enabled={thp['enabled']}, shmem_enabled={thp['shmem_enabled']}"
              + (f" ({advice})" if advice else ""), flush=True)

        # Escapes.
        usr_planted = Path("/usr/planted")  # the unsandboxed job, as root, can write there: undo it after
        had_usr_planted = usr_planted.exists()
        try:
            with listener() as queen_port, ray_targets(root, real=not quick) as ray:
                table = escapes(root, kinds, ray, queen_port)
        finally:
            if not had_usr_planted:
                with contextlib.suppress(OSError):
                    usr_planted.unlink()
        attempts = list(table["none"])
        print(format_table(["attempt", *kinds], [[a, *[cell(table[k][a]) for k in kinds]] for a in attempts]))
        escaped = {k: sorted(a for a, v in table[k].items() if v["blocked"] is False) for k in kinds}

    sandboxed = [k for k in kinds if k != "none"]
    target_met = all(latency[k]["added_s"] <= GOAL_ADDED_S and throughput[k]["ratio"] >= GOAL_RATIO
                     and not escaped[k] for k in sandboxed)
    report = {
        "benchmark": "sandbox",
        "mode": "quick" if quick else "full",
        "machine": {**machine_info(["numpy", "ray"]), "transparent_hugepage": thp},
        "method": "the launcher (python -m provider.jail run SPEC) as a subprocess, without Ray",
        "kinds": kinds,
        "skipped": skipped,
        "job_limits": {"memory_bytes": prov.limits.memory_bytes, "cpus": prov.limits.cpus, "pids": prov.limits.pids},
        "goals": {"added_start_s": GOAL_ADDED_S, "throughput_ratio": GOAL_RATIO},
        "start_latency": {"rounds": lat_rounds, "job": "python -c \"print('ready')\"", "kinds": latency},
        "compute": {"rounds": comp_rounds, "workload": f"{reps} float64 matmuls of {n}x{n} (NumPy)",
                    "kinds": throughput},
        "escapes": {"targets": ray["ray"] + "; a loopback listener standing in for a queen; a fake provider home",
                    "table": table, "escaped": escaped},
        "target_met": target_met,
        "wall_s": time.perf_counter() - t_start,
    }
    path = result_path("sandbox", quick, args.out)
    write_json(path, report)
    print(f"target met: {target_met}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
