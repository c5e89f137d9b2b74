"""``make demo``: the network on this machine: both chains, a king, three queens, three providers, a rental
verified on Ethereum Classic and settled on Ethereum.

1. ``blendr devnet up`` (eth 31337 and etc 63 on free ports; every contract deployed, accounts funded and staked);
2. ``blendr king run`` (control API: gathers bridge attestations and delivers them);
3. three ``blendr queen run --relay`` (the bridge's 2-of-3 attesters; queen 1 admits providers by on-chain stake);
4. three ``blendr provider run`` (local Ray, one pinned resource each), challenged live;
5. a renter's rental of provider 1 for ``BLENDR_DEMO_RENTAL_SECONDS`` (default 60) is created on chain with the
   king's scheduler key (the gateway that does this for renters comes next), then watched: the task opens on
   ETC over the bridge, the queen challenges the provider, lands batches, finalizes, the result crosses back
   and the rental settles. It ends with a receipt: balances before and after, and the transactions.

Everything lives under ``.demo/`` (homes, keys, logs, chain state), fresh on every run, and everything the demo
started is stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROVIDERS = 3
QUEENS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _say(msg: str) -> None:
    print(f"\033[1m==> {msg}\033[0m" if sys.stdout.isatty() else f"==> {msg}", flush=True)


def _fmt(wei: int) -> str:
    sign = "-" if wei < 0 else ""
    whole, frac = divmod(abs(wei), 10**18)
    return f"{sign}{whole}.{frac:018d}"[: len(f"{sign}{whole}") + 7]


def _wait_file(path: Path, proc: subprocess.Popen[bytes], log: Path, what: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise SystemExit(f"{what} did not start; its log is above")
        time.sleep(0.2)
    return path.read_text().strip()


def main() -> int:
    from blendr import devnet
    from blendr.config import load_config
    from blendr.telemetry import configure_logging

    configure_logging("WARNING")
    rental_s = int(os.environ.get("BLENDR_DEMO_RENTAL_SECONDS", "60"))
    root = Path(".demo").resolve()
    shutil.rmtree(root, ignore_errors=True)
    logs = root / "logs"
    logs.mkdir(parents=True)
    chain_home = root / "devnet"
    chain_home.mkdir()
    (chain_home / "config.toml").write_text(f"[devnet]\neth_port = {_free_port()}\netc_port = {_free_port()}\n")
    chain_cfg = load_config(chain_home, env={})
    manifest = chain_home / "deployment.json"
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        # The environment as of now: ray.init sets RAY_AUTH_MODE=token, which the providers need to join.
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLENDR_")}
        env["PYTHONUNBUFFERED"] = "1"
        fh = open(logs / f"{name}.log", "wb")  # noqa: SIM115 (lives as long as the process)
        p = subprocess.Popen([sys.executable, "-m", "blendr.cli", *args], stdout=fh, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        procs.append(p)
        return p

    def home(name: str, role: str, config: str) -> Path:
        h = root / name
        h.mkdir()
        (h / "config.toml").write_text(f'[chain]\nmanifest = "{manifest}"\n' + config)
        print("   " + devnet.install_key(load_config(h, env={}), role), flush=True)
        return h

    ray_started = False
    try:
        _say("starting the devnet chains (eth 31337, etc 63) and deploying every contract")
        devnet.up(chain_cfg, echo=lambda s: print("   " + s, flush=True))

        _say("starting the king")
        khome = home("king", "king", "[king]\nlisten = \"127.0.0.1:0\"\npoll_s = 0.5\n")
        kproc = spawn("king", ["king", "run", "--home", str(khome)])
        king_port = _wait_file(khome / "king" / "port", kproc, logs / "king.log", "the king")

        queen_ports = []
        for i in range(1, QUEENS + 1):
            _say(f"starting queen {i} (a bridge attester; chain duties on)")
            qhome = home(f"queen{i}", f"queen{i}", (
                "[queen]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmission = \"stake\"\n"
                "heartbeat_interval_s = 1.0\nsuspect_after_s = 4.0\ndead_after_s = 10.0\n"
                "challenge_mean_interval_s = 20.0\nchallenge_n_cpu = 256\nchallenge_max_count = 8\n"
                f"[relay]\nenabled = true\nking = \"127.0.0.1:{king_port}\"\npoll_s = 0.5\n"
                f"king_ca_file = \"{khome / 'tls' / 'ca.crt'}\"\n"
                "rental_challenge_mean_interval_s = 4.0\nbatch_interval_s = 10.0\n"))
            qproc = spawn(f"queen{i}", ["queen", "run", "--home", str(qhome)])
            queen_ports.append((qhome, _wait_file(qhome / "queen" / "port", qproc, logs / f"queen{i}.log",
                                                  f"queen {i}")))
        q1home, q1port = queen_ports[0]
        q1admin = (q1home / "queen" / "admin_port").read_text().strip()

        _say("starting a local Ray (shared by the providers, one pinned resource each)")
        import ray

        pins = [f"blendr-demo-p{i}" for i in range(1, PROVIDERS + 1)]
        ray.init(num_cpus=max(PROVIDERS, os.cpu_count() or 1), resources={p: 1000.0 for p in pins},
                 include_dashboard=False, namespace="blendr-demo", log_to_driver=False, logging_level="ERROR")
        ray_started = True
        gcs = ray.get_runtime_context().gcs_address
        for i, pin in enumerate(pins, 1):
            _say(f"starting provider {i} (staked on ETH; queen 1 admits it by its stake)")
            phome = home(f"provider{i}", f"provider{i}", "")
            spawn(f"provider{i}", ["provider", "run", "--home", str(phome), "--queen", f"127.0.0.1:{q1port}",
                                   "--ca-file", str(q1home / "tls" / "ca.crt"), "--ray-address", gcs,
                                   "--ray-resource", pin])
        return _rental(load_config(q1home, env={}), f"127.0.0.1:{q1admin}", khome, manifest, rental_s, logs, procs)
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
        if ray_started:
            import ray

            ray.shutdown()
        devnet.down(chain_cfg, echo=lambda s: None)


def _rental(qcfg: Any, admin: str, khome: Path, manifest_path: Path, rental_s: int, logs: Path,
            procs: list[subprocess.Popen[bytes]]) -> int:
    import asyncio
    import json

    from eth_account import Account

    from blendr.chain.client import ChainClient, ChainSettings
    from blendr.chain.contracts import (
        GPURental,
        GPUToken,
        RentalIntent,
        RentalStatus,
        ReputationSystem,
        WorkVerification,
    )
    from blendr.chain.manifest import Manifest
    from blendr.chain.types import tokens
    from blendr.devnet import DEV_KEYS, ROLES
    from queen.poolview import fetch_pool, render

    m = Manifest.from_json(json.loads(manifest_path.read_text()))
    acct = {name: Account.from_key(DEV_KEYS[i]) for name, i in ROLES.items()}

    def client(chain: str, who: str) -> ChainClient:
        d = m.chain(chain)
        return ChainClient(ChainSettings(chain, d.rpc_url, d.chain_id, eip1559=d.eip1559, poll_s=0.05), acct[who])

    token = GPUToken(client("eth", "deployer"), m.eth.address("GPUToken"))
    rep = ReputationSystem(client("etc", "deployer"), m.etc.address("ReputationSystem"))
    wv = WorkVerification(client("etc", "deployer"), m.etc.address("WorkVerification"))
    rental_addr = m.eth.address("GPURental")
    renter, provider, treasury = acct["renter"].address, acct["provider1"].address, m.accounts["treasury"]

    def check_alive() -> None:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            raise SystemExit(f"a demo process exited early (code {dead[0].returncode}); see the logs in {logs}")

    _say("waiting for the providers to pass their first challenges")
    deadline = time.monotonic() + 120
    while True:
        check_alive()
        with contextlib.suppress(Exception):
            pool = asyncio.run(fetch_pool(qcfg, admin))
            if len(pool.providers) == PROVIDERS and all(p.challenges_passed >= 1 for p in pool.providers):
                break
        if time.monotonic() > deadline:
            raise SystemExit(f"the providers did not pass a challenge within 2 minutes; see the logs in {logs}")
        time.sleep(1)
    print(render(pool), flush=True)

    price = tokens("2.5")
    before = {"renter": token.balance_of(renter), "provider 1": token.balance_of(provider),
              "treasury": token.balance_of(treasury)}
    rep_before = rep.score(provider)
    _say(f"the renter rents provider 1 (1 GPU) for {rental_s} s at 2.5 GPUTOKEN per GPU-hour, through queen 1")
    GPUToken(client("eth", "renter"), m.eth.address("GPUToken")).approve(rental_addr, 2**256 - 1)
    now = int(client("eth", "deployer").w3.eth.get_block("latest")["timestamp"])
    intent = RentalIntent(renter, provider, 1, b"\x00" * 32, tokens(3), rental_s, 1, now + 600)
    king = GPURental(client("eth", "king"), rental_addr)
    created = king.create(intent, intent.sign(acct["renter"], m.eth.chain_id, rental_addr), price,
                          acct["queen1"].address)
    rid = intent.rental_id(m.eth.chain_id, rental_addr)
    info = king.rental(rid)
    print(f"   rental {rid:#066x}\n   escrow {_fmt(info.escrow)} GPUTOKEN locked on ETH "
          f"(tx {'0x' + bytes(created['transactionHash']).hex()})", flush=True)

    _say("following the rental: bridge -> ETC task -> challenges -> batches -> finalize -> bridge -> settlement")
    start = time.monotonic()
    last_line = ""
    while True:
        check_alive()
        r = king.rental(rid)
        task = wv.task(rid)
        opened = task[0] != "0x" + "00" * 20
        with contextlib.suppress(Exception):
            pool = asyncio.run(fetch_pool(qcfg, admin))
        p1 = next((p for p in pool.providers if p.address.lower() == provider.lower()), None)
        line = (f"   {time.monotonic() - start:5.0f}s  ETH rental: {r.status.name.lower():9s}  ETC task: "
                f"{'finalized' if opened and task[-1] else ('open' if opened else 'waiting for the bridge'):22s}"
                f"  provider 1 challenges: {p1.challenges_passed if p1 else 0} passed, "
                f"{(p1.challenges_failed + p1.challenges_missed) if p1 else 0} failed/missed")
        if line != last_line:
            print(line, flush=True)
            last_line = line
        if r.status == RentalStatus.SETTLED:
            break
        if time.monotonic() - start > rental_s + 180:
            raise SystemExit(f"the rental did not settle within {rental_s + 180} s; see the logs in {logs}")
        time.sleep(2)

    after = {"renter": token.balance_of(renter), "provider 1": token.balance_of(provider),
             "treasury": token.balance_of(treasury)}
    fin = wv.contract.events.TaskFinalized().get_logs(from_block=m.etc.deploy_block)
    fin = [e for e in fin if int(e["args"]["rentalId"]) == rid]
    st = [e for e in GPURental(client("eth", "deployer"), rental_addr).contract.events.RentalSettled().get_logs(
        from_block=m.eth.deploy_block) if int(e["args"]["rentalId"]) == rid]
    a = fin[0]["args"]
    s = st[0]["args"]
    _say("receipt")
    print(f"   verification on ETC: {a['issued']} challenges during the rental, {a['passed']} passed, "
          f"{a['failedCount']} failed, {a['missed']} missed -> {a['verifiedSeconds']} of {rental_s} s verified"
          f"{' (FAILED: stake slashed)' if a['failed'] else ''}")
    print(f"   escrow {_fmt(r.escrow)}; paid to provider {_fmt(s['providerPayment'])}; fee {_fmt(s['fee'])}; "
          f"refund {_fmt(s['refund'])} GPUTOKEN")
    print(f"   {'account':12s} {'before':>14s} {'after':>14s} {'change':>12s}")
    for k in before:
        print(f"   {k:12s} {_fmt(before[k]):>14s} {_fmt(after[k]):>14s} {_fmt(after[k] - before[k]):>12s}")
    print(f"   reputation of provider 1 on ETC: {rep_before / 100:.2f}% -> {rep.score(provider) / 100:.2f}%")
    print(f"   ETH create   {'0x' + bytes(created['transactionHash']).hex()}")
    print(f"   ETC finalize {'0x' + bytes(fin[0]['transactionHash']).hex()}")
    print(f"   ETH settle   {'0x' + bytes(st[0]['transactionHash']).hex()}", flush=True)
    ok = (after["provider 1"] - before["provider 1"] == s["providerPayment"]
          and before["renter"] - after["renter"] == s["providerPayment"] + s["fee"]
          and after["treasury"] - before["treasury"] == s["fee"])
    if not ok:
        print("balances do not match the settlement", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
