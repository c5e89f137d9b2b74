"""Real anvil chains for contract tests: one eth (31337) and one etc (63, shanghai) per session.

Tests take ``eth``/``etc`` (a Web3 each); every test runs inside an EVM snapshot that is reverted after
it, so tests never see each other's state. Deploy shared contracts in module fixtures that depend on
``eth_session``/``etc_session`` (they run before the per-test snapshot and persist).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web3 import Web3

from blendr.chain.anvil import AnvilProcess, start_anvil
from tests.contracts.chainkit import snapshot


@pytest.fixture(scope="session")
def eth_anvil() -> Iterator[AnvilProcess]:
    node = start_anvil(31337)
    yield node
    node.stop()


@pytest.fixture(scope="session")
def etc_anvil() -> Iterator[AnvilProcess]:
    node = start_anvil(63, hardfork="shanghai")
    yield node
    node.stop()


@pytest.fixture(scope="session")
def eth_session(eth_anvil: AnvilProcess) -> Web3:
    return Web3(Web3.HTTPProvider(eth_anvil.url, request_kwargs={"timeout": 60}))


@pytest.fixture(scope="session")
def etc_session(etc_anvil: AnvilProcess) -> Web3:
    return Web3(Web3.HTTPProvider(etc_anvil.url, request_kwargs={"timeout": 60}))


@pytest.fixture
def eth(eth_session: Web3) -> Iterator[Web3]:
    with snapshot(eth_session):
        yield eth_session


@pytest.fixture
def etc(etc_session: Web3) -> Iterator[Web3]:
    with snapshot(etc_session):
        yield etc_session
