"""Verification relay on real anvil chains: how fast challenge results land on ETC, and the gas of one verified rental.

Part 1 -- challenge results recorded on ETC. A second WorkVerification, whose inbox is a bench account, gets its
OPEN messages straight from that account (what the bridge inbox does after checking attestations), so a
thousand tasks of one queen open cheaply. The queen then lands ``submitBatch`` of 1, 10, 100 and 1000
cumulative ChallengeResult rows (a fresh batch id each repeat). Per size: the batch's gas, gas per result, and
results per second = size / the median wall time of ``ChainClient.transact`` from the call (ABI-encode,
gas estimate -- which runs the batch once on the node --, fees, sign, send) to the receipt; the part from the
node accepting the transaction to the receipt is reported as ``send_to_receipt_ms``. On anvil that rate measures the client + node path on this machine, not
ETC block space. The block-space bound is computed from the measured gas under two ASSUMPTIONS about ETC
mainnet: an 8,000,000 gas block limit and a 13 s block time; a batch is one transaction, so a block holds
floor(8M / batch gas) whole batches. A batch's transaction size is reported too: geth-derived nodes (ETC's
core-geth among them) refuse transactions over 128 KiB from their pool.

Part 2 -- one verified rental end to end through the deployed system and the real bridge (2-of-3 EIP-712
attestations by queen keys): GPURental.createRental, the OPEN delivery on the ETC inbox, the rental's share
of a real batch of 100 on the deployed WorkVerification, WorkVerification.finalize (after both chains' clocks
pass the rental's end) and the RESULT delivery on the ETH inbox, which settles the rental. The measured rental
is the last of 100 and settles after another one, so it sees a warm system (no first-ever storage writes).
The bench checks that it ended Settled and that the renter, provider, treasury and GPURental balances moved
exactly as the settlement formula says; every figure is also a ratio to a plain GPUTOKEN transfer between two
holders, measured in the same run. The total adds ETH and ETC gas (priced differently); both parts are given.
No holder has delegated its votes: a delegated recipient adds an ERC20Votes checkpoint write to each transfer.

``--quick`` (for ``make test``; a smoke run, its figures are not the full ones): part 1 without the batch of
1000 (so 100 tasks are opened, not 1000) and 3 repeats, part 2 with a real batch of 10 rentals instead of 100.

    python bench/relay.py            # full: 11 timed repeats per batch size
    python bench/relay.py --quick    # CI-sized: 3 repeats of batches of 1 / 10 / 100, a real batch of 10
Writes bench/results/relay.json (``--quick``: bench/results/quick/relay.json; ``--out PATH``) and prints the tables.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_abi.abi import encode
from eth_account import Account
from eth_utils import keccak

from bench._common import format_table, machine_info, result_path, write_json
from blendr.chain.anvil import start_anvil
from blendr.chain.bridge import BridgeMessage, attest, ordered
from blendr.chain.client import ChainClient, ChainSettings
from blendr.chain.contracts import (
    BridgeInbox,
    BridgeOutbox,
    ChallengeResult,
    GPURental,
    GPUToken,
    RentalIntent,
    RentalStatus,
    StakingManager,
    Tier,
    WorkVerification,
    results_tree,
)
from blendr.chain.deploy import DeployParams, Grant, deploy_system
from blendr.chain.devkeys import DEV_KEYS
from blendr.units import tokens

ETH_ID, ETC_ID = 31337, 63
ETC_BLOCK_GAS = 8_000_000  # assumption: ETC mainnet's block gas limit
ETC_BLOCK_S = 13  # assumption: ETC mainnet's mean block time
TX_POOL_MAX_BYTES = 128 * 1024  # geth-derived clients' txpool limit on one transaction's size
BATCH_SIZES = (1, 10, 100, 1000)
QUICK_BATCH_SIZES = (1, 10, 100)
E2E_BATCH = 100  # the real batch the measured rental's result lands in
QUICK_E2E_BATCH = 10
OPEN_GAS = 300_000  # fixed gas limit for the bulk set-up transactions (skips one estimate per tx)
CREATE_GAS = 600_000
DURATION = 3600  # seconds
PRICE = tokens("2.5")  # per GPU-hour
COUNTS = (12, 11, 0, 1)  # cumulative issued, passed, failed, missed


def steps_of(e2e_batch: int) -> tuple[str, ...]:
    """The measured steps of one verified rental (their names in the report)."""
    return ("GPURental.createRental", "OPEN delivery on etc (2-of-3)", f"result's share of a batch of {e2e_batch}",
            "WorkVerification.finalize", "RESULT delivery on eth (2-of-3, settles)")



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"the CI-sized run: batches of {'/'.join(map(str, QUICK_BATCH_SIZES))}, 3 repeats, "
                         f"a real batch of {QUICK_E2E_BATCH}")
    ap.add_argument("--repeats", type=int, default=0, help="timed repeats per batch size (default 11, quick 3)")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON output (default: bench/results/relay.json, with --quick bench/results/quick/relay.json)")
    args = ap.parse_args(argv)
    results = result_path("relay", args.quick, args.out)
    repeats = args.repeats or (3 if args.quick else 11)
    t0 = time.monotonic()
    eth_node = start_anvil(ETH_ID)
    etc_node = start_anvil(ETC_ID, hardfork="shanghai")
    try:
        out = run(eth_node.url, etc_node.url, repeats, QUICK_BATCH_SIZES if args.quick else BATCH_SIZES,
                  QUICK_E2E_BATCH if args.quick else E2E_BATCH)
    finally:
        eth_node.stop()
        etc_node.stop()
    out = {"machine": machine_info(["web3", "eth-account"]), "quick": args.quick, "repeats": repeats, **out,
           "wall_s": round(time.monotonic() - t0, 1)}
    write_json(results, out)
    print(f"\nwrote {results} in {out['wall_s']} s")
    return 0


class Bench:
    """The deployed system and one client per actor (one client per key keeps its nonces in order)."""

    def __init__(self, eth_url: str, etc_url: str) -> None:
        acct = [Account.from_key(k) for k in DEV_KEYS]
        self.deployer, self.king, self.queens = acct[0], acct[1], acct[2:5]
        self.provider, self.treasury, self.relayer, self.inbox_eoa, self.renter = acct[5:10]
        eth_s = ChainSettings("eth", eth_url, ETH_ID, poll_s=0.002)
        etc_s = ChainSettings("etc", etc_url, ETC_ID, eip1559=False, poll_s=0.002)
        self.eth_d, self.etc_d = ChainClient(eth_s, self.deployer), ChainClient(etc_s, self.deployer)
        params = DeployParams(
            treasury=self.treasury.address, scheduler=self.king.address,
            attesters=sorted((q.address for q in self.queens), key=lambda a: int(a, 16)), threshold=2,
            guardian=self.deployer.address, team=[Grant(self.deployer.address)],
            investors=[Grant(self.deployer.address)], advisors=[Grant(self.deployer.address)],
            timelock_delay_s=60, voting_delay_s=1, voting_period_s=5)
        self.m = deploy_system(self.eth_d, self.etc_d, params, network="bench", echo=lambda s: None)
        self.king_eth = ChainClient(eth_s, self.king)
        self.renter_eth = ChainClient(eth_s, self.renter)
        self.relay_eth, self.relay_etc = ChainClient(eth_s, self.relayer), ChainClient(etc_s, self.relayer)
        self.queen_etc = ChainClient(etc_s, self.queens[0])
        self.inbox_etc = ChainClient(etc_s, self.inbox_eoa)
        self.token = GPUToken.from_manifest(self.eth_d, self.m)
        self.rental = GPURental(self.king_eth, self.m.eth.address("GPURental"))
        self.eth_outbox = BridgeOutbox(self.eth_d, self.m.eth.address("BridgeOutbox"))
        self.etc_outbox = BridgeOutbox(self.etc_d, self.m.etc.address("BridgeOutbox"))
        self.eth_inbox = BridgeInbox(self.relay_eth, self.m.eth.address("BridgeInbox"))
        self.etc_inbox = BridgeInbox(self.relay_etc, self.m.etc.address("BridgeInbox"))
        self.wv = WorkVerification(self.queen_etc, self.m.etc.address("WorkVerification"))

    def fund(self) -> None:
        """GPUTOKEN for the renter and provider, a provider stake and the queen's stake (the deployer mints)."""
        staking = StakingManager.from_manifest(self.eth_d, self.m)
        for who in (self.renter, self.provider, self.deployer):
            self.token._send(self.token.fn.mint(who.address, tokens(1_000_000)))
        self.token.approve(staking.address, 2**255)
        # every rental below is open at once, and each reserves minStake(Provider) per GPU of this stake
        staking.stake_for(self.provider.address, Tier.PROVIDER, tokens(200_000))
        staking.stake_for(self.queens[0].address, Tier.QUEEN, tokens(10_000))
        GPUToken(self.renter_eth, self.token.address).approve(self.rental.address, 2**256 - 1)  # unlimited

    def deliver(self, inbox: BridgeInbox, msg: BridgeMessage, *, wait: bool = True) -> Any:
        """Attests ``msg`` with two queens (2-of-3) and delivers it on its destination chain."""
        sigs = {q.address: attest(q, msg, inbox.address) for q in self.queens[:2]}
        fn = inbox.fn.deliver(msg.as_tuple(), ordered(sigs))
        return inbox.client.transact(fn, wait=True) if wait else inbox.client.transact(fn, gas=OPEN_GAS, wait=False)


def run(eth_url: str, etc_url: str, repeats: int, sizes: tuple[int, ...] = BATCH_SIZES,
        e2e_batch: int = E2E_BATCH) -> dict[str, Any]:
    t = time.monotonic()
    b = Bench(eth_url, etc_url)
    b.fund()
    print(f"deployed and funded in {time.monotonic() - t:.1f} s")
    t = time.monotonic()
    batches = record_batches(b, repeats, sizes)
    print(f"part 1 (batches) in {time.monotonic() - t:.1f} s")
    t = time.monotonic()
    e2e = rental_end_to_end(b, e2e_batch)
    print(f"part 2 (rental end to end) in {time.monotonic() - t:.1f} s\n")

    rows = [[str(r["size"]), f"{r['gas']:,}", f"{r['gas_per_result']:,}", f"{r['wall_ms']:.1f}", f"{r['send_to_receipt_ms']:.1f}",
             f"{r['results_per_s']:,.0f}", f"{r['batches_per_block']}", f"{r['results_per_s_block_bound']:,.1f}",
             f"{r['tx_bytes']:,}" + ("" if r["fits_tx_pool"] else " (over 128 KiB)")] for r in batches]
    print(format_table(["batch size", "gas", "gas/result", "ms (median)", "ms send->receipt", "results/s (anvil)",
                        "batches/8M block", "results/s (ETC bound)", "tx bytes"], rows))
    transfer = e2e["transfer_gas"]
    rows = [[name, f"{gas:,}", f"{gas / transfer:.2f}"] for name, gas in e2e["steps"].items()]
    rows.append(["total: one verified rental", f"{e2e['total_gas']:,}", f"{e2e['ratio_to_transfer']:.2f}"])
    rows.append(["  of which on eth / on etc", f"{e2e['eth_gas']:,} / {e2e['etc_gas']:,}", ""])
    rows.append(["GPUToken.transfer (baseline)", f"{transfer:,}", "1.00"])
    print()
    print(format_table(["step", "gas", "x transfer"], rows))
    s = e2e["settlement"]
    print(f"\nsettled: escrow {s['escrow']}, verified {s['verified_s']} of {DURATION} s, provider +{s['provider']}, "
          f"treasury +{s['fee']}, renter refund {s['refund']}")
    return {"batches": batches, "rental_e2e": e2e,
            "assumptions": {"etc_block_gas_limit": ETC_BLOCK_GAS, "etc_block_time_s": ETC_BLOCK_S,
                            "tx_pool_max_bytes": TX_POOL_MAX_BYTES}}


def record_batches(b: Bench, repeats: int, sizes: tuple[int, ...] = BATCH_SIZES) -> list[dict[str, Any]]:
    """Part 1: submitBatch of each of ``sizes`` results (1..1000) for open tasks of one queen on a bench
    WorkVerification."""
    rental_addr = b.rental.address
    wv_contract = b.etc_d.deploy(
        "WorkVerification", b.deployer.address, b.inbox_eoa.address, b.etc_outbox.address, ETH_ID, rental_addr,
        b.m.etc.address("ReputationSystem"), 1_000, 3 * 86_400, max(sizes))
    wv = WorkVerification(b.queen_etc, wv_contract.address)
    start = int(b.etc_d.w3.eth.get_block("latest")["timestamp"])
    ids = [int.from_bytes(keccak(b"bench-task-%d" % i), "big") for i in range(max(sizes))]
    t = time.monotonic()
    last = ""
    for rid in ids:
        body = encode(["(uint256,address,address,uint32,uint64,uint64)"],
                      [(rid, b.provider.address, b.queens[0].address, 1, start, 30 * 86_400)])
        payload = encode(["uint8", "bytes"], [1, body])  # RentalMessages.OPEN
        last = str(b.inbox_etc.transact(wv.fn.onBridgeMessage(ETH_ID, rental_addr, payload), gas=OPEN_GAS,
                                        wait=False))
    b.inbox_etc.wait(last)
    if wv.task(ids[-1])[0] != b.provider.address:
        raise RuntimeError("the bench tasks did not open")
    print(f"opened {len(ids)} tasks in {time.monotonic() - t:.1f} s")

    out = []
    for size in sizes:
        results = [ChallengeResult(rid, *COUNTS) for rid in ids[:size]]
        gas: list[int] = []
        walls: list[float] = []
        after_send: list[float] = []  # from the node accepting the tx to the receipt
        tx_bytes = 0
        for k in range(repeats):
            bid = keccak(b"bench-batch-%d-%d" % (size, k))
            fn = wv.fn.submitBatch(bid, b"\x42" * 32, [r.as_tuple() for r in results])
            t0 = time.perf_counter()
            tx_hash = str(b.queen_etc.transact(fn, wait=False))
            t1 = time.perf_counter()
            receipt = b.queen_etc.wait(tx_hash)
            t2 = time.perf_counter()
            walls.append(t2 - t0)
            after_send.append(t2 - t1)
            gas.append(int(receipt["gasUsed"]))
            tx_bytes = len(b.etc_d.w3.eth.get_raw_transaction(receipt["transactionHash"]))
            [ev] = wv.events(receipt, "BatchSubmitted")
            if ev["resultsRoot"] != results_tree(bid, results)[0]:
                raise RuntimeError(f"batch of {size}: the results root differs from the client's tree")
        g = int(statistics.median(gas))  # varies by a few gas: the zero bytes of the (hash) batch id
        wall = statistics.median(walls)
        per_block = ETC_BLOCK_GAS // g
        out.append({
            "size": size, "gas": g, "gas_per_result": round(g / size), "wall_ms": round(wall * 1e3, 2),
            "send_to_receipt_ms": round(statistics.median(after_send) * 1e3, 2),
            "results_per_s": round(size / wall, 1), "batches_per_block": per_block,
            "results_per_s_block_bound": round(per_block * size / ETC_BLOCK_S, 1), "gas_range": [min(gas), max(gas)],
            "tx_bytes": tx_bytes, "fits_tx_pool": tx_bytes <= TX_POOL_MAX_BYTES, "repeats": repeats,
        })
    return out


def rental_end_to_end(b: Bench, e2e_batch: int = E2E_BATCH) -> dict[str, Any]:
    """Part 2: ``e2e_batch`` (100) rentals through the real bridge; the last one is measured step by step and
    its settlement checked."""
    steps_named = steps_of(e2e_batch)
    # the baseline: a plain transfer between two holders (both balances non-zero before and after)
    renter_token = GPUToken(b.renter_eth, b.token.address)
    transfer = int(statistics.median(int(renter_token.transfer(b.provider.address, tokens(1))["gasUsed"])
                                     for _ in range(3)))

    now = int(b.eth_d.w3.eth.get_block("latest")["timestamp"])
    intents = [RentalIntent(b.renter.address, b.provider.address, 1, b"\x11" * 32, tokens(3), DURATION, n,
                            now + 86_400, bytes(32), b.king.address) for n in range(1, e2e_batch + 1)]
    # fillers: created back to back (several in flight), then their OPENs delivered the same way
    hashes = [str(b.king_eth.transact(b.rental.fn.createRental(i.as_tuple(), i.sign(b.renter, ETH_ID, b.rental.address),
                                                               PRICE, b.queens[0].address, i.provider, []),
                                      gas=CREATE_GAS, wait=False))
              for i in intents[:-1]]
    opens = [msg for h in hashes for msg in b.eth_outbox.messages(b.king_eth.wait(h))]
    delivered = [b.deliver(b.etc_inbox, msg, wait=False) for msg in opens]
    for h in delivered:
        b.relay_etc.wait(h)

    steps: dict[str, int] = {}
    measured = intents[-1]
    rid = measured.rental_id(ETH_ID, b.rental.address)
    r = b.rental.create(measured, measured.sign(b.renter, ETH_ID, b.rental.address), PRICE, b.queens[0].address)
    steps[steps_named[0]] = int(r["gasUsed"])
    [msg] = b.eth_outbox.messages(r)
    steps[steps_named[1]] = int(b.deliver(b.etc_inbox, msg)["gasUsed"])
    task = b.wv.task(rid)
    if task[0] != b.provider.address:
        raise RuntimeError("the measured rental's task did not open on etc")

    ids = [i.rental_id(ETH_ID, b.rental.address) for i in intents]
    results = [ChallengeResult(x, *COUNTS) for x in ids]
    bid = keccak(b"e2e-batch")
    r = b.wv.submit_batch(bid, b"\x42" * 32, results)
    steps[steps_named[2]] = round(int(r["gasUsed"]) / e2e_batch)
    _, proofs = results_tree(bid, results)

    # both clocks a minute past the rental's end (on ETC the task's end: ETH's creation time + duration)
    for client, end in ((b.eth_d, b.rental.rental(rid).end), (b.etc_d, int(task[4]))):
        behind = end - int(client.w3.eth.get_block("latest")["timestamp"]) + 60
        if behind > 0:
            client.w3.provider.make_request("evm_increaseTime", [behind])  # type: ignore[arg-type]
        client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    # a warm-up settlement first (the first RESULT ever delivered and the treasury's first fee write storage
    # from zero), then the measured one
    [warm] = b.etc_outbox.messages(b.wv.finalize(bid, results[0], proofs[0]))
    b.deliver(b.eth_inbox, warm)
    b.rental.collect_fees()  # the warm-up's fee: settlement adds fees up, collectFees pays the treasury
    holders = {"renter": b.renter.address, "provider": b.provider.address, "treasury": b.treasury.address,
               "rental": b.rental.address}
    before = {k: b.token.balance_of(a) for k, a in holders.items()}
    r = b.wv.finalize(bid, results[-1], proofs[-1])
    steps[steps_named[3]] = int(r["gasUsed"])
    [result_msg] = b.etc_outbox.messages(r)
    r = b.deliver(b.eth_inbox, result_msg)
    steps[steps_named[4]] = int(r["gasUsed"])
    b.rental.collect_fees()
    settlement = check_settlement(b, rid, before, holders)

    total = sum(steps.values())
    eth_gas = steps[steps_named[0]] + steps[steps_named[4]]
    return {"steps": steps, "total_gas": total, "eth_gas": eth_gas, "etc_gas": total - eth_gas,
            "transfer_gas": transfer,
            "ratio_to_transfer": round(total / transfer, 2),
            "step_ratio_to_transfer": {k: round(v / transfer, 2) for k, v in steps.items()},
            "settlement": settlement}


def check_settlement(b: Bench, rid: int, before: dict[str, int], holders: dict[str, str]) -> dict[str, int]:
    """Raises unless the rental is Settled and every balance moved as GPURental's settlement formula says."""
    info = b.rental.rental(rid)
    if info.status != RentalStatus.SETTLED:
        raise RuntimeError(f"the measured rental ended {info.status.name}, not SETTLED")
    issued, passed, failed, _ = COUNTS
    fee_bps = int(b.rental._call(b.rental.fn.feeBps()))
    max_fail_bps = int(b.wv._call(b.wv.fn.maxFailBps()))
    if failed * 10_000 > issued * max_fail_bps:
        raise RuntimeError("the bench's counts would fail verification; pick passing counts")
    rate = PRICE * info.gpus
    escrow = rate * DURATION // 3600
    verified = DURATION * passed // issued  # WorkVerification's verdict (not cancelled: full duration)
    payment = rate * verified // 3600
    fee = payment * fee_bps // 10_000
    want = {"renter": escrow - payment, "provider": payment - fee, "treasury": fee, "rental": -escrow}
    got = {k: b.token.balance_of(a) - before[k] for k, a in holders.items()}
    if info.escrow != escrow or got != want or not 0 < fee < payment < escrow:
        raise RuntimeError(f"settlement does not match the formula: escrow {info.escrow} (want {escrow}), "
                           f"balance changes {got}, want {want}")
    return {"escrow": escrow, "verified_s": verified, "payment": payment, "provider": payment - fee, "fee": fee,
            "refund": escrow - payment}


if __name__ == "__main__":
    sys.exit(main())
