"""``blendr vouchers buy|ls|transfer|redeem``: GPU-hours as tokens (ComputeVoucher, an ERC-1155 on Ethereum).

One voucher is one GPU-hour of a GPU class (a model at a price governance listed), backed by the GPUTOKEN its
buyer locked. These commands send transactions from ``<home>/node.key`` straight to Ethereum (the deployment
manifest names the contracts; the key pays gas), as ``blendr stake`` does; ``blendr job submit --pay vouchers``
then pays a job's escrow with them.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from blendr.errors import ConfigError, InvalidArgumentError
from blendr.units import fmt_tokens


def add_parsers(sub: Any, common: Any, deployment_flag: Any) -> None:
    """Registers ``blendr vouchers`` and its actions."""
    v = sub.add_parser("vouchers", help="GPU-hours as tokens: buy, list, transfer and redeem ComputeVouchers")
    vsub = v.add_subparsers(dest="action", metavar="ACTION", required=True)
    buy = vsub.add_parser(
        "buy", help="lock GPUTOKEN for GPU-hours of a GPU model at its listed price (approves, then buys)",
        description="Example: blendr vouchers buy --gpu-model h100-sxm --hours 10")
    buy.add_argument("--gpu-model", required=True, help="a model key with a class on sale (see `blendr vouchers ls`)")
    buy.add_argument("--hours", type=int, required=True, help="GPU-hours to buy (whole hours)")
    buy.add_argument("--to", default="", help="the address that receives the vouchers (default: yours)")
    buy.add_argument("--max-price", default="", help="refuse if the class costs more GPUTOKEN per GPU-hour")
    ls = vsub.add_parser("ls", help="the classes on sale and the vouchers you hold")
    ls.add_argument("--all", action="store_true", help="also the classes no longer on sale")
    ls.add_argument("--address", default="", help="whose vouchers (default: yours)")
    tr = vsub.add_parser("transfer", help="send vouchers to another address (ERC-1155 transfer)")
    tr.add_argument("to", help="the receiving address")
    rd = vsub.add_parser("redeem", help="burn vouchers for their GPUTOKEN, less the redemption fee")
    rd.add_argument("--to", default="", help="the address paid (default: yours)")
    for p in (tr, rd):
        p.add_argument("--gpu-model", default="", help="the model (when you hold one class of it)")
        p.add_argument("--id", type=int, default=0, help="the class id (see `blendr vouchers ls`)")
        p.add_argument("--hours", type=int, required=True, help="how many vouchers (GPU-hours)")
    for p in (buy, ls, tr, rd):
        common(p)
        deployment_flag(p)
        p.add_argument("--json", action="store_true", help="machine-readable output (amounts in GPUTOKEN)")


def run(args: argparse.Namespace, load: Any) -> int:
    """Runs one ``blendr vouchers`` action; BlendrError for refused input or a reverted transaction."""
    from blendr.chain.client import ChainClient
    from blendr.chain.contracts import ComputeVoucher, GPUToken
    from blendr.chain.manifest import chain_settings, load_manifest
    from blendr.identity import NodeIdentity

    cfg = load(args)
    m = load_manifest(cfg)
    ident = NodeIdentity.load(cfg.home)
    eth = ChainClient(chain_settings(cfg, m, "eth"), ident.account())
    vouchers = ComputeVoucher(eth, m.eth.address("ComputeVoucher"))
    token = GPUToken(eth, m.eth.address("GPUToken"))
    action: dict[str, Any] = {"buy": _buy, "ls": _ls, "transfer": _transfer, "redeem": _redeem}
    return int(action[args.action](args, vouchers, token, ident.address))


def _positive_hours(hours: int) -> int:
    if hours <= 0:
        raise InvalidArgumentError(f"--hours must be a positive whole number of GPU-hours (got {hours})")
    return hours


def _address(text: str, what: str) -> str:
    from eth_utils import is_address, to_checksum_address

    if not is_address(text):
        raise InvalidArgumentError(f"{what} {text!r} is not an Ethereum address")
    return str(to_checksum_address(text))


def _out(args: argparse.Namespace, data: dict[str, Any], text: str) -> int:
    print(json.dumps(data, indent=2) if args.json else text)
    return 0


def _buy(args: argparse.Namespace, vouchers: Any, token: Any, me: str) -> int:
    from blendr.units import parse_tokens

    hours = _positive_hours(args.hours)
    to = _address(args.to, "--to") if args.to else me
    vid = vouchers.current_class_of(args.gpu_model)
    if vid == 0:
        on_sale = sorted({c.model for c in vouchers.classes() if c.on_sale})
        raise InvalidArgumentError(f"no class of {args.gpu_model!r} is on sale (on sale: {', '.join(on_sale) or 'none'})")
    cls = vouchers.class_of(vid)
    if args.max_price and cls.price_per_hour > parse_tokens(args.max_price, "--max-price"):
        raise InvalidArgumentError(f"{cls.model} costs {fmt_tokens(cls.price_per_hour)} GPUTOKEN per GPU-hour, above "
                                   f"--max-price {args.max_price}")
    cost = cls.price_per_hour * hours
    balance = int(token.balance_of(me))
    if balance < cost:
        raise ConfigError(f"{me} holds {fmt_tokens(balance)} GPUTOKEN, less than the {fmt_tokens(cost)} that "
                          f"{hours} GPU-hours of {cls.model} cost")
    if int(token.allowance(me, vouchers.address)) < cost:
        token.approve(vouchers.address, cost)
    receipt = vouchers.buy(vid, hours, to)
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    data = {"id": vid, "gpu_model": cls.model, "hours": hours, "to": to,
            "paid_gputoken": fmt_tokens(cost, places=18), "tx": tx}
    return _out(args, data, f"bought {hours} GPU-hours of {cls.model} (class {vid}) for {fmt_tokens(cost)} GPUTOKEN "
                            f"to {to}\n  tx {tx}")


def _ls(args: argparse.Namespace, vouchers: Any, token: Any, me: str) -> int:
    who = _address(args.address, "--address") if args.address else me
    held = vouchers.balances(who)
    rows = [c for c in vouchers.classes() if c.on_sale or args.all or held.get(c.id)]
    fee = vouchers.redeem_fee_bps()
    if args.json:
        return _out(args, {"address": who, "redeem_fee_bps": fee, "classes": [
            {"id": c.id, "gpu_model": c.model, "price_per_gpu_hour_gputoken": fmt_tokens(c.price_per_hour, places=18),
             "on_sale": c.on_sale, "hours": held.get(c.id, 0)} for c in rows]}, "")
    if not rows:
        print("no voucher classes are listed")
        return 0
    print(f"{'ID':>4}  {'MODEL':16s} {'PRICE/h':>10s}  {'ON SALE':7s} {'YOU HOLD':>9s}")
    for c in rows:
        print(f"{c.id:>4}  {c.model:16s} {fmt_tokens(c.price_per_hour):>10s}  {'yes' if c.on_sale else 'no':7s} "
              f"{held.get(c.id, 0):>9d}")
    worth = sum(n * vouchers.price_of(i) for i, n in held.items())
    print(f"{who} holds {sum(held.values())} GPU-hours backed by {fmt_tokens(worth)} GPUTOKEN (redeemable less "
          f"{fee / 100:g} %)")
    return 0


def _class_held(args: argparse.Namespace, vouchers: Any, me: str) -> int:
    """The class id an action names: --id, or the one class of --gpu-model that ``me`` holds."""
    if args.id:
        if not 0 < args.id < 2**256:
            raise InvalidArgumentError(f"--id {args.id} is not a voucher class id (see `blendr vouchers ls`)")
        return int(args.id)
    if not args.gpu_model:
        raise InvalidArgumentError("name the vouchers with --id or --gpu-model")
    held = vouchers.balances(me)
    ids = [c.id for c in vouchers.classes() if c.model == args.gpu_model and held.get(c.id)]
    if not ids:
        raise InvalidArgumentError(f"{me} holds no vouchers of {args.gpu_model!r}")
    if len(ids) > 1:
        raise InvalidArgumentError(f"{me} holds vouchers of {args.gpu_model!r} in classes {ids} (different prices): "
                                   "choose one with --id")
    return int(ids[0])


def _check_held(vouchers: Any, me: str, vid: int, hours: int) -> Any:
    cls = vouchers.class_of(vid)  # ContractRevertError ComputeVoucherUnknownClass for an unknown id
    have = vouchers.balance_of(me, vid)
    if have < hours:
        raise InvalidArgumentError(f"{me} holds {have} GPU-hours of class {vid} ({cls.model}), fewer than {hours}")
    return cls


def _transfer(args: argparse.Namespace, vouchers: Any, token: Any, me: str) -> int:
    hours = _positive_hours(args.hours)
    to = _address(args.to, "the receiver")
    vid = _class_held(args, vouchers, me)
    cls = _check_held(vouchers, me, vid, hours)
    receipt = vouchers.transfer(to, vid, hours)
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    return _out(args, {"id": vid, "gpu_model": cls.model, "hours": hours, "to": to, "tx": tx},
                f"sent {hours} GPU-hours of {cls.model} (class {vid}) to {to}\n  tx {tx}")


def _redeem(args: argparse.Namespace, vouchers: Any, token: Any, me: str) -> int:
    hours = _positive_hours(args.hours)
    to = _address(args.to, "--to") if args.to else me
    vid = _class_held(args, vouchers, me)
    cls = _check_held(vouchers, me, vid, hours)
    receipt = vouchers.redeem(vid, hours, to)
    [ev] = vouchers.events(receipt, "VouchersRedeemed")
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    data = {"id": vid, "gpu_model": cls.model, "hours": hours, "to": to,
            "paid_gputoken": fmt_tokens(int(ev["paid"]), places=18), "fee_gputoken": fmt_tokens(int(ev["fee"]), places=18),
            "burned_gputoken": fmt_tokens(int(ev["burned"]), places=18), "tx": tx}
    return _out(args, data, f"redeemed {hours} GPU-hours of {cls.model} (class {vid}): {fmt_tokens(int(ev['paid']))} "
                            f"GPUTOKEN to {to}, fee {fmt_tokens(int(ev['fee']))} (of which "
                            f"{fmt_tokens(int(ev['burned']))} burned)\n  tx {tx}")
