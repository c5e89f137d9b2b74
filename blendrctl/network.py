"""``blendr network pools|providers|challenges``: the network as a king sees it (its NetworkView; no sign-in).

Tables for people, ``--json`` for programs (blendrctl.jsonout: amounts as GPUTOKEN strings, ids as 0x-hex). A
refusal of the king is printed with its status code and the command exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any

from blendr.units import fmt_tokens

EXIT_FAILURE = 1


def add_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    net = sub.add_parser("network", help="the network as the king sees it: pools, providers, challenge verdicts")
    nsub = net.add_subparsers(dest="action", metavar="ACTION", required=True)

    def p(name: str, helptext: str) -> argparse.ArgumentParser:
        q: argparse.ArgumentParser = nsub.add_parser(name, help=helptext)
        common(q)
        q.add_argument("--king", help="the king's HOST:PORT (default: renter.king, 127.0.0.1:7480)")
        q.add_argument("--ca-file", help="CA certificate of the king's TLS certificate (default: rpc.ca_file, "
                                         "else <home>/tls/ca.crt)")
        q.add_argument("--insecure", action="store_true", help="plaintext gRPC (devnets only)")
        q.add_argument("--json", action="store_true", help="machine-readable output")
        return q

    p("pools", "the queens connected to the king and their pools")
    pr = p("providers", "every provider of every pool: GPUs, state, reputation, challenges passed and failed")
    pr.add_argument("--queen", default="", help="only this queen's pool (address)")
    pr.add_argument("--gpu-model", default="", help="only this GPU model")
    ch = p("challenges", "recent challenge verdicts, newest first, with the ETC batch that recorded them")
    ch.add_argument("--provider", default="", help="only this provider (address)")
    ch.add_argument("--limit", type=int, default=50, help="at most this many (1-500, default 50)")


def run(args: argparse.Namespace, load: Callable[[argparse.Namespace], Any]) -> int:
    return asyncio.run(_run(args, load(args)))


async def _run(args: argparse.Namespace, cfg: Any) -> int:
    import grpc

    from blendr.rpc.server import open_channel
    from blendrctl.jsonout import to_json
    from protos.blendr.v1 import network_pb2 as npb
    from protos.blendr.v1 import network_pb2_grpc as npb_grpc

    target = args.king or cfg.renter.king
    calls: dict[str, tuple[str, Any, str, Callable[[list[Any]], str]]] = {
        "pools": ("ListPools", npb.ListPoolsRequest(), "pools", pools_table),
        "providers": ("ListNetworkProviders",
                      npb.ListNetworkProvidersRequest(queen=args.queen, gpu_model=args.gpu_model) if
                      args.action == "providers" else None, "providers", providers_table),
        "challenges": ("ListChallenges",
                       npb.ListChallengesRequest(provider=args.provider, limit=max(0, args.limit)) if
                       args.action == "challenges" else None, "challenges", challenges_table),
    }
    method, request, field, table = calls[args.action]
    try:
        async with open_channel(cfg, target) as ch:
            answer = await getattr(npb_grpc.NetworkViewStub(ch), method)(request, timeout=cfg.renter.timeout_s)
    except grpc.aio.AioRpcError as exc:
        print(f"error: the king at {target} answered {exc.code().name}: {exc.details()}", file=sys.stderr)
        return EXIT_FAILURE
    rows = list(getattr(answer, field))
    print(json.dumps([to_json(r) for r in rows], indent=2) if args.json else table(rows))
    return 0


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _short(text: str, n: int = 12) -> str:
    return text if len(text) <= n else text[:n] + "…"


def _table(header: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return empty
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in [header, *rows])


def pools_table(pools: list[Any]) -> str:
    """The pools as a table (one line each)."""
    return _table(["QUEEN", "ENDPOINT", "PROVIDERS", "ALIVE", "GPUS", "FREE", "CONNECTED (UTC)"],
                  [[p.queen, p.endpoint, str(p.providers), str(p.providers_alive), str(p.gpus_total),
                    str(p.gpus_free), _when(p.connected_since_unix)] for p in pools],
                  "no queen is connected to this king")


def providers_table(providers: list[Any]) -> str:
    """The providers as a table (one line each)."""
    return _table(["PROVIDER", "QUEEN", "MODEL", "GPUS", "BUSY", "STATE", "ASK/H", "REPUTATION", "PASSED", "FAILED",
                   "UPTIME"],
                  [[p.address, _short(p.queen), p.gpu_model, str(p.gpus), str(p.busy_gpus), p.state,
                    fmt_tokens(int(p.ask_per_gpu_hour or "0")), f"{p.reputation_bps / 100:.2f}%",
                    str(p.challenges_passed), str(p.challenges_failed), f"{p.uptime:.1%}"] for p in providers],
                  "no provider in any connected pool")


def challenges_table(challenges: list[Any]) -> str:
    """The verdicts as a table (one line each)."""
    return _table(["DECIDED (UTC)", "PROVIDER", "VERDICT", "REASON", "RENTAL", "ETC BATCH"],
                  [[_when(c.decided_unix), c.provider, c.verdict, _short(c.reason, 30),
                    _short("0x" + bytes(c.rental_id).hex()) if c.rental_id else "-",
                    _short(c.etc_batch_id) if c.etc_batch_id else "-"] for c in challenges],
                  "no challenge verdict heard yet")
