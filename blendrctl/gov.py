"""``blendr gov``: governance from the command line (params, propose, list, show, vote, queue, execute, delegate).

Reads both chains through the deployment manifest; writes on ETH with this node's key (``<home>/node.key``,
votes count once it has delegated them, ``blendr gov delegate ADDRESS``). Every refusal the chain would give
(unknown parameter, value out of bounds, too few votes, voting closed, not yet executable) is said before a
transaction is sent.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from blendr.errors import InvalidArgumentError


def add_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None],
                deployment_flag: Callable[[argparse.ArgumentParser], None]) -> None:
    gov = sub.add_parser("gov", help="governance: parameters of both chains, proposals, votes")
    gsub = gov.add_subparsers(dest="action", metavar="ACTION", required=True)

    def p(name: str, helptext: str, *, json_flag: bool = True, **kw: Any) -> argparse.ArgumentParser:
        q: argparse.ArgumentParser = gsub.add_parser(name, help=helptext, **kw)
        common(q)
        deployment_flag(q)
        if json_flag:
            q.add_argument("--json", action="store_true", help="machine-readable output")
        return q

    p("params", "every governance parameter of both chains: contract, chain, current value, bounds, unit")
    pr = p("propose", "propose parameter changes (ETC ones travel over the bridge on execution)",
           description="Example: blendr gov propose --set rental.fee_bps=300 --set verification.challenge_interval=60 "
                       "--description 'Raise the fee to 3%, challenge rented GPUs every minute'")
    pr.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="changes",
                    help="a parameter and its new value (repeat; `blendr gov params` lists names and units)")
    pr.add_argument("--description", required=True, help="what the proposal does and why")
    p("list", "every proposal, its state and tallies")
    show = p("show", "one proposal: state, votes, quorum, deadlines, its calls in plain words")
    show.add_argument("proposal_id")
    vote = p("vote", "vote on an active proposal with this node's delegated votes")
    vote.add_argument("proposal_id")
    vote.add_argument("support", choices=["for", "against", "abstain"])
    vote.add_argument("--reason", default="", help="said on chain with the vote")
    for name, helptext in (("queue", "queue a succeeded proposal in the timelock"),
                           ("execute", "execute a queued proposal once the timelock's delay has passed")):
        q = p(name, helptext)
        q.add_argument("proposal_id")
    dl = p("delegate", "delegate this node's GPUTOKEN votes (to itself: its own address)")
    dl.add_argument("address")


def run(args: argparse.Namespace, load: Callable[[argparse.Namespace], Any]) -> int:
    from blendr.chain.client import ChainClient
    from blendr.chain.governing import Governor
    from blendr.chain.manifest import chain_settings, load_manifest

    cfg = load(args)
    m = load_manifest(cfg)
    account = None
    if args.action not in ("params", "list", "show"):
        from blendr.identity import NodeIdentity

        account = NodeIdentity.load(cfg.home).account()
    g = Governor(ChainClient(chain_settings(cfg, m, "eth"), account), ChainClient(chain_settings(cfg, m, "etc")), m)
    handler: Callable[[Governor, argparse.Namespace], int] = {
        "params": _params, "propose": _propose, "list": _list, "show": _show, "vote": _vote, "queue": _queue,
        "execute": _execute, "delegate": _delegate}[args.action]
    return handler(g, args)


def _pid(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise InvalidArgumentError(f"proposal id {text[:80]!r} is not a number (`blendr gov list` shows them)") from None


def _out(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2) if args.json else text)
    return 0


def param_rows(g: Any) -> list[dict[str, Any]]:
    """Every parameter with its current value (``value``: base units; ``shown``: as people read it)."""
    from blendr.chain import govparams as gp

    values = g.values()
    return [{"name": p.name, "contract": p.contract, "chain": p.chain,
             "value": list(values[p.name]) if isinstance(values[p.name], tuple) else values[p.name],
             "shown": gp.format_value(p.unit, values[p.name]), "bounds": p.bounds_text(), "unit": p.unit.value,
             "setter": p.setter, "doc": p.doc} for p in gp.PARAMS]


def _params(g: Any, args: argparse.Namespace) -> int:
    rows = param_rows(g)
    if args.json:
        for r in rows:  # big integers as strings: JSON readers lose precision above 2^53
            if isinstance(r["value"], int):
                r["value"] = str(r["value"])
        return _out(args, rows, "")
    w = max(len(r["name"]) for r in rows)
    b = max(len(r["bounds"]) for r in rows)
    lines = [f"{'NAME':{w}}  {'CONTRACT':17} CHAIN  {'VALUE':44} {'BOUNDS':{b}}  UNIT"]
    lines += [f"{r['name']:{w}}  {r['contract']:17} {r['chain']:5}  {r['shown']:44} {r['bounds']:{b}}  {r['unit']}"
              for r in rows]
    print("\n".join(lines))
    return 0


def _changes(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise InvalidArgumentError(f"--set {item!r}: write NAME=VALUE, e.g. --set rental.fee_bps=300")
        if name.strip() in out:
            raise InvalidArgumentError(f"--set {name.strip()} is given twice")
        out[name.strip()] = value.strip()
    return out


def _propose(g: Any, args: argparse.Namespace) -> int:
    calls = g.calls_for(_changes(args.changes))
    from blendr.chain.governing import utc

    pid, created = g.propose(calls, args.description)
    p = g.proposal(pid)
    said = "proposed" if created else "already proposed (the same calls and description), nothing sent:"
    return _out(args, {**proposal_json(p), "created": created},
                f"{said} {pid}\n" + "\n".join(f"  {c.text}" for c in calls)
                + f"\nvoting opens after {utc(p.snapshot)} and closes at {utc(p.deadline)}")


def proposal_json(p: Any) -> dict[str, Any]:
    """A proposal for --json (amounts of votes in GPUTOKEN as exact decimal strings)."""
    from blendrctl.jsonout import gputoken

    return {"proposal_id": str(p.proposal_id), "proposer": p.proposer, "description": p.description,
            "state": p.state.name.lower(), "votes_for_gputoken": gputoken(str(p.votes_for)),
            "votes_against_gputoken": gputoken(str(p.votes_against)),
            "votes_abstain_gputoken": gputoken(str(p.votes_abstain)), "quorum_gputoken": gputoken(str(p.quorum)),
            "snapshot_unix": p.snapshot, "deadline_unix": p.deadline, "eta": p.eta,
            "calls": [{"target": c.target, "value": str(c.value), "calldata": "0x" + c.calldata.hex(),
                       "text": c.text} for c in p.calls]}


def _tally(p: Any) -> str:
    from blendr.units import fmt_tokens

    return (f"for {fmt_tokens(p.votes_for)}, against {fmt_tokens(p.votes_against)}, abstain "
            f"{fmt_tokens(p.votes_abstain)} (quorum {fmt_tokens(p.quorum)})")


def _list(g: Any, args: argparse.Namespace) -> int:
    ps = g.proposals()
    lines = [f"{p.proposal_id}  {p.state.name.lower():9}  {_tally(p)}  {(p.description.splitlines() or [''])[0][:60]}"
             for p in ps]
    return _out(args, [proposal_json(p) for p in ps], "\n".join(lines) if ps else "no proposals")


def _show(g: Any, args: argparse.Namespace) -> int:
    from blendr.chain.governing import utc

    p = g.proposal(_pid(args.proposal_id))
    now = g.clock()
    text = [f"proposal {p.proposal_id}", f"  state     {p.state.name.lower()}", f"  proposer  {p.proposer}",
            f"  votes     {_tally(p)}",
            f"  voting    opens after {utc(p.snapshot)}{_left(p.snapshot, now)}, "
            f"closes at {utc(p.deadline)}{_left(p.deadline, now)}"]
    if p.eta:
        text.append(f"  eta       executable from {utc(p.eta)}{_left(p.eta, now)}")
    text.append(f"  description: {p.description}")
    text += [f"  call {i + 1}: {c.text}" for i, c in enumerate(p.calls)]
    return _out(args, proposal_json(p), "\n".join(text))


def _left(at: int, now: int) -> str:
    """`` (in 3h 5m)`` while ``at`` (unix seconds) is ahead of the chain's ``now``; nothing once it passed."""
    from blendr.units import fmt_duration

    return f" (in {fmt_duration(at - now)})" if at > now else ""


def _receipt(args: argparse.Namespace, what: str, receipt: Any, extra: dict[str, Any] | None = None) -> int:
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    return _out(args, {"action": what, "tx": tx, **(extra or {})}, f"{what}: tx {tx}")


def _vote(g: Any, args: argparse.Namespace) -> int:
    pid = _pid(args.proposal_id)
    r = g.vote(pid, args.support, args.reason)
    return _receipt(args, f"voted {args.support} on {pid}", r, {"proposal_id": str(pid), "support": args.support})


def _queue(g: Any, args: argparse.Namespace) -> int:
    pid = _pid(args.proposal_id)
    return _receipt(args, f"queued {pid}", g.queue(pid), {"proposal_id": str(pid)})


def _execute(g: Any, args: argparse.Namespace) -> int:
    pid = _pid(args.proposal_id)
    r = g.execute(pid)
    etc = any("on ETC" in c.text for c in g.proposal(pid).calls)
    code = _receipt(args, f"executed {pid}", r, {"proposal_id": str(pid)})
    if etc and not args.json:
        print("its ETC changes apply once the queens' relay delivers the bridge message")
    return code


def _delegate(g: Any, args: argparse.Namespace) -> int:
    from eth_utils import is_address

    if not is_address(args.address):
        raise InvalidArgumentError(f"delegate to {args.address[:60]!r}: not an address")
    return _receipt(args, f"delegated votes to {args.address}", g.delegate(args.address), {"to": args.address})
