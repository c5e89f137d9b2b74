"""Start and stop local anvil chains (the npm ``@foundry-rs/anvil`` binary) for the devnet and tests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blendr.errors import ConfigError, UnavailableError

REPO_ROOT = Path(__file__).resolve().parents[2]
# anvil's default dev mnemonic: the devnet's well-known, worthless accounts.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
_LISTEN = re.compile(rb"Listening on ([0-9.]+):(\d+)")


def anvil_binary() -> str:
    """Path of the anvil binary: $BLENDR_ANVIL, the project's node_modules, or PATH.

    Raises:
        ConfigError: anvil is not installed (run ``npm ci`` or any make target).
    """
    env = os.environ.get("BLENDR_ANVIL")
    if env:
        return env
    local = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found:
        return found
    raise ConfigError("anvil not found: run `npm ci` in the repository (make does it) or set BLENDR_ANVIL")


@dataclass
class AnvilProcess:
    """A running anvil; ``url`` is its HTTP JSON-RPC endpoint."""

    chain_id: int
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stops anvil (SIGTERM, then SIGKILL after ``timeout``)."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


def start_anvil(
    chain_id: int,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    block_time: float | None = None,
    hardfork: str | None = None,
    accounts: int = 10,
    state_file: Path | None = None,
    log_file: Path | None = None,
    detach: bool = False,
    startup_timeout: float = 30.0,
) -> AnvilProcess:
    """Starts anvil and returns once it listens.

    Args:
        chain_id: the chain id anvil reports (31337 for the devnet's eth, 63 for its etc).
        port: 0 picks a free port; the real one is read from anvil's banner.
        block_time: seconds between blocks; None mines one block per transaction (instant).
        hardfork: the EVM rules anvil runs (e.g. "shanghai" for Ethereum Classic).
        state_file: where anvil loads its state from and dumps it to on exit (``--state``).
        log_file: where anvil's output goes after start-up (else discarded).
        detach: anvil outlives this process (the devnet): its output goes straight to ``log_file``
            and ``port`` must be given.

    Raises:
        UnavailableError: anvil exited or did not listen within ``startup_timeout``.
    """
    cmd = [
        anvil_binary(), "--host", host, "--port", str(port), "--chain-id", str(chain_id),
        "--accounts", str(accounts), "--mnemonic", DEV_MNEMONIC, "--balance", "1000000",
    ]
    if block_time:
        cmd += ["--block-time", str(block_time)]
    if hardfork:
        cmd += ["--hardfork", hardfork]
    if state_file is not None:
        cmd += ["--state", str(state_file), "--state-interval", "2"]
    if detach:
        return _start_detached(cmd, chain_id, host, port, log_file, startup_timeout)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + startup_timeout
    banner: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        banner.append(line.decode(errors="replace").rstrip())
        m = _LISTEN.search(line)
        if m:
            anvil = AnvilProcess(chain_id, m.group(1).decode(), int(m.group(2)), proc, banner)
            _drain(proc, log_file)
            return anvil
    proc.kill()
    proc.wait()
    tail = "\n".join(banner[-10:])
    raise UnavailableError(f"anvil (chain {chain_id}) did not start: {tail or 'no output'}")


def _start_detached(
    cmd: list[str], chain_id: int, host: str, port: int, log_file: Path | None, timeout: float
) -> AnvilProcess:
    if port == 0 or log_file is None:
        raise ConfigError("a detached anvil needs a fixed port and a log file")
    if _answers(host, port):
        raise UnavailableError(f"port {host}:{port} is already serving JSON-RPC; stop it or pick another port")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text(errors="replace").splitlines()[-10:]
            raise UnavailableError(f"anvil (chain {chain_id}) exited with {proc.returncode}: " + "\n".join(tail))
        if _answers(host, port):
            got = int(rpc(host, port, "eth_chainId", timeout=5), 16)
            if got != chain_id:
                proc.kill()
                raise UnavailableError(f"anvil on port {port} reports chain {got}, expected {chain_id}")
            return AnvilProcess(chain_id, host, port, proc)
        time.sleep(0.1)
    proc.kill()
    raise UnavailableError(f"anvil (chain {chain_id}) did not answer on {host}:{port} within {timeout:.0f} s")


def rpc(host: str, port: int, method: str, params: list[Any] | None = None, timeout: float = 3.0) -> Any:
    """One JSON-RPC call over plain HTTP (no web3), for process management.

    Raises:
        UnavailableError: the node could not be reached, did not answer JSON, or answered with an error.
    """
    import json
    import urllib.request

    req = urllib.request.Request(
        f"http://{host}:{port}", data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                                                  "params": params or []}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = json.loads(resp.read())
    except OSError as exc:  # refused, reset, timed out (urllib's URLError is an OSError)
        raise UnavailableError(f"{method}: no answer from {host}:{port}: {exc}") from exc
    except ValueError as exc:  # not JSON
        raise UnavailableError(f"{method}: {host}:{port} did not answer JSON-RPC: {exc}") from exc
    if not isinstance(body, dict) or ("error" not in body and "result" not in body):
        raise UnavailableError(f"{method}: {host}:{port} did not answer JSON-RPC")
    if "error" in body:
        raise UnavailableError(f"{method}: {body['error']}")
    return body["result"]


def _answers(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _drain(proc: subprocess.Popen[bytes], log_file: Path | None) -> None:
    """Keeps reading anvil's output so its pipe never fills (which would stall the chain)."""

    def run() -> None:
        assert proc.stdout is not None
        sink = open(log_file, "ab") if log_file is not None else None  # noqa: SIM115
        try:
            for line in proc.stdout:
                if sink is not None:
                    sink.write(line)
                    sink.flush()
        finally:
            if sink is not None:
                sink.close()

    threading.Thread(target=run, name=f"anvil-{proc.pid}-log", daemon=True).start()
