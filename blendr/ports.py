"""Free TCP ports for a process this program is about to start and hand a port to.

A port found with ``bind(("127.0.0.1", 0))`` comes from the kernel's *ephemeral* range, the same range every
outgoing connection on the machine takes its local port from. Between choosing it and the child binding it, any
connection (a JSON-RPC call, a gRPC channel, a browser) may be given that very port as its source port, and the
child then fails with "address already in use". So ports here are drawn at random from *below* the ephemeral range
(and above Ray's worker-port range, 10002-19999), checked free by binding them, and never handed out twice by one
process. Only where the machine leaves no room outside the ephemeral range does this fall back to ``bind(0)``.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

# Ray's workers bind 10002..19999 by default; keep clear of them as well as of the ephemeral range.
LOWEST = 20000
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL = (32768, 60999)  # Linux's default, for machines where the file cannot be read
_TRIES = 200

_lock = threading.Lock()
_handed_out: set[int] = set()
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
        if len(_handed_out) > 4096:  # a long-lived process: forget old ones rather than run the range dry
            _handed_out.clear()
        for _ in range(n):
            for _ in range(_TRIES):
                if spans:
                    a, b = _rng.choice(spans)
                    port = _rng.randint(a, b)
                else:
                    port = _ephemeral(host)
                if port in _handed_out or port in out or not _bindable(port, host):
                    continue
                out.append(port)
                break
            else:
                raise RuntimeError(f"no free TCP port on {host} after {_TRIES} tries")
        _handed_out.update(out)
    return out
