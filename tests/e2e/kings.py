"""Several ``blendr king run`` processes on one PostgreSQL (king.ha), for the end-to-end fault tests and
bench/failover.py: each king its own home with the same king key and the same TLS certificate (as replicas of one
deployment have), the devnet's manifest, and ``store.url`` pointing at the shared database."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account

from blendr.chain.devkeys import DEV_KEYS, ROLES
from blendr.chain.manifest import Manifest
from blendr.identity import NodeIdentity
from blendr.store import Lease, open_store
from king.ha import LEASE

BLENDR = str(Path(sys.executable).parent / "blendr")


@dataclass
class KingProc:
    name: str
    home: Path
    proc: subprocess.Popen[bytes]
    log: Path
    stopped: bool = False  # SIGSTOPped

    @property
    def port(self) -> int:
        return int((self.home / "king" / "port").read_text())

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)
        self.stopped = sig == signal.SIGSTOP

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Kings:
    """King processes sharing ``pg_url``; ``manifest`` saved for them, ``tmp`` holds their homes and logs."""

    tmp: Path
    pg_url: str
    manifest: Manifest
    overrides: dict[str, str] = field(default_factory=dict)  # extra [king] keys (TOML values as text)
    fast: bool = True  # the e2e tests' quicker polls and queen grace; False: the [king] defaults (the lease always)
    procs: dict[str, KingProc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.deployment = self.tmp / "deployment.json"
        self.manifest.save(self.deployment)
        self.outputs = self.tmp / "outputs"  # the kings' shared outputs folder (a shared volume in a real deployment)

    @property
    def ca_file(self) -> Path:
        return next(iter(self.procs.values())).home / "tls" / "ca.crt"

    def start(self, name: str) -> KingProc:
        """Starts ``blendr king run`` in its own home; the second and later kings get the first one's TLS files."""
        home = self.tmp / name
        home.mkdir(parents=True, exist_ok=True)
        if not (home / "node.key").exists():
            NodeIdentity.from_key(bytes(Account.from_key(DEV_KEYS[ROLES["king"]]).key)).save(home)
        if self.procs and not (home / "tls").exists():
            shutil.copytree(next(iter(self.procs.values())).home / "tls", home / "tls")
        fast = {"poll_s": "0.2", "retry_initial_s": "0.1", "retry_max_s": "1.0", "queen_grace_s": "3.0",
                "snapshot_interval_s": "1.0"} if self.fast else {}
        king = "\n".join(f"{k} = {v}" for k, v in {
            "listen": '"127.0.0.1:0"', "outputs_dir": f'"{self.outputs}"', **fast, **self.overrides}.items())
        (home / "config.toml").write_text(
            f'[store]\nurl = "{self.pg_url}"\n\n[king]\n{king}\n\n'
            f'[chain]\ndeployment = "{self.deployment}"\nrpc_retries = 8\nrpc_timeout_s = 5.0\n')
        (home / "king" / "port").unlink(missing_ok=True)
        log = self.tmp / f"{name}.log"
        with log.open("ab") as fh:
            proc = subprocess.Popen([BLENDR, "king", "run", "--home", str(home)], stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        kp = KingProc(name, home, proc, log)
        self.procs[name] = kp
        return kp

    def ready(self, k: KingProc) -> bool:
        if not k.alive():
            raise AssertionError(f"king {k.name} exited ({k.proc.returncode}):\n{k.output()[-3000:]}")
        return (k.home / "king" / "port").is_file() and (k.home / "tls" / "ca.crt").is_file()

    def lease(self) -> Lease | None:
        store = open_store(self.pg_url)
        try:
            return store.read_lease(LEASE)
        finally:
            store.close()

    def leader(self) -> KingProc | None:
        """The king holding a lease that has not lapsed (by the store's clock), or None."""
        lease = self.lease()
        if lease is None or not lease.held:
            return None
        for k in self.procs.values():
            if k.alive() and (k.home / "king" / "port").is_file() and lease.address == k.target:
                return k
        return None

    def targets(self, first: KingProc | None = None) -> str:
        """Every king's address, ``first``'s first: what a renter or a queen is given."""
        ks = sorted(self.procs.values(), key=lambda k: k is not first)
        return ",".join(k.target for k in ks)

    def close(self) -> None:
        for k in self.procs.values():
            if k.alive():
                if k.stopped:
                    k.signal(signal.SIGCONT)
                k.signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for k in self.procs.values():
            try:
                k.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                k.proc.kill()
                k.proc.wait(5)
