"""``blendr rewards ls|claim|verify``: epoch rewards (provider staking, renter loyalty) from TokenDistributor.

Nothing here trusts the king: every amount and proof is recomputed from GPURental's events on the ETH chain
(:mod:`blendr.chain.rewards`) and checked against the root TokenDistributor holds. An epoch whose root does not
match its recomputation is reported, and cannot be claimed through this command.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from blendr.errors import BlendrError, InvalidArgumentError
from blendr.rewards import RewardKind, Settlement
from blendr.units import fmt_tokens

EXIT_MISMATCH = 1


def add_parsers(sub: Any, common: Any, deployment_flag: Any) -> None:
    rw = sub.add_parser("rewards", help="epoch rewards: providers by verified GPU-hours, renters by GPUTOKEN spent",
                        description="Rewards are shared per 7-day epoch (TokenDistributor.REWARD_EPOCH_DURATION) "
                                    "and published by the king as Merkle roots, each at most the cap governance "
                                    "sets. Amounts and proofs are recomputed here from the chain.")
    rsub = rw.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = rsub.add_parser("ls", help="an address's rewards by epoch and kind: amount and whether claimed")
    ls.add_argument("--address", help="whose rewards (default: this node's key)")
    claim = rsub.add_parser("claim", help="claim rewards (this node's key sends and pays gas; the tokens go to "
                                          "the address)")
    claim.add_argument("epochs", nargs="*", type=_epoch, metavar="EPOCH", help="epochs to claim (default: every "
                                                                                "published epoch not yet claimed)")
    claim.add_argument("--address", help="whose rewards (default: this node's key)")
    ver = rsub.add_parser("verify", help="recompute an epoch's rewards from the chain and compare with the "
                                         "published roots (exit status 1 on a mismatch)")
    ver.add_argument("epoch", type=_epoch, metavar="EPOCH",
                     help="the epoch number (`blendr rewards ls` shows them; epoch = unix time // 604800)")
    for p in (ls, claim, ver):
        common(p)
        deployment_flag(p)
        p.add_argument("--json", action="store_true", help="machine-readable output (amounts in GPUTOKEN)")


def _epoch(text: str) -> int:
    """argparse type of an epoch number."""
    try:
        epoch = int(text)
    except ValueError:
        epoch = -1
    if epoch < 0:
        raise argparse.ArgumentTypeError(f"EPOCH must be a whole number, 0 or more (got {text[:40]!r})")
    return epoch


def run(args: argparse.Namespace, load: Any) -> int:
    from blendr.chain.client import ChainClient
    from blendr.chain.manifest import chain_settings, load_manifest
    from blendr.chain.rewards import RewardsChain

    requested = _address(args.address) if getattr(args, "address", None) else None  # before any file or RPC
    cfg = load(args)
    m = load_manifest(cfg)
    account = None
    if args.action == "claim" or (args.action == "ls" and not args.address):
        from blendr.identity import NodeIdentity

        account = NodeIdentity.load(cfg.home).account()
    eth = ChainClient(chain_settings(cfg, m, "eth"), account)
    chain = RewardsChain(eth, m.eth.address("GPURental"), m.eth.address("TokenDistributor"),
                         start_block=m.eth.deploy_block)
    if args.action == "verify":
        return _verify(chain, args)
    address = requested or eth.address
    return _ls(chain, address, args) if args.action == "ls" else _claim(chain, address, args)


def _address(text: str) -> str:
    from eth_utils import is_hex_address, to_checksum_address

    if not is_hex_address(text):
        raise InvalidArgumentError(f"--address {text[:60]!r} is not a 20-byte hex address")
    return str(to_checksum_address(text))


def _rows(chain: Any, address: str, epochs: set[int] | None,
          published: list[Any] | None = None) -> list[dict[str, Any]]:
    """One row per published (epoch, kind) in ``epochs`` (None: all), with ``address``'s recomputed amount;
    ``published`` (default: every one TokenDistributor logged) is what to look at."""
    from blendr.chain.rewards import verify
    from blendr.errors import FailedPreconditionError

    cache: dict[int, list[Settlement] | None] = {}
    rows = []
    now = chain.now()
    for pub in chain.published_epochs() if published is None else published:
        if epochs is not None and pub.epoch not in epochs:
            continue
        if pub.epoch not in cache:
            try:
                cache[pub.epoch] = chain.settlements(pub.epoch)
            except FailedPreconditionError:  # published, but its end is not at this node's confirmation depth
                cache[pub.epoch] = None
        inputs = cache[pub.epoch]
        if inputs is None:
            rows.append({"epoch": pub.epoch, "kind": pub.kind, "amount": 0, "verified": False, "final": False,
                         "claimed": False, "expired": False, "rewards": None})
            continue
        v = verify(chain, pub.epoch, pub.kind, inputs)
        amount = int(v.recomputed.amounts.get(address, 0))
        rows.append({"epoch": pub.epoch, "kind": pub.kind, "amount": amount, "verified": v.ok, "final": True,
                     "claimed": chain.is_claimed(pub.epoch, pub.kind, address) if amount else False,
                     "expired": now >= chain.claim_deadline(pub.epoch, pub.kind), "rewards": v.recomputed})
    return rows


NOT_FINAL = "not final at this node's confirmation depth yet: try again in a few blocks"


def _ls(chain: Any, address: str, args: argparse.Namespace) -> int:
    # the address's rewards, and every epoch whose root does not match the chain (nobody can claim from it here)
    rows = [r for r in _rows(chain, address, None) if r["amount"] or not r["verified"]]
    # rows: the address's rewards, epochs whose root does not match, and epochs not final here (amount unknown)
    caps = {k.label: chain.cap(k) for k in RewardKind}
    if args.json:
        print(json.dumps({"address": address, "caps_per_epoch_gputoken": {k: fmt_tokens(v, 18) for k, v in caps.items()},
                          "rewards": [{"epoch": r["epoch"], "kind": r["kind"].label,
                                       "amount_gputoken": fmt_tokens(r["amount"], 18) if r["final"] else None,
                                       "claimed": r["claimed"],
                                       "expired": r["expired"], "verified": r["verified"], "final": r["final"]}
                                      for r in rows]}, indent=2))
        return 0
    print(f"{address}: epoch rewards (caps per epoch: provider {fmt_tokens(caps['provider'])}, renter "
          f"{fmt_tokens(caps['renter'])} GPUTOKEN)")
    if not rows:
        print("  none in the published epochs")
    for r in rows:
        state = (NOT_FINAL if not r["final"]
                 else "ROOT MISMATCH: not claimable here (`blendr rewards verify`)" if not r["verified"]
                 else "claimed" if r["claimed"] else "claim period over" if r["expired"] else "claimable")
        amount = fmt_tokens(r["amount"]) if r["final"] else "?"
        print(f"  epoch {r['epoch']:>6}  {r['kind'].label:8}  {amount:>16} GPUTOKEN  {state}")
    return 0


def _claim(chain: Any, address: str, args: argparse.Namespace) -> int:
    rows = _rows(chain, address, set(args.epochs) if args.epochs else None)
    missing = sorted(set(args.epochs) - {r["epoch"] for r in rows})
    if missing:
        raise InvalidArgumentError(f"no published rewards for epoch {', '.join(map(str, missing))}")
    failed = False
    out = []
    for r in rows:
        if not r["final"]:
            if args.epochs:
                print(f"epoch {r['epoch']} {r['kind'].label}: {NOT_FINAL}", file=sys.stderr)
                failed = True
            continue
        if not r["verified"]:
            if args.epochs:
                print(f"epoch {r['epoch']} {r['kind'].label}: the published root does not match the chain's data; "
                      "nothing claimed", file=sys.stderr)
                failed = True
            continue
        if not r["amount"] or r["claimed"]:
            continue
        if r["expired"]:
            if args.epochs:
                print(f"epoch {r['epoch']} {r['kind'].label}: the claim period is over", file=sys.stderr)
                failed = True
            continue
        try:
            receipt = chain.claim(r["rewards"], address)
        except BlendrError as exc:
            print(f"epoch {r['epoch']} {r['kind'].label}: claim failed: {exc}", file=sys.stderr)
            failed = True
            continue
        tx = "0x" + bytes(receipt["transactionHash"]).hex()
        out.append({"epoch": r["epoch"], "kind": r["kind"].label, "amount_gputoken": fmt_tokens(r["amount"], 18),
                    "tx": tx})
        if not args.json:
            print(f"claimed {fmt_tokens(r['amount'])} GPUTOKEN ({r['kind'].label}, epoch {r['epoch']}) for {address}: "
                  f"tx {tx}")
    if args.json:
        print(json.dumps({"address": address, "claimed": out}, indent=2))
    elif not out and not failed:
        print(f"nothing to claim for {address}")
    return 1 if failed else 0


def _verify(chain: Any, args: argparse.Namespace) -> int:
    from blendr.chain.rewards import verify

    epoch = args.epoch
    first, last = chain.epoch_blocks(epoch)
    settlements = chain.settlements(epoch)
    results = [verify(chain, epoch, kind, settlements) for kind in RewardKind]
    if args.json:
        print(json.dumps({
            "epoch": epoch, "first_block": first, "last_block": last, "settlements": len(settlements),
            "ok": all(v.ok for v in results),
            "kinds": [{"kind": v.published.kind.label, "ok": v.ok, "published_root": "0x" + v.published.root.hex(),
                       "recomputed_root": "0x" + v.recomputed.root.hex(),
                       "total_gputoken": fmt_tokens(v.published.total, 18),
                       "weights": {a: str(w) for a, w in sorted(v.recomputed.weights.items())},
                       "amounts_gputoken": {a: fmt_tokens(x, 18) for a, x in sorted(v.recomputed.amounts.items())}}
                      for v in results]}, indent=2))
    else:
        print(f"epoch {epoch}: blocks {first}..{last}, {len(settlements)} settled rentals")
        for v in results:
            p, r = v.published, v.recomputed
            if not p.is_set:
                verdict = "not published" + ("" if not r.weights else f" ({len(r.weights)} accounts earned weight)")
            else:
                verdict = (f"published {fmt_tokens(p.total)} GPUTOKEN to {len(r.amounts)} accounts: "
                           + ("root matches" if v.ok else f"MISMATCH (published 0x{p.root.hex()}, recomputed "
                                                           f"0x{r.root.hex()} total {fmt_tokens(r.total)})"))
            print(f"  {p.kind.label:8} {verdict}")
            for a, w in sorted(r.weights.items()):
                weight = (f"{w} GPU-seconds" if p.kind is RewardKind.PROVIDER_STAKING
                          else f"{fmt_tokens(w)} GPUTOKEN spent")
                print(f"    {a}  {weight}  -> {fmt_tokens(r.amounts.get(a, 0))} GPUTOKEN")
    return 0 if all(v.ok for v in results) else EXIT_MISMATCH


# ---------------------------------------------------------------- `blendr wallet`: recent claimable rewards

WALLET_TIMEOUT_S = 30.0  # the wallet shows "unavailable" rather than wait longer for the chain


def recent_rewards(chain: Any, address: str) -> dict[str, Any]:
    """``address``'s rewards in the epochs that ended within TokenDistributor's REWARD_PUBLISH_WINDOW of now (the
    only ones the king can still publish, so a bounded number of reads): ``claimable`` (wei, verified against the
    published root, not claimed, claim period open), ``rows`` (those, plus epochs not final here or whose root does
    not match), ``epochs`` (first, last) looked at. Older epochs: ``blendr rewards ls``."""
    window = int(chain.eth.call(chain.distributor.fn.REWARD_PUBLISH_WINDOW()))
    last = chain.now() // chain.epoch_duration - 1
    first = max(last - window, 0)
    published = [p for e in range(first, last + 1) for k in RewardKind if (p := chain.published(e, k)).is_set]
    rows = [r for r in _rows(chain, address, None, published)
            if not r["final"] or not r["verified"] or (r["amount"] and not r["claimed"] and not r["expired"])]
    claimable = sum(r["amount"] for r in rows if r["final"] and r["verified"])
    return {"claimable": claimable, "rows": rows, "epochs": (first, last)}


def wallet_rewards(cfg: Any, address: str, timeout_s: float = WALLET_TIMEOUT_S) -> dict[str, Any]:
    """:func:`recent_rewards` read from this node's deployment manifest and ETH RPC (no key needed), or
    ``{"unavailable": reason}`` when the chain cannot be read within ``timeout_s`` (the wallet still shows)."""
    import threading

    from blendr.chain.client import ChainClient
    from blendr.chain.manifest import chain_settings, load_manifest
    from blendr.chain.rewards import RewardsChain

    result: dict[str, Any] = {"unavailable": f"the chain did not answer in {timeout_s:g} s"}

    def read() -> None:
        nonlocal result
        try:
            m = load_manifest(cfg)
            eth = ChainClient(chain_settings(cfg, m, "eth"), None)
            chain = RewardsChain(eth, m.eth.address("GPURental"), m.eth.address("TokenDistributor"),
                                 start_block=m.eth.deploy_block)
            result = recent_rewards(chain, address)
        except Exception as exc:  # the wallet's other lines must still show: the reason is reported instead
            result = {"unavailable": str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}

    t = threading.Thread(target=read, name="wallet-rewards", daemon=True)  # a hung RPC does not hold the exit
    t.start()
    t.join(timeout_s)
    return result


def wallet_rewards_json(r: dict[str, Any]) -> dict[str, Any]:
    """``wallet_rewards`` for ``blendr wallet --json`` (amounts in GPUTOKEN)."""
    if "unavailable" in r:
        return {"available": False, "reason": r["unavailable"]}
    return {"available": True, "claimable_gputoken": fmt_tokens(r["claimable"], 18),
            "epochs_looked_at": list(r["epochs"]),
            "rewards": [{"epoch": x["epoch"], "kind": x["kind"].label,
                         "amount_gputoken": fmt_tokens(x["amount"], 18) if x["final"] else None,
                         "verified": x["verified"], "final": x["final"]} for x in r["rows"]]}


def print_wallet_rewards(r: dict[str, Any]) -> None:
    """``wallet_rewards`` as ``blendr wallet`` lines."""
    if "unavailable" in r:
        print(f"rewards    unavailable ({r['unavailable']})")
        return
    first, last = r["epochs"]
    if not r["rows"]:
        print(f"rewards    none to claim in epochs {first}-{last} (older: `blendr rewards ls`)")
        return
    print(f"rewards    {fmt_tokens(r['claimable'])} GPUTOKEN to claim (`blendr rewards claim`)")
    for x in r["rows"]:
        state = (NOT_FINAL if not x["final"] else "ROOT MISMATCH: not claimable here (`blendr rewards verify`)"
                 if not x["verified"] else "claimable")
        amount = fmt_tokens(x["amount"]) if x["final"] else "?"
        print(f"           epoch {x['epoch']:>6}  {x['kind'].label:8}  {amount:>16} GPUTOKEN  {state}")
