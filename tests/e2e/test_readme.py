"""The README's "Running a network by hand", command by command, as real processes.

The commands are read from the README itself (the ```sh block under that heading), so the two cannot drift:
each line runs through bash as a person would type it, with ``blendr`` on the PATH (the virtualenv's bin, as
``. .venv/bin/activate`` puts it) and ``~`` a temporary HOME. ``KING=$(...)`` lines set shell variables for
the lines after them. Every ``blendr ... run`` is started in the background and waited on until it says it
serves; ``blendr pool ls`` and ``blendr offers`` are repeated until they show the provider (a person would look
again); ``blendr job submit`` follows the job until its rental has settled (``blendr job status --json`` must
then show a rental verified for > 0 s that paid its provider > 0, and ``blendr job get`` must fetch the image);
``blendr devnet down`` runs after every background node was stopped with SIGINT (Ctrl-C).

What the test changes, and only to fit a shared 2-core machine: the ports the README names (127.0.0.1:74xx
and the devnet's) become free ports, one mapping for the whole block; ``BLENDR_*`` variables (the config
mechanism the README names) make challenges small and the queens' result batches frequent. The provider starts
its own local Ray, as the README's provider does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from blendr.ports import free_port
from tests.integration.helpers import wait_for

REPO = Path(__file__).resolve().parents[2]
HEADING = "## Running a network by hand"
SERVING = {"king": re.compile(r"^king 0x[0-9a-fA-F]{40} serving", re.M),
           "queen": re.compile(r"^queen 0x[0-9a-fA-F]{40} listening", re.M),
           "provider": re.compile(r"^provider 0x[0-9a-fA-F]{40}: ", re.M)}
RUN = re.compile(r"^blendr (king|queen|provider) run ")
ASSIGN = re.compile(r"^([A-Z_][A-Z0-9_]*)=\$\((.*)\)$")

pytestmark = [pytest.mark.timeout(900)]


def readme_commands(readme: Path = REPO / "README.md") -> list[str]:
    """The commands of the first ```sh block under the by-hand heading: continuation lines joined, comment
    lines and blank lines dropped."""
    text = readme.read_text()
    assert HEADING in text, f"README.md has no {HEADING!r} section"
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    assert "```sh\n" in section, f"no ```sh block under {HEADING!r}"
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    joined = re.sub(r"\\\n\s*", "", block)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


@dataclass
class Shell:
    """Runs README lines the way a person's terminal would, remembering variables and background nodes."""

    env: dict[str, str]
    logs: Path
    ports: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    nodes: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def local(self, line: str) -> str:
        """The line with the README's 127.0.0.1:74xx ports mapped to free ones (the same port each time)."""
        def repl(m: re.Match[str]) -> str:
            return "127.0.0.1:" + self.ports.setdefault(m.group(1), str(free_port()))
        return re.sub(r"127\.0\.0\.1:(74\d\d)\b", repl, line)

    def _env(self) -> dict[str, str]:
        return {**self.env, **self.variables}

    async def run(self, line: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(subprocess.run, ["bash", "-c", self.local(line)], capture_output=True,
                                       text=True, env=self._env(), cwd=REPO, timeout=timeout)

    async def ok(self, line: str, timeout: float = 120) -> str:
        done = await self.run(line, timeout)
        assert done.returncode == 0, f"`{line}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}\n{self.tails()}"
        return done.stdout

    async def until(self, line: str, pred: re.Pattern[str], timeout: float = 120) -> str:
        """Runs ``line`` again until its output matches (a person looking again)."""
        last: list[str] = [""]

        async def check() -> bool:
            done = await self.run(line, 60)
            last[0] = done.stdout + done.stderr
            return done.returncode == 0 and bool(pred.search(done.stdout))

        deadline = asyncio.get_running_loop().time() + timeout
        while not await check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"`{line}` never showed {pred.pattern!r}; last:\n{last[0]}\n{self.tails()}")
            await asyncio.sleep(1.0)
        return last[0]

    async def start(self, line: str, role: str) -> None:
        """Starts a `run` in the background and waits until it says it serves."""
        log = self.logs / f"{len(self.nodes)}-{role}.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(["bash", "-c", "exec " + self.local(line)], stdout=fh, stderr=subprocess.STDOUT,
                                    env=self._env(), cwd=REPO, start_new_session=True)
        self.nodes.append((role, proc, log))

        def serving() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"`{line}` exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            return bool(SERVING[role].search(log.read_text(errors="replace")))

        await wait_for(serving, 120, f"{role} serving")

    def stop_nodes(self) -> None:
        """Ctrl-C every node, newest first; a node that does not stop in 30 s is killed."""
        for _, proc, _ in reversed(self.nodes):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
        for _, proc, _ in self.nodes:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def tails(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}" for _, _, log in self.nodes)


def speed_env() -> dict[str, str]:
    """Settings for a loaded 2-core machine; the README's commands stay as they are."""
    return {
        "BLENDR_DEVNET__ETH_PORT": str(free_port()), "BLENDR_DEVNET__ETC_PORT": str(free_port()),
        "BLENDR_QUEEN__HEARTBEAT_INTERVAL_S": "1.0", "BLENDR_QUEEN__SUSPECT_AFTER_S": "5.0",
        "BLENDR_QUEEN__DEAD_AFTER_S": "15.0", "BLENDR_QUEEN__CHALLENGE_MEAN_INTERVAL_S": "30.0",
        "BLENDR_QUEEN__CHALLENGE_N_CPU": "256", "BLENDR_QUEEN__CHALLENGE_MAX_COUNT": "8",
        "BLENDR_QUEEN__SPEED_WALL_FACTOR": "0.2",
        "BLENDR_RELAY__POLL_S": "0.5", "BLENDR_RELAY__SNAPSHOT_INTERVAL_S": "1.0",
        "BLENDR_RELAY__RENTAL_CHALLENGE_MEAN_INTERVAL_S": "2.0", "BLENDR_RELAY__BATCH_INTERVAL_S": "2.0",
        "BLENDR_KING__POLL_S": "0.5", "BLENDR_KING__SNAPSHOT_INTERVAL_S": "1.0",
    }


def settled_with_pay(job: dict[str, Any]) -> None:
    """``job`` (``blendr job status --json``) settled with a rental the queens verified for some time and that
    paid its provider something: a settlement of "verified 0 s, paid 0" is no success."""
    assert job["state"] == "settled", job
    paid = [r for r in job["rentals"] if r["state"] == "settled" and int(r["verified_seconds"]) > 0
            and Decimal(r["provider_payment_gputoken"]) > 0]
    assert paid, f"no rental verified for > 0 s and paid > 0: {job['rentals']}"
    assert Decimal(job["cost_so_far_gputoken"]) > 0, job


def test_readme_commands_are_read_whole() -> None:
    """The parser sees the block as a person does: each node's `run` one command, the renter's submit last."""
    cmds = readme_commands()
    runs = [c for c in cmds if RUN.match(c)]
    assert [RUN.match(c).group(1) for c in runs] == ["king", "queen", "queen", "provider"]  # type: ignore[union-attr]
    assert all("\\" not in c for c in cmds)
    assert any(c.startswith("blendr job submit ") and " -- " in c for c in cmds)
    assert cmds[0].startswith("blendr devnet up") and cmds[-1].startswith("blendr devnet down")


async def test_the_readme_by_hand_network_settles_a_job(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLENDR_", "RAY_"))}
    env.update(HOME=str(home), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               PYTHONUNBUFFERED="1", **speed_env())
    sh = Shell(env, logs)
    job_id, fetched = "", False
    try:
        for line in readme_commands():
            if "JOB_ID" in line:  # the id the README's submit printed
                assert job_id, f"`{line}` names JOB_ID before any job was submitted"
                line = line.replace("JOB_ID", job_id)
            if m := ASSIGN.match(line):
                sh.variables[m.group(1)] = (await sh.ok(f'printf %s "$({m.group(2)})"')).strip()
                assert sh.variables[m.group(1)], f"`{line}` printed nothing"
            elif m := RUN.match(line):
                await sh.start(line, m.group(1))
            elif line.startswith("blendr pool ls"):
                await sh.until(line, re.compile(r"1 provider\(s\) — 1 alive(?![\s\S]*not ready)"))
            elif line.startswith("blendr offers"):
                await sh.until(line, re.compile(r"^cpu\s+1\s+1/1\b", re.M))
            elif line.startswith("blendr job submit"):
                out = await sh.ok(line, timeout=420)
                job_id = re.search(r"^job (\S+) submitted", out, re.M).group(1)  # type: ignore[union-attr]
                assert re.search(rf"^job {re.escape(job_id)}: settled", out, re.M), out
                status = await sh.ok(line.split(" job submit ")[0] + f" job status {job_id} --json "
                                     + " ".join(re.findall(r"--(?:home|king|ca-file) \S+", line)))
                settled_with_pay(json.loads(status))
            elif line.startswith("blendr job get"):
                await sh.ok(line)
                out_dir = Path(re.search(r"--out (\S+)", line).group(1).replace("~", str(home), 1))  # type: ignore[union-attr]
                assert (out_dir / "mandelbrot.png").read_bytes().startswith(b"\x89PNG"), sorted(out_dir.iterdir())
                fetched = True
            elif line.startswith("blendr devnet down"):
                sh.stop_nodes()
                assert "stopped" in await sh.ok(line)
            else:
                await sh.ok(line)
        assert job_id, "the README's block submitted no job"
        assert fetched, "the README's block fetched no output (`blendr job get`)"
    finally:
        sh.stop_nodes()
        await sh.run("blendr devnet down --reset --home ~/devnet")
