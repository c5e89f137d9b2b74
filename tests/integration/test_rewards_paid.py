"""Epoch rewards end to end on real anvil chains, deployed with ``deploy_devnet`` (default distributor supply and
default reward caps): rentals settle through the real bridge, the king publishes the ended epoch, a provider and
a renter claim with ``blendr rewards claim``, ``blendr rewards verify`` recomputes the roots from the chain, and
the cap refuses what a compromised king key would publish beyond it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from blendr.chain.anvil import AnvilProcess
from blendr.chain.bridge import BridgeMessage, attest, ordered
from blendr.chain.client import ChainClient, ChainSettings
from blendr.chain.contracts import (
    BridgeInbox,
    BridgeOutbox,
    ChallengeResult,
    GPURental,
    GPUToken,
    RentalIntent,
    WorkVerification,
    results_tree,
)
from blendr.chain.devkeys import DEV_KEYS, ROLES
from blendr.chain.manifest import Manifest
from blendr.chain.rewards import RewardsChain
from blendr.config import RewardsConfig, load_config
from blendr.errors import ContractRevertError
from blendr.identity import NodeIdentity
from blendr.rewards import DEFAULT_EPOCH_REWARD_CAPS, EPOCH_DURATION_S, RewardKind
from blendr.store import MemoryStore
from blendr.units import fmt_tokens, tokens
from blendrctl.cli import main
from king.app import start_king
from king.rewards import RewardPublisher

A = {name: Account.from_key(DEV_KEYS[i]) for name, i in ROLES.items()}
PRICE = tokens("2.5")
HOUR = 3600


class Chains:
    def __init__(self, chains: tuple[AnvilProcess, AnvilProcess], m: Manifest) -> None:
        self.urls = {"eth": chains[0].url, "etc": chains[1].url}
        self.m = m
        self.nonce = 0

    def c(self, chain: str, who: str) -> ChainClient:
        s = ChainSettings(chain, self.urls[chain], 31337 if chain == "eth" else 63, eip1559=chain == "eth",
                          poll_s=0.02, confirmations=1)
        return ChainClient(s, A[who])

    def rpc(self, chain: str, method: str, params: list[Any]) -> Any:
        return self.c(chain, "deployer").w3.provider.make_request(method, params)  # type: ignore[arg-type]

    def now(self) -> int:
        return int(self.c("eth", "deployer").w3.eth.get_block("latest")["timestamp"])

    def warp(self, seconds: int, chains: tuple[str, ...] = ("eth", "etc")) -> None:
        for chain in chains:
            self.rpc(chain, "evm_increaseTime", [seconds])
            self.rpc(chain, "evm_mine", [])

    def relay(self, msg: BridgeMessage) -> Any:
        chain = "etc" if msg.dst_chain_id == 63 else "eth"
        inbox = BridgeInbox(self.c(chain, "deployer"), self.m.chain(chain).address("BridgeInbox"))
        sigs = {A[q].address: attest(A[q], msg, inbox.address) for q in ("queen1", "queen2")}
        return inbox.deliver(msg, ordered(sigs))

    def create(self, renter: str, provider: str, gpus: int, seconds: int) -> int:
        """The king creates a rental from ``renter``'s signed intent (queen1 verifies); the OPEN is relayed."""
        self.nonce += 1
        addr = self.m.eth.address("GPURental")
        GPUToken(self.c("eth", renter), self.m.eth.address("GPUToken")).approve(addr, 2**256 - 1)
        intent = RentalIntent(A[renter].address, A[provider].address, gpus, b"\x01" * 32, tokens(3), seconds,
                              self.nonce, self.now() + 3600, bytes(32), A["king"].address)
        receipt = GPURental(self.c("eth", "king"), addr).create(intent, intent.sign(A[renter], 31337, addr), PRICE,
                                                               A["queen1"].address)
        [open_msg] = BridgeOutbox(self.c("eth", "deployer"), self.m.eth.address("BridgeOutbox")).messages(receipt)
        self.relay(open_msg)
        return intent.rental_id(31337, addr)

    def settle(self, results: list[ChallengeResult], after: int) -> list[int]:
        """queen1 reports ``results`` in one batch; ``after`` seconds later each is finalized and its RESULT
        relayed to ETH. Returns the ETH blocks of the settlements."""
        wv = WorkVerification(self.c("etc", "queen1"), self.m.etc.address("WorkVerification"))
        batch = b"rewards-batch".ljust(32, b"\0")
        wv.submit_batch(batch, b"\x42" * 32, results)
        _, proofs = results_tree(batch, results)
        self.warp(after)
        blocks = []
        for r, proof in zip(results, proofs, strict=True):
            fin = wv.finalize(batch, r, proof)
            [msg] = BridgeOutbox(self.c("etc", "deployer"), self.m.etc.address("BridgeOutbox")).messages(fin)
            blocks.append(int(self.relay(msg)["blockNumber"]))
        return blocks


@pytest.fixture(scope="module")
def net(chains: tuple[AnvilProcess, AnvilProcess], deployed: Manifest) -> Chains:
    return Chains(chains, deployed)


async def _run_king_until(cfg: Any, done: Any, timeout: float = 60.0) -> Any:
    """Starts a king from ``cfg``, waits until ``done()`` (read in a thread), stops it; returns the app."""
    app = await start_king(cfg)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await asyncio.to_thread(done):  # chain reads off the event loop the king runs on
            assert asyncio.get_running_loop().time() < deadline, "the king did not publish the ended epoch"
            await asyncio.sleep(0.1)
    finally:
        await app.stop()
    return app


def wallet(cfg: Any, home: Path, manifest: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``blendr wallet`` from ``home`` against a king started from ``cfg`` for the call (the rewards lines come
    from the chain through ``home``'s deployment manifest, not from the king)."""
    async def go() -> tuple[int, str]:
        app = await start_king(cfg)
        try:
            (home / "config.toml").write_text(
                f'[renter]\nking = "127.0.0.1:{app.port}"\n[rpc]\nca_file = "{cfg.path("tls", "ca.crt")}"\n'
                f'[chain]\ndeployment = "{manifest}"\n')
            capsys.readouterr()
            code = await asyncio.to_thread(main, ["wallet", "--home", str(home)])
            return code, capsys.readouterr().out
        finally:
            await app.stop()

    return asyncio.run(go())


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().out


def test_rewards_are_published_claimed_and_verified(net: Chains, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    m = net.m
    manifest = tmp_path / "deployment.json"
    m.save(manifest)
    # the rentals settle well inside one epoch
    if (net.now() // EPOCH_DURATION_S + 1) * EPOCH_DURATION_S - net.now() < 4 * HOUR:
        net.warp((net.now() // EPOCH_DURATION_S + 1) * EPOCH_DURATION_S - net.now() + 60)
    # renter rents 2 GPUs of provider1 for 1 h (80 % verified); provider4, as a renter, 1 GPU of provider2 (all)
    r1 = net.create("renter", "provider1", 2, HOUR)
    r2 = net.create("provider4", "provider2", 1, HOUR)
    blocks = net.settle([ChallengeResult(r1, 10, 8, 0, 2), ChallengeResult(r2, 10, 10, 0, 0)], HOUR + 1)
    eth = net.c("eth", "deployer")
    epoch = int(eth.w3.eth.get_block(blocks[0])["timestamp"]) // EPOCH_DURATION_S
    assert int(eth.w3.eth.get_block(blocks[-1])["timestamp"]) // EPOCH_DURATION_S == epoch

    # the king's publisher finds nothing to publish before the epoch ends
    king_chain = RewardsChain(net.c("eth", "king"), m.eth.address("GPURental"), m.eth.address("TokenDistributor"),
                              start_block=m.eth.deploy_block)
    publisher = RewardPublisher(king_chain, MemoryStore(), RewardsConfig())
    assert publisher.step() == []
    net.warp((epoch + 1) * EPOCH_DURATION_S - net.now(), ("eth",))
    net.rpc("eth", "anvil_mine", ["0x2"])
    # a running king (its own process wiring, production reward settings but a short poll) publishes both kinds
    king_home = tmp_path / "king"
    king_home.mkdir()
    NodeIdentity.from_key(bytes(A["king"].key)).save(king_home)
    cfg = load_config(king_home, overrides={"king.listen": "127.0.0.1:0", "rewards.poll_s": 0.2,
                                            "chain.deployment": str(manifest)}, env={})
    king = asyncio.run(_run_king_until(cfg, lambda: all(
        king_chain.published(epoch, k).is_set for k in RewardKind)))
    assert king.address == A["king"].address
    for kind, cap in DEFAULT_EPOCH_REWARD_CAPS.items():
        assert king_chain.published(epoch, kind).total == cap  # the pool defaults to the governance cap
        assert king_chain.next_epoch(kind) == epoch + 1
    assert publisher.step() == []  # nothing twice
    assert RewardPublisher(king_chain, MemoryStore(), RewardsConfig()).step() == []  # a restarted king neither

    # anyone recomputes the roots from the chain
    code, out = cli(capsys, "rewards", "verify", str(epoch), "--deployment", str(manifest), "--home",
                    str(tmp_path / "anyone"), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["ok"] and report["settlements"] == 2
    kinds = {k["kind"]: k for k in report["kinds"]}
    # weights: verified GPU-seconds (2 GPUs x 80 % of 1 h; 1 GPU x 1 h) and wei spent (payment of each)
    assert kinds["provider"]["weights"] == {A["provider1"].address: str(2 * 2880), A["provider2"].address: str(3600)}
    spent1, spent2 = PRICE * 2 * 2880 // HOUR, PRICE * 3600 // HOUR
    assert kinds["renter"]["weights"] == {A["renter"].address: str(spent1), A["provider4"].address: str(spent2)}

    # a big epoch: RentalCreated and RentalCancelled are read in one pass over the blocks each, not one pass per
    # chunk of rental ids (thousands of settlements over a long chain were thousands of eth_getLogs)
    counted = net.c("eth", "deployer")
    calls: list[str] = []
    real_retry = counted.retry

    def retry(what: str, fn: Any, **kw: Any) -> Any:
        calls.append(what)
        return real_retry(what, fn, **kw)

    counted.retry = retry  # type: ignore[method-assign]
    big = RewardsChain(counted, m.eth.address("GPURental"), m.eth.address("TokenDistributor"),
                       start_block=m.eth.deploy_block, max_log_range=7, max_topics=1)
    first, last = big.epoch_blocks(epoch)
    calls.clear()
    assert big.settlements(epoch) == king_chain.settlements(epoch)
    passes = [w for w in calls if w.startswith("get_logs")]
    span = -(-(last - m.eth.deploy_block + 1) // 7)
    assert len(passes) == -(-(last - first + 1) // 7) + 2 * span, passes

    token = GPUToken(eth, m.eth.address("GPUToken"))
    cap_p, cap_r = (DEFAULT_EPOCH_REWARD_CAPS[k] for k in RewardKind)
    expected = {"provider1": cap_p * 5760 // 9360 + (1 if cap_p * 5760 % 9360 * 2 > 9360 else 0),
                "renter": cap_r * spent1 // (spent1 + spent2)
                + (1 if cap_r * spent1 % (spent1 + spent2) * 2 > spent1 + spent2 else 0)}
    for who in ("provider1", "renter"):
        home = tmp_path / who
        home.mkdir()
        NodeIdentity.from_key(bytes.fromhex(DEV_KEYS[ROLES[who]].removeprefix("0x"))).save(home)
        before = token.balance_of(A[who].address)
        if who == "renter":  # `blendr wallet` shows the claimable reward, recomputed from the chain
            code, out = wallet(cfg, home, manifest, capsys)
            assert code == 0, out
            assert (f"rewards    {fmt_tokens(expected[who])} GPUTOKEN to claim" in out
                    and f"epoch {epoch:>6}  renter" in out), out
        code, out = cli(capsys, "rewards", "ls", "--deployment", str(manifest), "--home", str(home), "--json")
        assert code == 0
        [row] = json.loads(out)["rewards"]
        assert (row["epoch"], row["kind"]) == (epoch, "provider" if who == "provider1" else "renter")
        assert not row["claimed"] and row["verified"]
        code, out = cli(capsys, "rewards", "claim", str(epoch), "--deployment", str(manifest), "--home", str(home))
        assert code == 0, out
        assert token.balance_of(A[who].address) == before + expected[who]
        code, out = cli(capsys, "rewards", "claim", "--deployment", str(manifest), "--home", str(home))
        assert code == 0 and "nothing to claim" in out  # paid once
        code, out = cli(capsys, "rewards", "ls", "--deployment", str(manifest), "--home", str(home))
        assert code == 0 and f"epoch {epoch:>6}" in out and out.rstrip().endswith("claimed")
        if who == "renter":  # claimed: gone from the wallet
            code, out = wallet(cfg, home, manifest, capsys)
            assert code == 0 and "rewards    none to claim in epochs" in out and "to claim (" not in out, out
    code, out = cli(capsys, "rewards", "verify", str(epoch), "--deployment", str(manifest), "--home",
                    str(tmp_path / "anyone"))
    assert code == 0 and out.count("root matches") == 2, out

    # a compromised king key: over the cap is refused; a root nobody can reproduce fails verify
    net.warp(EPOCH_DURATION_S, ("eth",))
    net.rpc("eth", "anvil_mine", ["0x2"])
    dist = king_chain.distributor
    with pytest.raises(ContractRevertError) as exc:
        king_chain.eth.transact(dist.fn.setEpochRoot(epoch + 1, 0, b"\x01" * 32, cap_p + 1))
    assert exc.value.error == "TokenDistributorEpochRewardCapExceeded"
    king_chain.eth.transact(dist.fn.setEpochRoot(epoch + 1, 0, b"\x01" * 32, cap_p))
    code, out = cli(capsys, "rewards", "verify", str(epoch + 1), "--deployment", str(manifest), "--home",
                    str(tmp_path / "anyone"))
    assert code == 1 and "MISMATCH" in out
    code, out = cli(capsys, "rewards", "ls", "--deployment", str(manifest), "--home", str(tmp_path / "provider1"))
    assert "ROOT MISMATCH" in out  # shown to everyone, claimable by nobody
    # after the claim period nothing more is paid: the renter-kind leaf of provider4 was never claimed
    net.warp(365 * 86_400, ("eth",))
    code, out = cli(capsys, "rewards", "ls", "--address", A["provider4"].address, "--deployment", str(manifest),
                    "--home", str(tmp_path / "anyone"))
    assert "claim period over" in out, out
    with pytest.raises(ContractRevertError) as exc:  # and it cannot reach back to an epoch already passed
        king_chain.eth.transact(dist.fn.setEpochRoot(epoch - 1, 1, b"\x01" * 32, 1))
    assert exc.value.error == "TokenDistributorEpochOutOfOrder"
    with pytest.raises(ContractRevertError) as exc:  # nor raise its own cap: that is governance's (the timelock's)
        king_chain.eth.transact(dist.fn.setEpochRewardCap(0, cap_p * 2))
    assert exc.value.error == "AccessControlUnauthorizedAccount"
    governor = king_chain.eth.call(dist.fn.GOVERNOR_ROLE())
    assert king_chain.eth.call(dist.fn.hasRole(governor, m.eth.address("BlendrTimelock")))
