"""Free TCP ports for a process this program is about to start and hand a port to.

A port found with ``bind(("127.0.0.1", 0))`` comes from the kernel's *ephemeral* range, the same range every
outgoing connection on the machine takes its local port from. Between choosing it and the child binding it, any
connection (a JSON-RPC call, a gRPC channel, a browser) may be given that very port as its source port, and the
child then fails with "address already in use". So ports here are drawn at random from *below* the ephemeral range
(and above Ray's worker-port range, 10002-19999), checked free by binding them, and never handed out twice by one
process. Processes of one user on one machine (two provider agents, each starting a Ray head; a test and the
nodes it starts) do not hand out the same port either: each port handed out is reserved with a lock file
(``flock``) under ``$TMPDIR/blendr-ports-<uid>/``, held until the process that chose it exits. Only where the
machine leaves no room outside the ephemeral range does this fall back to ``bind(0)``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
import threading
from pathlib import Path

# Ray's workers bind 10002..19999 by default; keep clear of them as well as of the ephemeral range.
LOWEST = 20000
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL = (32768, 60999)  # Linux's default, for machines where the file cannot be read
_TRIES = 200

_lock = threading.Lock()
_handed_out: set[int] = set()
_reserved: dict[int, int] = {}  # port -> the descriptor of its lock file, held (locked) while this process lives
_rng = random.SystemRandom()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral port range, inclusive (Linux's default where it cannot be read)."""
    try:
        lo, hi = (int(x) for x in _RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return _DEFAULT_EPHEMERAL
    return lo, hi


def _candidates() -> list[tuple[int, int]]:
    """The inclusive ranges outside the ephemeral range (and above Ray's worker ports) to draw from."""
    lo, hi = ephemeral_range()
    spans = []
    if lo - 1 >= LOWEST:
        spans.append((LOWEST, lo - 1))
    if hi + 1 <= 65535:
        spans.append((max(hi + 1, LOWEST), 65535))
    return [(a, b) for a, b in spans if b - a >= 1000]


def _bindable(port: int, host: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _lock_dir() -> Path | None:
    d = Path(tempfile.gettempdir()) / f"blendr-ports-{os.getuid()}"
    try:
        d.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return None
    return d


def _reserve(port: int, lock_dir: Path | None) -> bool:
    """Takes the machine-wide reservation of ``port`` for this process; False if another process holds it."""
    if lock_dir is None:  # no place for reservations: this process's own bookkeeping only
        return True
    try:
        fd = os.open(lock_dir / str(port), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _reserved[port] = fd
    return True


def _release_all() -> None:
    for fd in _reserved.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _reserved.clear()
    _handed_out.clear()


def _ephemeral(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now, outside the ephemeral range, not handed out before by this process."""
    return free_ports(1, host)[0]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports free on ``host`` now (see the module's note on why not ``bind(0)``).

    Raises:
        RuntimeError: no free port was found in a few hundred tries (the range is nearly full).
    """
    spans = _candidates()
    out: list[int] = []
    with _lock:
        if len(_handed_out) > 256:  # a long-lived process: forget old ones (and their descriptors)
            _release_all()
        lock_dir = _lock_dir() if spans else None
        for _ in range(n):
            for _ in range(_TRIES):
                if spans:
                    a, b = _rng.choice(spans)
                    port = _rng.randint(a, b)
                else:
                    port = _ephemeral(host)
                if port in _handed_out or port in out or not _bindable(port, host) or not _reserve(port, lock_dir):
                    continue
                out.append(port)
                break
            else:
                raise RuntimeError(f"no free TCP port on {host} after {_TRIES} tries")
        _handed_out.update(out)
    return out
