"""The renter's commands: ``blendr job submit|status|logs|cancel|list``, ``blendr offers``, ``blendr wallet``.

They use the SDK (:mod:`blendr.client`) with the renter's wallet key, ``<home>/node.key`` (``blendr identity
init`` creates one; ``blendr devnet key renter`` installs the devnet renter's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from blendr.units import fmt_duration, fmt_tokens


def add_parsers(sub: Any, common: Any) -> None:
    def conn(p: argparse.ArgumentParser) -> None:
        common(p)
        p.add_argument("--king", help="the king's HOST:PORT (default: renter.king, 127.0.0.1:7480)")
        p.add_argument("--ca-file", help="CA certificate of the king's TLS certificate (default: rpc.ca_file, "
                                         "else <home>/tls/ca.crt)")
        p.add_argument("--insecure", action="store_true", help="plaintext gRPC (devnets only)")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    job = sub.add_parser("job", help="run, follow and cancel jobs on rented GPUs")
    jsub = job.add_subparsers(dest="action", metavar="ACTION", required=True)
    js = jsub.add_parser(
        "submit", help="quote, sign and submit a job, then follow it live",
        description="Example: blendr job submit --gpus 1 --gpu-model h100-sxm --hours 2 --max-price 3.5 "
                    "--workdir ./proj -- python train.py")
    conn(js)
    js.add_argument("--gpus", type=int, default=1, help="GPUs on one provider (default 1)")
    js.add_argument("--gpu-model", default="", help="a model key (h100-sxm, a100-80gb, rtx-4090, cpu, ...); "
                                                    "default any")
    js.add_argument("--min-vram-gb", type=float, default=0.0, help="minimum memory per GPU")
    js.add_argument("--min-tflops", type=float, default=0.0, help="minimum FP32 TFLOP/s per GPU, as measured")
    js.add_argument("--hours", type=float, default=1.0, help="length of the rental (default 1)")
    js.add_argument("--max-price", default="1", help="the most you pay, GPUTOKEN per GPU-hour (default 1)")
    js.add_argument("--workdir", help="directory shipped to the provider, encrypted to its key")
    js.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="environment variable")
    js.add_argument("--pip", action="append", default=[], metavar="REQUIREMENT",
                    help="a pip requirement installed for the job (repeat it; e.g. --pip numpy==2.1 --pip scipy), "
                         "besides a requirements.txt at the top of --workdir")
    js.add_argument("--name", default="", help="a name for the job")
    js.add_argument("--request-id", default="", help="idempotency key (default random): resubmitting with the "
                                                     "same id returns the same job")
    js.add_argument("--max-wait", metavar="DURATION", default="",
                    help="the longest the job may wait for a provider (90s, 30m, 2h, 1d; default: the king's, "
                         "1h unless its operator set another); not placed by then it ends failed with the reason, "
                         "its escrow untouched")
    js.add_argument("--pay", choices=["tokens", "vouchers"], default="tokens",
                    help="what pays the escrow: GPUTOKEN (default; the SDK signs a permit) or your ComputeVoucher "
                         "GPU-hours of --gpu-model (`blendr vouchers buy`), at their class price, which must be at "
                         "most --max-price; GPUs x hours must then be whole GPU-hours")
    js.add_argument("--detach", action="store_true", help="return once the job is submitted")
    js.add_argument("entrypoint", nargs=argparse.REMAINDER, help="-- COMMAND ARGS... run in the workdir")
    for name, helptext in (("status", "a job's state, provider, rentals and cost"),
                           ("logs", "a job's log lines"), ("cancel", "stop a job; its rental settles for "
                                                                     "the verified time so far")):
        p = jsub.add_parser(name, help=helptext)
        conn(p)
        p.add_argument("job_id")
        if name == "logs":
            p.add_argument("-f", "--follow", action="store_true", help="keep following until the job ends")
    jg = jsub.add_parser("get", help="fetch a finished job's outputs (the files it wrote under $BLENDR_OUTPUT_DIR), "
                                     "decrypted with your key")
    conn(jg)
    jg.add_argument("job_id")
    jg.add_argument("--out", help="an absent or empty directory to unpack them into (default ./JOB_ID)")
    jl = jsub.add_parser("list", help="your jobs, newest first")
    conn(jl)
    jl.add_argument("--state", action="append", choices=["queued", "scheduled", "running", "ended", "settled",
                                                         "failed", "cancelled"], help="only these states")
    jl.add_argument("--limit", type=int, default=50)
    offers = sub.add_parser("offers", help="what GPUs the network offers now, at what price and reputation")
    conn(offers)
    wallet = sub.add_parser("wallet", help="your address, GPUTOKEN balance, allowance, escrow, vouchers and the "
                                           "epoch rewards you can claim (read from the chain)")
    conn(wallet)


def run(args: argparse.Namespace, load: Any) -> int:
    return asyncio.run(_run(args, load))


async def _run(args: argparse.Namespace, load: Any) -> int:
    from blendr.client import KingClient, Pins
    from blendr.identity import NodeIdentity

    cfg = load(args)
    ident, created = NodeIdentity.load_or_create(cfg.home)
    if created:
        print(f"created a wallet key for {ident.address} in {cfg.home} (fund it with GPUTOKEN to rent GPUs)",
              file=sys.stderr)
    target = args.king or cfg.renter.king
    ca: Path | None = None
    if cfg.rpc.tls:
        ca = Path(cfg.rpc.ca_file).expanduser() if cfg.rpc.ca_file else cfg.path("tls", "ca.crt")
        if not ca.is_file():
            print(f"error: no CA certificate at {ca}: pass --ca-file with the king's CA (or --insecure for a "
                  "plaintext devnet)", file=sys.stderr)
            return 2
    rc = cfg.renter
    pins = Pins(rc.king_address, rc.chain_id, rc.rental_contract, rc.token_contract)
    async with KingClient(target, ident.account(), ca_file=ca, insecure=not cfg.rpc.tls, timeout_s=rc.timeout_s,
                          pins=pins) as king:
        if args.cmd == "offers":
            return await _offers(king, args)
        if args.cmd == "wallet":
            return await _wallet(king, args, cfg)
        return await {"submit": _submit, "status": _status, "logs": _logs, "cancel": _cancel,
                      "list": _list, "get": _get}[args.action](king, args)


def _state(job: Any) -> str:
    from protos.blendr.v1 import renter_pb2 as rpb

    return str(rpb.JobState.Name(job.state)[len("JOB_STATE_"):].lower())


def _job_dict(job: Any) -> dict[str, Any]:
    """A job for --json: amounts in GPUTOKEN in ``*_gputoken`` fields, ids as 0x-hex (blendrctl.jsonout)."""
    from blendrctl.jsonout import to_json

    return to_json(job)


async def _submit(king: Any, args: argparse.Namespace) -> int:
    from blendr.client import JobRequest, NoProviderError, RenterError

    cmd = list(args.entrypoint)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print("error: give the command to run after --, e.g. blendr job submit --gpus 1 -- python train.py",
              file=sys.stderr)
        return 2
    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"error: --env {item!r}: use NAME=VALUE", file=sys.stderr)
            return 2
        env[name] = value
    max_wait_s = 0.0
    if args.max_wait:
        from blendr.errors import InvalidArgumentError
        from blendr.units import parse_duration

        try:
            max_wait_s = parse_duration(args.max_wait, "--max-wait")
        except InvalidArgumentError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    req = JobRequest(entrypoint=shlex.join(cmd), gpus=args.gpus, hours=args.hours, max_price=args.max_price,
                     gpu_model=args.gpu_model, min_vram_gb=args.min_vram_gb, min_tflops=args.min_tflops,
                     workdir=Path(args.workdir) if args.workdir else None, env=env, pip=list(args.pip),
                     name=args.name,
                     request_id=args.request_id, max_wait_s=max_wait_s, pay=args.pay)
    try:
        job = await king.submit(req)
    except NoProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        for o in exc.closest:
            print(f"  closest: {o.gpus_total}×{o.gpu_model} at {fmt_tokens(int(o.quote_per_gpu_hour or 0))}/h "
                  f"(ask {fmt_tokens(int(o.min_ask_per_gpu_hour or 0))}/h, reputation "
                  f"{o.best_reputation_bps / 100:.0f}%)", file=sys.stderr)
        return 1
    except RenterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json and args.detach:
        print(json.dumps(_job_dict(job), indent=2))
        return 0
    print(f"job {job.job_id} submitted: {req.spec().describe()}")
    if args.detach:
        print(f"follow it with: blendr job logs -f {job.job_id}")
        return 0
    return await _follow(king, job.job_id, show_logs=True)


async def _get(king: Any, args: argparse.Namespace) -> int:
    dest = Path(args.out) if args.out else Path(args.job_id)
    files = await king.get_output(args.job_id, dest)
    if args.json:
        print(json.dumps({"job_id": args.job_id, "dir": str(dest.resolve()), "files": files}))
    else:
        print(f"{files} file{'s' if files != 1 else ''} of job {args.job_id} in {dest.resolve()}")
    return 0


async def _follow(king: Any, job_id: str, *, show_logs: bool, after: int = 0) -> int:
    tty = sys.stdout.isatty()
    last_state = ""
    job = None
    async for ev in king.watch(job_id, after):
        job = ev.job
        state = ev.state or _state(job)  # the state the event left the job in, not the job's state now
        if ev.kind == "log":
            if show_logs:
                print(f"  | {ev.message}", flush=True)
            continue
        elapsed = (time.time() - job.started_unix) if job.started_unix and not job.ended_unix else (
            (job.ended_unix - job.started_unix) if job.started_unix else 0.0)
        line = (f"[{state:9s}] {ev.kind:14s} {ev.message}")
        if ev.kind == "progress":
            line = f"[{state:9s}] progress       {ev.progress * 100:5.1f}%"
        print(line, flush=True)
        if state != last_state and state in ("running", "ended") and tty:
            print(f"            provider {job.provider}  elapsed {fmt_duration(elapsed)}  cost so far "
                  f"{fmt_tokens(int(job.cost_so_far or 0))} GPUTOKEN", flush=True)
        last_state = state
    if job is None:
        return 1
    print(_summary(job))
    return 0 if _state(job) == "settled" and job.exit_code == 0 else 1


def _summary(job: Any) -> str:
    lines = [f"job {job.job_id}: {_state(job)}" + (f" ({job.reason})" if job.reason else "")]
    if job.exit_code:
        lines.append(f"  exit code {job.exit_code}")
    for r in job.rentals:
        # "paid" is what the renter paid (gross): the provider's payment plus the protocol fee, as on the receipt.
        paid = int(r.provider_payment or 0) + int(r.fee or 0)
        lines.append(f"  rental 0x{bytes(r.rental_id).hex()[:16]}… on {r.provider}: {r.state}, escrow "
                     f"{fmt_tokens(int(r.escrow or 0))}, verified {r.verified_seconds} s, paid {fmt_tokens(paid)} "
                     f"(provider {fmt_tokens(int(r.provider_payment or 0))} + fee {fmt_tokens(int(r.fee or 0))}), "
                     f"refunded {fmt_tokens(int(r.refund or 0))}")
        if r.created_tx:
            lines.append(f"    created {r.created_tx}")
        if r.settled_tx:
            lines.append(f"    settled {r.settled_tx}")
    lines.append(f"  cost {fmt_tokens(int(job.cost_so_far or 0))} GPUTOKEN")
    return "\n".join(lines)


async def _status(king: Any, args: argparse.Namespace) -> int:
    job = await king.get(args.job_id)
    if args.json:
        print(json.dumps(_job_dict(job), indent=2))
        return 0
    print(_summary(job))
    if job.provider:
        print(f"  provider {job.provider} (queen {job.queen})")
    if job.progress >= 0:
        print(f"  progress {job.progress * 100:.1f}%")
    return 0


async def _logs(king: Any, args: argparse.Namespace) -> int:
    if args.follow:
        return await _follow(king, args.job_id, show_logs=True)
    job = await king.get(args.job_id)
    # Without -f: the log lines so far (events up to now), then return.
    async for ev in _events_until(king, args.job_id, job.last_seq):
        if ev.kind == "log":
            print(ev.message)
    return 0


async def _events_until(king: Any, job_id: str, last: int) -> Any:
    if last == 0:
        return
    async for ev in king.watch(job_id, 0):
        yield ev
        if ev.seq >= last:
            return


async def _cancel(king: Any, args: argparse.Namespace) -> int:
    job = await king.cancel(args.job_id)
    if args.json:
        print(json.dumps(_job_dict(job), indent=2))
        return 0
    live = [r for r in job.rentals if r.state not in ("settled", "expired")]
    if live:
        print(f"job {job.job_id}: {_state(job)}; its rental is cancelled and settles for the verified time so far")
    elif job.rentals:
        print(f"job {job.job_id}: {_state(job)}; its rentals are already settled")
    else:
        print(f"job {job.job_id}: {_state(job)}; it had no rental: nothing was charged")
    return 0


async def _list(king: Any, args: argparse.Namespace) -> int:
    jobs = await king.list(args.state or (), args.limit)
    if args.json:
        print(json.dumps([_job_dict(j) for j in jobs], indent=2))
        return 0
    if not jobs:
        print("no jobs")
        return 0
    print(f"{'JOB':24s} {'STATE':10s} {'SPEC':22s} {'PROVIDER':14s} {'COST':>10s}  NAME")
    for j in jobs:
        spec = f"{j.spec.gpus}×{j.spec.gpu_model or 'any'} {fmt_duration(j.spec.duration_s)}"
        print(f"{j.job_id:24s} {_state(j):10s} {spec:22s} {(j.provider[:12] + '…') if j.provider else '-':14s} "
              f"{fmt_tokens(int(j.cost_so_far or 0)):>10s}  {j.name}")
    return 0


async def _offers(king: Any, args: argparse.Namespace) -> int:
    offers = await king.offers()
    if args.json:
        from blendrctl.jsonout import to_json

        print(json.dumps([to_json(o) for o in offers], indent=2))
        return 0
    if not offers:
        print("no providers are offering GPUs right now")
        return 0
    print(f"{'MODEL':14s} {'PROVIDERS':>9s} {'FREE/TOTAL':>11s} {'MIN ASK/h':>10s} {'QUOTE/h':>9s} {'BEST REP':>9s} "
          f"{'UNSANDBOXED':>11s}")
    for o in offers:
        print(f"{o.gpu_model:14s} {o.providers:>9d} {f'{o.gpus_free}/{o.gpus_total}':>11s} "
              f"{fmt_tokens(int(o.min_ask_per_gpu_hour or 0)):>10s} {fmt_tokens(int(o.quote_per_gpu_hour or 0)):>9s} "
              f"{o.best_reputation_bps / 100:>8.1f}% {o.unsandboxed_providers:>11d}")
    if any(o.unsandboxed_providers for o in offers):
        print("unsandboxed: providers whose operators run renters' jobs without a sandbox (provider.sandbox = "
              "\"none\"); their owner can read your job's files", file=sys.stderr)
    return 0


async def _wallet(king: Any, args: argparse.Namespace, cfg: Any) -> int:
    from blendrctl.rewards import print_wallet_rewards, wallet_rewards, wallet_rewards_json

    w = await king.wallet()
    # the rewards come from the chain, not the king (recomputed as `blendr rewards ls` does); off the event loop
    rewards = await asyncio.to_thread(wallet_rewards, cfg, w.address)
    if args.json:
        from blendrctl.jsonout import to_json

        print(json.dumps({**to_json(w), "rewards": wallet_rewards_json(rewards)}, indent=2))
        return 0
    print(f"address    {w.address}\nbalance    {fmt_tokens(int(w.balance))} GPUTOKEN\n"
          f"allowance  {fmt_tokens(int(w.allowance))} GPUTOKEN (GPURental may draw)\n"
          f"in escrow  {fmt_tokens(int(w.in_escrow))} GPUTOKEN (rentals not settled yet)")
    _print_vouchers_and_burn(w)
    print_wallet_rewards(rewards)
    return 0


def _print_vouchers_and_burn(w: Any) -> None:
    """The wallet's ComputeVoucher holdings and the network's usage burn (renter.proto Wallet fields 10-14)."""
    for v in w.vouchers:
        print(f"vouchers   {v.hours} GPU-hours of {v.gpu_model} (class {v.id}, backed by "
              f"{fmt_tokens(int(v.price_per_gpu_hour) * v.hours)} GPUTOKEN)")
    if w.voucher_contract and not w.vouchers:
        print("vouchers   none (buy GPU-hours with `blendr vouchers buy --gpu-model MODEL --hours N`)")
    if w.fees_burned:
        print(f"fee burn   {w.fee_burn_bps / 100:g} % of every protocol fee; {fmt_tokens(int(w.fees_burned))} GPUTOKEN "
              f"burned so far, {fmt_tokens(int(w.fees_burn_pending or 0))} set aside to burn")
