"""``make demo``'s flags, as a person runs them: ``python -m blendrctl.demo --stay --web-port 0`` runs the whole demo,
prints the dApp's URL, keeps the network up after the job (the page answers, a devnet renter key is printed) and
stops everything at Ctrl-C with exit code 0; a taken ``--web-port`` stops the demo before it starts anything.

The demo runs in a temporary folder (its ``.demo/`` there) with a small image (BLENDR_DEMO_SIZE) to fit a shared
2-core machine.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from eth_account import Account

from blendr.chain.devkeys import DEV_KEYS, ROLES

REPO = Path(__file__).resolve().parents[2]
URL = re.compile(r"Open the dApp: (https?://127\.0\.0\.1:\d+/)")
KEY = re.compile(r'"Use a devnet key": (0x[0-9a-f]{64})')
STAY = "stop: press Ctrl-C"


def _as_a_background_job() -> None:
    # A command started in the background by a non-interactive shell (`make test &`, many CI runners) inherits
    # SIGINT ignored: the demo must still stop at Ctrl-C, so every demo here starts that way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def demo(cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLENDR_")}
    env.update(PYTHONPATH=str(REPO), BLENDR_DEMO_SIZE="256", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "blendrctl.demo", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_as_a_background_job)


class Lines:
    """The demo's output, read as it comes (a thread reads the pipe, so a wait is on a line, never on time)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.seen: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line)
        self._q.put(None)

    def until(self, pred: re.Pattern[str] | str, timeout: float) -> str:
        """The first line (from now on) that matches; fails when the demo ends or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pred!r} within {timeout}s:\n{self.tail()}") from None
            if line is None:
                raise AssertionError(f"the demo ended (code {self.proc.wait()}) before {pred!r}:\n{self.tail()}")
            self.seen.append(line)
            if (pred.search(line) if isinstance(pred, re.Pattern) else pred in line):
                return line

    def rest(self, timeout: float) -> str:
        """The output's tail once the demo closed it (or ``timeout`` passed)."""
        with contextlib.suppress(AssertionError):
            self.until(re.compile(r"(?!)"), timeout)
        return self.tail()

    def text(self) -> str:
        return "".join(self.seen)

    def tail(self) -> str:
        return self.text()[-6000:]


def get(url: str, ca: Path) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
        return resp.status, resp.read().decode()


@pytest.mark.timeout(900)
def test_demo_stays_up_with_the_page_until_ctrl_c(tmp_path: Path) -> None:
    proc = demo(tmp_path, "--stay", "--web-port", "0")
    out = Lines(proc)
    try:
        url = URL.search(out.until(URL, 180)).group(1)  # type: ignore[union-attr]
        key = KEY.search(out.until(KEY, 600)).group(1)  # type: ignore[union-attr]
        out.until(STAY, 10)
        text = out.text()
        assert "receipt" in text and "ETH settle" in text  # the demo ran its job to the end first
        assert text.count("Open the dApp: " + url) == 2  # when the king serves it, and again when staying
        assert Account.from_key(key).address == Account.from_key(DEV_KEYS[ROLES["renter"]]).address
        ca = tmp_path / ".demo" / "king" / "tls" / "ca.crt"
        status, page = get(url, ca)
        assert status == 200 and "<title>BlendrChain</title>" in page
        assert proc.poll() is None
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=180) == 0, out.rest(5)
        assert "stopping everything the demo started" in out.rest(10)
        with pytest.raises(urllib.error.URLError):  # the king, and its page, are gone
            get(url, ca)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[str]) -> None:
    """Stops a demo still running with SIGTERM (it stops every process it started, as at Ctrl-C), then hard."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_taken_web_port_stops_the_demo_before_it_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = demo(tmp_path, "--web-port", str(port))
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert f"the dApp's port 127.0.0.1:{port} is in use" in output and "--web-port 0" in output
    assert not (tmp_path / ".demo").exists()  # nothing was started


def test_a_bad_web_port_is_refused(tmp_path: Path) -> None:
    proc = demo(tmp_path, "--web-port", "70000")
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "--web-port must be 0..65535" in output
