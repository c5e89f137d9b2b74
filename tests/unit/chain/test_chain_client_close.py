"""ChainClient.close: a stopping node's chain calls in worker threads end at once, not after their retries.

Against a real socket (web3's own HTTP provider, the client's default settings): a node that keeps failing
would have each call retried 6 times with growing waits; once the client is closed, no new attempt starts.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eth_account import Account
from web3.exceptions import TransactionNotFound

from blendr.chain.client import ChainClient, ChainSettings
from blendr.chain.devkeys import DEV_KEYS
from blendr.errors import UnavailableError
from tests.unit.chain.test_chain_client_errors import make


class FlakyNode:
    """A TCP endpoint that drops its first connections at once and holds the one after (no answer) until told."""

    def __init__(self, drop: int) -> None:
        self.drop = drop
        self.seen = 0
        self.held: list[socket.socket] = []
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.url = f"http://127.0.0.1:{self.srv.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            if self.seen + 1 <= self.drop:
                conn.close()  # a node that restarts: connection reset, a transient failure
            else:
                self.held.append(conn)  # a node that hangs (held before it is counted: release() sees it)
            self.seen += 1

    def release(self) -> None:
        for c in self.held:
            c.close()

    def close(self) -> None:
        self.release()
        self.srv.close()


def wait_for_sync(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.01)


@pytest.fixture
def node() -> Iterator[FlakyNode]:
    n = FlakyNode(drop=2)
    yield n
    n.close()


def in_thread(fn: Any) -> tuple[threading.Thread, list[BaseException | object]]:
    out: list[BaseException | object] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # handed to the test
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_a_closed_client_starts_no_new_attempt(node: FlakyNode) -> None:
    client = ChainClient(ChainSettings("eth", node.url, 31337))  # the defaults a node runs with: 6 attempts
    t, out = in_thread(client.block_number)
    wait_for_sync(lambda: node.seen == 3, 60, "the third attempt on the wire")
    client.close()
    node.release()  # the attempt on the wire fails now; without the close, three more would follow
    t.join(60)
    assert not t.is_alive()
    [err] = out
    assert isinstance(err, UnavailableError) and "this node is stopping" in str(err)
    assert node.seen == 3
    with pytest.raises(UnavailableError, match="this node is stopping"):
        client.block_number()  # any later call fails at once, nothing sent
    assert node.seen == 3


def test_a_receipt_wait_ends_when_the_client_closes() -> None:
    client, eth = make()  # the default receipt timeout: 120 s
    eth.on("get_transaction_receipt", TransactionNotFound("not yet"))
    t, out = in_thread(lambda: client.wait("0x" + "ab" * 32, what="rent"))
    wait_for_sync(lambda: eth.calls.get("get_transaction_receipt", 0) >= 2, 60, "the receipt polled")
    client.close()
    t.join(60)
    assert not t.is_alive()
    [err] = out
    assert isinstance(err, UnavailableError) and "waiting for rent 0x" in str(err)


def test_an_open_client_is_unaffected() -> None:
    client, eth = make()
    eth.on("block_number", 7)
    assert not client.closed and client.block_number() == 7
    client.close()
    assert client.closed
    assert Account.from_key(DEV_KEYS[3]).address == client.address  # its key stays readable


def test_each_attempt_is_one_request_so_the_retry_budget_is_the_clients() -> None:
    """web3's provider would repeat a timed-out request up to 5 times inside each of the client's attempts."""
    node = FlakyNode(drop=0)  # hangs on every request
    try:
        client = ChainClient(ChainSettings("eth", node.url, 31337, rpc_timeout_s=0.3, retries=2, retry_max_wait_s=0.01))
        with pytest.raises(UnavailableError, match="failed after 2 attempts"):
            client.block_number()
        assert node.seen == 2
    finally:
        node.close()
