"""Free TCP ports for a process this program is about to start and hand a port to.

A port found with ``bind(("127.0.0.1", 0))`` comes from the kernel's *ephemeral* range, the same range every
outgoing connection on the machine takes its local port from. Between choosing it and the child binding it, any
connection (a JSON-RPC call, a gRPC channel, a browser) may be given that very port as its source port, and the
child then fails with "address already in use". So ports here are drawn at random from *below* the ephemeral range
(and above Ray's worker-port range, 10002-19999) and from above it, checked free by binding them on the host and
on every interface, and reserved.

A reservation is an abstract-namespace Unix socket named after the port (``@blendr-port-<port>``), bound and held
by the process that chose the port, so no other process on the machine (two provider agents each starting a Ray
head; a test and the nodes it starts) draws that port while the reservation lasts: until the process exits, or,
in a long-lived process, until its 256 most recent reservations no longer include it. No file is written. Only
where the machine leaves no room outside the ephemeral range does this fall back to ``bind(0)``.
"""

from __future__ import annotations

import contextlib
import errno
import random
import socket
import threading
from collections import OrderedDict
from pathlib import Path

# Ray's workers bind 10002..19999 by default; keep clear of them as well as of the ephemeral range.
LOWEST = 20000
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL = (32768, 60999)  # Linux's default, for machines where the file cannot be read
_TRIES = 200
KEEP = 256  # reservations a process holds at most (the oldest go first)

_lock = threading.Lock()
_reserved: OrderedDict[int, socket.socket | None] = OrderedDict()  # port -> its reservation, oldest first
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
    """Whether ``port`` can be bound on ``host`` and on every interface (Ray binds some of its ports on all)."""
    hosts = [host] if ":" in host else [host, "0.0.0.0"]
    for h in hosts:
        with socket.socket(socket.AF_INET6 if ":" in h else socket.AF_INET) as s:
            try:
                s.bind((h, port))
            except OSError:
                return False
    return True


def _reserve(port: int) -> socket.socket | bool | None:
    """This process's reservation of ``port`` (False: another process holds it; None: none can be made here)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(f"\0blendr-port-{port}")
    except OSError as exc:
        s.close()
        return False if exc.errno == errno.EADDRINUSE else None
    return s


def _forget_oldest() -> None:
    while len(_reserved) > KEEP:
        _, s = _reserved.popitem(last=False)
        if s is not None:
            with contextlib.suppress(OSError):
                s.close()


def _ephemeral(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now, outside the ephemeral range, not reserved by any process."""
    return free_ports(1, host)[0]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports free on ``host`` now, each reserved for this process (see the module's note).

    Raises:
        RuntimeError: no free port was found in a few hundred tries (the range is nearly full).
    """
    spans = _candidates()
    out: list[int] = []
    with _lock:
        for _ in range(n):
            for _ in range(_TRIES):
                if spans:
                    a, b = _rng.choice(spans)
                    port = _rng.randint(a, b)
                else:
                    port = _ephemeral(host)
                if port in _reserved or port in out or not _bindable(port, host):
                    continue
                held = _reserve(port)
                if held is False:
                    continue
                out.append(port)
                _reserved[port] = held if isinstance(held, socket.socket) else None
                break
            else:
                raise RuntimeError(f"no free TCP port on {host} after {_TRIES} tries")
        _forget_oldest()
    return out
