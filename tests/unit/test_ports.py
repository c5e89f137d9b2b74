"""blendr.ports: ports handed to child processes are never ones an outgoing connection can be given meanwhile,
nor ones another process of ours has just chosen."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Iterator

import pytest

from blendr import ports


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's reservations as a new process starts with them (the suite draws ports before these run)."""
    monkeypatch.setattr(ports, "_reserved", OrderedDict())


def test_ports_lie_outside_the_range_outgoing_connections_take_their_source_ports_from() -> None:
    picked = set(ports.free_ports(20))
    assert len(picked) == 20
    assert all(p >= ports.LOWEST for p in picked)  # clear of Ray's worker ports too
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(300)
        clients = [socket.create_connection(srv.getsockname()) for _ in range(200)]
        try:
            sources = {c.getsockname()[1] for c in clients}
        finally:
            for c in clients:
                c.close()
    assert not picked & sources
    lo, hi = ports.ephemeral_range()
    assert all(lo <= s <= hi for s in sources)  # the range read is the kernel's real one
    assert not any(lo <= p <= hi for p in picked)


def test_one_process_never_hands_out_the_same_port_twice() -> None:
    seen = [p for _ in range(50) for p in ports.free_ports(3)] + [ports.free_port() for _ in range(50)]
    assert len(seen) == len(set(seen)) == 200


@pytest.fixture
def held() -> Iterator[int]:
    """A port outside the ephemeral range that something listens on, on one address only (not every one)."""
    with socket.socket() as s:
        for p in range(ports.LOWEST + 7000, ports.LOWEST + 8000):
            try:
                s.bind(("127.0.0.2", p))
                break
            except OSError:
                continue
        s.listen(1)
        yield s.getsockname()[1]


def test_a_port_in_use_on_any_address_is_passed_over(monkeypatch: pytest.MonkeyPatch, held: int) -> None:
    draws = iter([held, held, held + 1, held + 2, held + 3, held + 4])
    monkeypatch.setattr(ports._rng, "randint", lambda a, b: next(draws))
    got = ports.free_port()
    assert got != held and got in {held + 1, held + 2, held + 3, held + 4}


def test_a_machine_whose_ephemeral_range_covers_everything_gets_kernel_chosen_ports(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "ephemeral_range", lambda: (1024, 65535))
    got = ports.free_ports(5)
    assert len(set(got)) == 5 and all(1024 <= p <= 65535 for p in got)


def test_a_full_range_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_bindable", lambda port, host: False)
    with pytest.raises(RuntimeError, match=r"no free TCP port on 127\.0\.0\.1 after 200 tries"):
        ports.free_port()


CHILD = """
import sys
from blendr.ports import free_ports
print(*free_ports(8), flush=True)
sys.stdin.read()  # holds its reservations until told to exit
"""


def test_another_process_never_gets_a_port_this_one_reserved(monkeypatch: pytest.MonkeyPatch) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdin is not None
    theirs = [int(p) for p in child.stdout.readline().split()]
    assert len(theirs) == 8
    draws = iter([*theirs, *range(ports.LOWEST + 9000, ports.LOWEST + 9100)])
    monkeypatch.setattr(ports._rng, "randint", lambda a, b: next(draws))
    try:
        mine = ports.free_ports(3)
        assert not set(mine) & set(theirs)  # free to bind, but reserved by the other process: passed over
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    draws = iter(theirs)  # the other process is gone: its reservations went with it
    monkeypatch.setattr(ports._rng, "randint", lambda a, b: next(draws))
    assert ports.free_ports(2) == theirs[:2]


def reserved_elsewhere(port: int) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.bind(f"\0blendr-port-{port}")
        except OSError:
            return True
    return False


def test_a_long_lived_process_lets_its_oldest_reservations_go(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "KEEP", 4)
    got = ports.free_ports(2) + ports.free_ports(2) + ports.free_ports(2)
    assert list(ports._reserved) == got[2:]
    assert [reserved_elsewhere(p) for p in got] == [False, False, True, True, True, True]
