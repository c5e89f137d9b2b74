"""``make demo``: the whole network on this machine, and a renter's job through it, end to end.

1. ``blendr devnet up``: eth (31337) and etc (63) anvil chains on free ports, every contract deployed, the devnet
   accounts funded and staked;
2. ``blendr king run``: the renter gateway, the scheduler, queens' sessions, bridge deliveries, settlements;
3. two ``blendr queen run`` with chain duties (bridge attesters, verification on ETC), linked to the king;
4. four ``blendr provider run`` (two per queen) on one local Ray with its dashboard (one pinned resource each),
   challenged live;
5. the devnet renter submits a job through the SDK (``blendr.client``, what ``blendr job submit`` uses): it
   renders a Mandelbrot image with NumPy (``examples/render``), reporting progress; the demo follows it live and
   ends with a receipt: escrow, payment to the provider, fee, refund, reputation before and after, and the
   transactions on both chains.

The king also serves the dApp (``king.web_listen``, ``--web-port``, default 8550; 0: any free port): the demo prints
"Open the dApp: URL" once the king serves it. With ``--stay`` the whole network keeps running after the job until
Ctrl-C (SIGINT or SIGTERM), and the demo prints the page's URL and a devnet renter's private key to paste into the
page's "Use a devnet key".

Everything lives under ``.demo/`` (homes, keys, logs, chain state), fresh on every run, and everything the demo
started is stopped at the end. ``BLENDR_DEMO_SIZE`` (default 2048) sets the image size.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from blendr.ports import free_port

PROVIDERS = 4
QUEENS = 2
ASKS = ("0.40", "0.45", "0.50", "0.55")
WEB_PORT = 8550  # the dApp's default port (--web-port)
# the line `blendr king run` prints once it serves, naming the page's URL when king.web_listen is set
KING_WEB = re.compile(r"^king 0x[0-9a-fA-F]{40} serving .*; web page at (\S+)", re.M)


def _say(msg: str) -> None:
    print(f"\033[1m==> {msg}\033[0m" if sys.stdout.isatty() else f"==> {msg}", flush=True)


def _wait_file(path: Path, proc: subprocess.Popen[bytes], log: Path, what: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise SystemExit(f"{what} did not start; its log is above")
        time.sleep(0.2)
    return path.read_text().strip()


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m blendrctl.demo", description=(
        "The whole network on this machine and a renter's job through it, with a receipt; the king serves the "
        "dApp meanwhile."))
    ap.add_argument("--web-port", type=int, default=WEB_PORT, metavar="PORT",
                    help=f"the dApp's port on 127.0.0.1 (default {WEB_PORT}; 0: any free port)")
    ap.add_argument("--stay", action="store_true",
                    help="after the job, keep the whole network (and the dApp) running until Ctrl-C")
    args = ap.parse_args(argv)
    if not 0 <= args.web_port <= 65535:
        ap.error(f"--web-port must be 0..65535 (got {args.web_port})")
    return args


def _web_port(port: int) -> int:
    """``port`` if it is free on 127.0.0.1 (0: a free one); stops with a clear message when it is taken."""
    if port == 0:
        return free_port()
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(f"the dApp's port 127.0.0.1:{port} is in use (another demo?): pass --web-port PORT, "
                             "or --web-port 0 for any free port") from None
    return port


def _wait_log(log: Path, pattern: re.Pattern[str], proc: subprocess.Popen[bytes], what: str,
              timeout: float = 90) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while True:
        m = pattern.search(log.read_text(errors="replace"))
        if m:
            return m
        if proc.poll() is not None or time.monotonic() > deadline:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise SystemExit(f"{what} did not start; its log is above")
        time.sleep(0.2)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stoppable() -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop the demo and everything it started, wherever they arrive: SIGINT's handler is
    set again (a demo started in the background inherits SIGINT ignored), and SIGTERM interrupts like Ctrl-C instead
    of killing the demo before it stops its processes."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


def _stay(procs: list[subprocess.Popen[bytes]], logs: Path, url: str, renter_key: str) -> int:
    """Keeps the network running until Ctrl-C (SIGINT) or SIGTERM: 0; or until one of its processes exits: 1."""
    try:  # a Ctrl-C from here on, even one pressed while these lines are written, stops the demo cleanly
        _say("the network stays up until you press Ctrl-C")
        print(f"   Open the dApp: {url}")
        print(f"   a devnet renter's private key, for the page's \"Use a devnet key\": {renter_key}")
        print("   (a devnet key: every node on this machine knows it; never use it on a real chain)")
        print("   stop: press Ctrl-C (everything the demo started is stopped)", flush=True)
        while True:
            time.sleep(1.0)
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                print(f"a demo process exited (code {dead[0].returncode}); see the logs in {logs}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        print(flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    _stoppable()
    from blendr import devnet
    from blendr.config import load_config
    from blendr.telemetry import configure_logging

    web_port = _web_port(args.web_port)
    configure_logging("WARNING")
    root = Path(".demo").resolve()
    shutil.rmtree(root, ignore_errors=True)
    logs = root / "logs"
    logs.mkdir(parents=True)
    chain_home = root / "devnet"
    chain_home.mkdir()
    (chain_home / "config.toml").write_text(f"[devnet]\neth_port = {free_port()}\netc_port = {free_port()}\n")
    chain_cfg = load_config(chain_home, env={})
    manifest = chain_home / "deployment.json"
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLENDR_")} | ray_env
        env["PYTHONUNBUFFERED"] = "1"
        fh = open(logs / f"{name}.log", "wb")  # noqa: SIM115 (lives as long as the process)
        p = subprocess.Popen([sys.executable, "-m", "blendrctl", *args], stdout=fh, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        procs.append(p)
        return p

    def home(name: str, role: str, config: str) -> Path:
        h = root / name
        h.mkdir()
        (h / "config.toml").write_text(f'[chain]\ndeployment = "{manifest}"\n' + config)
        print("   " + devnet.install_key(load_config(h, env={}), role), flush=True)
        return h

    ray_head = None
    ray_env: dict[str, str] = {}  # the providers join the Ray head with its auth token
    try:
        _say("starting the devnet chains (eth 31337, etc 63) and deploying every contract")
        devnet.up(chain_cfg, echo=lambda s: print("   " + s, flush=True))

        _say("starting the king (renter gateway, scheduler, bridge deliveries, settlements)")
        khome = home("king", "king", "[king]\nlisten = \"127.0.0.1:0\"\npoll_s = 0.5\nsnapshot_interval_s = 2.0\n"
                     f"web_listen = \"127.0.0.1:{web_port}\"\n")
        kproc = spawn("king", ["king", "run", "--home", str(khome)])
        king_port = _wait_file(khome / "king" / "port", kproc, logs / "king.log", "the king")
        king_ca = khome / "tls" / "ca.crt"
        url = _wait_log(logs / "king.log", KING_WEB, kproc, "the king's web page").group(1)
        print(f"   Open the dApp: {url}", flush=True)
        if url.startswith("https:"):
            print(f"   (HTTPS with the devnet's certificate: the browser asks you to accept it; its CA is {king_ca})",
                  flush=True)
        from blendr.identity import NodeIdentity

        king_addr = NodeIdentity.load(khome).address

        queens = []
        for i in range(1, QUEENS + 1):
            _say(f"starting queen {i} (admits providers by their stake; verifies rentals on ETC; bridge attester)")
            qhome = home(f"queen{i}", f"queen{i}", (
                "[queen]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmission = \"stake\"\n"
                "heartbeat_interval_s = 1.0\nsuspect_after_s = 4.0\ndead_after_s = 10.0\n"
                "challenge_mean_interval_s = 30.0\nchallenge_n_cpu = 256\nchallenge_max_count = 8\n"
                f"[relay]\nenabled = true\nking = \"127.0.0.1:{king_port}\"\nking_address = \"{king_addr}\"\n"
                "poll_s = 0.5\n"
                f"king_ca_file = \"{king_ca}\"\nsnapshot_interval_s = 2.0\n"
                "rental_challenge_mean_interval_s = 3.0\nbatch_interval_s = 5.0\n"))
            qproc = spawn(f"queen{i}", ["queen", "run", "--home", str(qhome)])
            queens.append((qhome, _wait_file(qhome / "queen" / "port", qproc, logs / f"queen{i}.log", f"queen {i}")))

        _say("starting a local Ray with its dashboard (the providers' cluster: one pinned resource each)")
        from provider.compute import LocalRayHead

        pins = [f"blendr-demo-p{i}" for i in range(1, PROVIDERS + 1)]
        # `ray start` with every port chosen free (as a provider's own Ray): ray.init cannot move the dashboard
        # agent's port (52365), and another Ray on this machine holding it leaves the providers' job API dead
        ray_head = LocalRayHead(num_gpus=0, num_cpus=max(PROVIDERS, os.cpu_count() or 1),
                                resources={p: 1000.0 for p in pins})
        ray_head.start()
        ray_env.update(ray_head.auth_env)
        gcs = ray_head.gcs_address
        dashboard = ray_head.dashboard_url
        for i, pin in enumerate(pins, 1):
            qhome, qport = queens[(i - 1) // 2]
            _say(f"starting provider {i} (staked on ETH; asks {ASKS[i - 1]} GPUTOKEN per GPU-hour; "
                 f"queen {(i - 1) // 2 + 1})")
            phome = home(f"provider{i}", f"provider{i}", "")
            spawn(f"provider{i}", ["provider", "run", "--home", str(phome), "--queen", f"127.0.0.1:{qport}",
                                   "--ca-file", str(qhome / "tls" / "ca.crt"), "--ray-address", gcs,
                                   "--ray-resource", pin, "--ray-dashboard", dashboard, "--ask", ASKS[i - 1]])
        rhome = root / "renter"
        rhome.mkdir()
        print("   " + devnet.install_key(load_config(rhome, env={}), "renter"), flush=True)
        import asyncio

        rc = asyncio.run(_renter(rhome, f"127.0.0.1:{king_port}", king_ca, manifest, logs, procs))
        if args.stay:
            from blendr.identity import NodeIdentity

            key = "0x" + bytes(NodeIdentity.load(rhome).account().key).hex()
            rc = _stay(procs, logs, url, key) or rc
        return rc
    finally:
        _say("stopping everything the demo started")
        for p in reversed(procs):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        if ray_head is not None:
            ray_head.stop()
        devnet.down(chain_cfg, echo=lambda s: None)


async def _renter(rhome: Path, king: str, king_ca: Path, manifest_path: Path, logs: Path,
                  procs: list[subprocess.Popen[bytes]]) -> int:
    import asyncio
    import json

    from blendr.chain.client import ChainClient, ChainSettings
    from blendr.chain.contracts import GPURental, GPUToken, ReputationSystem, WorkVerification
    from blendr.chain.manifest import Manifest
    from blendr.client import JobRequest, KingClient, RenterError
    from blendr.identity import NodeIdentity
    from blendr.units import fmt_tokens

    m = Manifest.from_json(json.loads(manifest_path.read_text()))

    def reader(chain: str) -> ChainClient:
        d = m.chain(chain)
        return ChainClient(ChainSettings(chain, d.rpc_url, d.chain_id, eip1559=d.eip1559, poll_s=0.05))

    token = GPUToken(reader("eth"), m.eth.address("GPUToken"))
    rep = ReputationSystem(reader("etc"), m.etc.address("ReputationSystem"))
    wv = WorkVerification(reader("etc"), m.etc.address("WorkVerification"))
    renter = NodeIdentity.load(rhome)
    treasury = m.accounts["treasury"]

    def check_alive() -> None:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            raise SystemExit(f"a demo process exited early (code {dead[0].returncode}); see the logs in {logs}")

    async with KingClient(king, renter.account(), ca_file=king_ca) as k:
        _say("waiting for the king to see the four providers (admitted and challenged by their queens)")
        deadline = time.monotonic() + 180
        while True:
            check_alive()
            with contextlib.suppress(RenterError):
                offers = await k.offers()
                if sum(o.providers for o in offers) >= PROVIDERS:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"the king did not see {PROVIDERS} providers within 3 minutes; see {logs}")
            await asyncio.sleep(1)
        print(f"   {'MODEL':8s} {'PROVIDERS':>9s} {'FREE/TOTAL':>10s} {'MIN ASK/h':>10s} {'QUOTE/h':>8s}")
        for o in offers:
            print(f"   {o.gpu_model:8s} {o.providers:>9d} {f'{o.gpus_free}/{o.gpus_total}':>10s} "
                  f"{fmt_tokens(int(o.min_ask_per_gpu_hour)):>10s} {fmt_tokens(int(o.quote_per_gpu_hour)):>8s}")
        wallet = await k.wallet()
        size = os.environ.get("BLENDR_DEMO_SIZE", "2048")
        req = JobRequest(entrypoint=f"python render.py --size {size} --iterations 800 --tiles 16", gpus=1,
                         gpu_model="cpu", hours=3 / 60, max_price="1.0",
                         workdir=Path(__file__).resolve().parents[1] / "examples" / "render", name="mandelbrot")
        _say(f"the renter {renter.address} ({fmt_tokens(int(wallet.balance))} GPUTOKEN) submits a render job: "
             f"{req.spec().describe()}")
        print("   (the payload is encrypted to the candidate providers' keys; the intents leave the provider to the "
              "king)", flush=True)
        job = await k.submit(req)
        print(f"   job {job.job_id} queued", flush=True)
        before = {"renter": token.balance_of(renter.address), "treasury": token.balance_of(treasury)}
        provider = ""
        rep_before = 0
        final = None
        async for ev in k.watch(job.job_id):
            check_alive()
            final = ev.job
            if ev.kind == "log":
                print(f"     | {ev.message}", flush=True)
            elif ev.kind == "progress":
                bar = "#" * int(ev.progress * 30)
                print(f"   progress [{bar:30s}] {ev.progress * 100:5.1f}%  cost so far "
                      f"{fmt_tokens(int(ev.job.cost_so_far))} GPUTOKEN", flush=True)
            else:
                print(f"   [{ev.kind}] {ev.message}", flush=True)
            if ev.kind == "scheduled" and not provider:
                provider = ev.job.provider
                before["provider"] = token.balance_of(provider)
                rep_before = rep.score(provider)
        if final is None or not final.rentals:
            print("the job ended without a rental", file=sys.stderr)
            return 1
        _say("the renter fetches the job's outputs (sealed to its key; neither king nor queen can read them)")
        out_dir = rhome / "outputs" / final.job_id
        try:
            files = await k.get_output(final.job_id, out_dir)
        except RenterError as exc:
            print(f"the job's outputs could not be fetched: {exc}", file=sys.stderr)
            return 1
        image = out_dir / "mandelbrot.png"
        print(f"   {files} file{'s' if files != 1 else ''} in {out_dir}", flush=True)
        if not image.is_file():
            print(f"the job's outputs hold no {image.name}", file=sys.stderr)
            return 1
        print(f"   the image: {image} ({image.stat().st_size} bytes) sha256 "
              f"{hashlib.sha256(image.read_bytes()).hexdigest()}", flush=True)
    _say("receipt")
    r = final.rentals[0]
    # the fee waits in GPURental until someone collects it: the renter does, paying the treasury and burning its share
    rental = GPURental(ChainClient(reader("eth").settings, renter.account()), m.eth.address("GPURental"))
    [collected] = rental.events(rental.collect_fees(), "FeesCollected")
    after = {"renter": token.balance_of(renter.address), "provider": token.balance_of(r.provider),
             "treasury": token.balance_of(treasury)}
    paid = int(r.provider_payment) + int(r.fee)
    print(f"   job {final.job_id}: {'exit code ' + str(final.exit_code) if final.exit_code else 'finished'}, "
          f"on provider {r.provider}")
    # "paid" is the renter's (gross) everywhere, as the [settled] events say: the provider's payment plus the fee.
    print(f"   escrow {fmt_tokens(int(r.escrow))}; verified {r.verified_seconds} s; you paid {fmt_tokens(paid)} "
          f"(provider {fmt_tokens(int(r.provider_payment))} + fee {fmt_tokens(int(r.fee))}); refund "
          f"{fmt_tokens(int(r.refund))} GPUTOKEN")
    print(f"   fee split: {fmt_tokens(int(collected['toTreasury']))} to the treasury, "
          f"{fmt_tokens(int(collected['burned']))} burned ({rental.fee_burn_bps() / 100:g} % of every fee)")
    print(f"   {'account':10s} {'before':>16s} {'after':>16s} {'change':>12s}")
    for name in ("renter", "provider", "treasury"):
        print(f"   {name:10s} {fmt_tokens(before[name]):>16s} {fmt_tokens(after[name]):>16s} "
              f"{fmt_tokens(after[name] - before[name]):>12s}")
    print(f"   reputation of the provider on ETC: {rep_before / 100:.2f}% -> {rep.score(r.provider) / 100:.2f}%")
    fin = [e for e in wv.contract.events.TaskFinalized().get_logs(from_block=m.etc.deploy_block)
           if int(e["args"]["rentalId"]).to_bytes(32, "big") == bytes(r.rental_id)]
    print(f"   ETH create   {r.created_tx}")
    if fin:
        print(f"   ETC finalize 0x{bytes(fin[0]['transactionHash']).hex()}")
    print(f"   ETH settle   {r.settled_tx}", flush=True)
    ok = (before["renter"] - after["renter"] == paid and after["provider"] - before["provider"] == int(r.provider_payment)
          and after["treasury"] - before["treasury"] == int(collected["toTreasury"])
          and int(collected["toTreasury"]) + int(collected["burned"]) == int(r.fee)
          and final.exit_code == 0 and r.state == "settled")
    if not ok:
        print("the balances do not match the settlement, or the job failed", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
