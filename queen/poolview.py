"""The operator's pool table (``blendr pool ls``): fetch from a queen's admin API and render."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from blendr.config import Config
from blendr.rpc import convert
from blendr.rpc.server import open_channel
from protos.blendr.v1 import queen_pb2 as pb
from protos.blendr.v1 import queen_pb2_grpc as pb_grpc


async def fetch_pool(cfg: Config, target: str, states: Sequence[int] = ()) -> pb.ListProvidersResponse:
    """Ask the queen at ``target`` for its pool (raises grpc.aio.AioRpcError when unreachable)."""
    async with open_channel(cfg, target) as channel:
        stub = pb_grpc.QueenAdminStub(channel)
        request = pb.ListProvidersRequest(states=list(states))  # type: ignore[arg-type]
        resp: pb.ListProvidersResponse = await stub.ListProviders(request, timeout=cfg.rpc.call_timeout_s)
        return resp


def _age(ts: float, now: float) -> str:
    if ts <= 0:
        return "-"
    s = max(0.0, now - ts)
    if s < 60:
        return f"{s:.0f}s ago"
    if s < 3600:
        return f"{s / 60:.0f}m ago"
    return f"{s / 3600:.1f}h ago"


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h"


def _devices(p: pb.ProviderInfo) -> str:
    models = Counter(d.model for d in p.devices)
    return ", ".join(f"{n}× {m}" for m, n in sorted(models.items())) or "-"


def _tflops(x: float) -> str:
    if x <= 0:
        return "-"
    return f"{x:.3g}"


def rows(resp: pb.ListProvidersResponse, now: float | None = None) -> list[dict[str, Any]]:
    """The pool as plain rows (also the ``--json`` output)."""
    now = time.time() if now is None else now
    out = []
    for p in resp.providers:
        state = convert.STATE_FROM_PB.get(p.state)
        lc = p.last_challenge
        verdict = convert.VERDICT_FROM_PB.get(lc.verdict) if lc.challenge_id else None
        out.append({
            "provider": p.address,
            "devices": _devices(p),
            "state": state.value if state else "unknown",
            "ready": not p.not_ready,
            "not_ready": p.not_ready,
            "last_challenge": f"{verdict.value} {_age(lc.issued_unix, now)}" if verdict else "-",
            "last_reason": lc.reason,
            "tflops": p.measured_tflops,
            "fingerprint_tflops": p.fingerprint_tflops,
            "passed": p.challenges_passed,
            "failed": p.challenges_failed,
            "abandoned": p.challenges_abandoned,
            "missed": p.challenges_missed,
            "quarantined_until": p.quarantined_until_unix,
            "issued": p.challenges_issued,
            "uptime": p.uptime,
            "connected": p.connected_seconds,
            "sandbox": p.sandbox or "none",
        })
    return out


def render(resp: pb.ListProvidersResponse, now: float | None = None) -> str:
    """A fixed-width table of the pool."""
    data = rows(resp, now)
    header = ["PROVIDER", "DEVICES", "STATE", "JOBS", "SANDBOX", "LAST CHALLENGE", "TFLOP/S (FINGERPRINT)", "PASS/FAIL/MISS", "UPTIME",
              "CONNECTED"]
    table = [header]
    for r in data:
        table.append([
            r["provider"][:12] + "…",
            r["devices"],
            r["state"],
            "quarantined" if r["quarantined_until"] else "ready" if r["ready"] else "not ready",
            "NONE (unsandboxed)" if r["sandbox"] == "none" else r["sandbox"],
            r["last_challenge"],
            f"{_tflops(r['tflops'])} ({_tflops(r['fingerprint_tflops'])})",
            # Abandoned challenges count as failed.
            f"{r['passed']}/{r['failed'] + r['abandoned']}/{r['missed']}",
            f"{100 * r['uptime']:.0f}%",
            _duration(r["connected"]),
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    counts = Counter(r["state"] for r in data)
    summary = (f"queen {resp.queen_address}: {len(data)} provider(s) — "
               + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if data
               else f"queen {resp.queen_address}: no providers yet")
    failing = [r for r in data if r["last_challenge"].startswith(("failed", "abandoned", "missed")) and r["last_reason"]]
    notes = [f"  {r['provider'][:12]}…: {r['last_reason']}" for r in failing]
    # Not offered to renters until they are ready again.
    unready = [f"  {r['provider'][:12]}…: {r['not_ready']}" for r in data if not r["ready"]]
    return "\n".join([summary, *lines, *(["last failures:", *notes] if notes else []),
                      *(["not ready for jobs (not offered):", *unready] if unready else [])])
