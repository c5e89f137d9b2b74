"""The ``blendr`` command line. Heavy modules (ray, numpy, grpc) load only inside the command that needs them."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from blendr import __version__
from blendr.errors import BlendrError, ConfigError

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", help="node home directory (default: $BLENDR_HOME, else ~/.blendr)")
    p.add_argument("--config", help="config file (default: <home>/config.toml)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log level")
    p.add_argument("--log-format", choices=["console", "json"], help="log format")


def _deployment_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--deployment", metavar="FILE",
                   help="the deployment manifest (chains and contracts) that `blendr devnet up` or `blendr chain "
                        "deploy` wrote (default: chain.deployment, else <home>/deployment.json)")


def _tls_flags(p: argparse.ArgumentParser, *, client: bool) -> None:
    p.add_argument("--insecure", action="store_true", help="plaintext gRPC (devnets only; TLS is on by default)")
    if client:
        p.add_argument("--ca-file", help="CA certificate that signed the queen's certificate "
                                         "(default: <home>/tls/ca.crt; the queen's is <queen home>/tls/ca.crt)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blendr", description="BlendrChain: a decentralized GPU marketplace (king / queen / provider).")
    parser.add_argument("--version", action="version", version=f"blendrchain {__version__}")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")

    ident = sub.add_parser("identity", help="this node's key and address")
    isub = ident.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, helptext in (("init", "create the node key if there is none"), ("show", "print the node address")):
        p = isub.add_parser(name, help=helptext)
        _common(p)

    queen = sub.add_parser("queen", help="run and administer a queen")
    qsub = queen.add_subparsers(dest="action", metavar="ACTION", required=True)
    qrun = qsub.add_parser("run", help="run a queen: admit providers, watch them, challenge their GPUs")
    _common(qrun)
    _tls_flags(qrun, client=False)
    _deployment_flag(qrun)
    qrun.add_argument("--listen", help="HOST:PORT for providers (default 0.0.0.0:7470)")
    qrun.add_argument("--admin-listen", help="HOST:PORT for `blendr pool ls` (default 127.0.0.1:7471)")
    qrun.add_argument("--admission", choices=["allowlist", "open", "stake"],
                      help="who may join: the allowlist (default), anyone, or providers staked on chain")
    qrun.add_argument("--metrics-port", type=int, help="Prometheus port (-1 off, 0 any free port)")
    qrun.add_argument("--challenge-interval", type=float,
                      help="mean seconds between random challenges per provider (default 300)")
    qrun.add_argument("--relay", action="store_true",
                      help="take on the chain duties: verify rentals on ETC and attest bridge messages "
                           "(needs the deployment manifest, and this node's key as a bridge attester)")
    qrun.add_argument("--king", metavar="HOST:PORT", help="the king's control API, which gathers attestations")
    qrun.add_argument("--king-address", metavar="ADDRESS",
                      help="the king's Ethereum address: the queen's registration is signed for that king only")
    qrun.add_argument("--king-ca-file", metavar="FILE",
                      help="the CA of the king's TLS certificate (default: --ca-file / rpc.ca_file)")
    qallow = qsub.add_parser("allow", help="let provider addresses join this queen's pool")
    _common(qallow)
    qallow.add_argument("addresses", nargs="+", metavar="ADDRESS")
    qallow.add_argument("--note", default="", help="why (kept with the entry)")
    qdeny = qsub.add_parser("deny", help="remove provider addresses from the allowlist")
    _common(qdeny)
    qdeny.add_argument("addresses", nargs="+", metavar="ADDRESS")
    qlist = qsub.add_parser("allowlist", help="print the allowlist")
    _common(qlist)

    prov = sub.add_parser("provider", help="run a provider agent")
    psub = prov.add_subparsers(dest="action", metavar="ACTION", required=True)
    prun = psub.add_parser("run", help="join a queen's pool with this machine's GPUs (or CPU)")
    _common(prun)
    _tls_flags(prun, client=True)
    prun.add_argument("--queen", help="HOST:PORT[,HOST:PORT...]: queens to try in order (failover)")
    prun.add_argument("--ray-address", help="existing Ray cluster (default: start a local one)")
    prun.add_argument("--ray-resource", help="custom Ray resource to pin tasks to on a shared cluster")
    prun.add_argument("--no-gpu", action="store_true", help="ignore GPUs and run as a CPU provider")
    prun.add_argument("--ask", metavar="PRICE",
                      help="floor price for renters' jobs, GPUTOKEN per GPU-hour (default 0.5)")
    prun.add_argument("--ray-dashboard", metavar="URL",
                      help="the Ray dashboard (job API) of a shared cluster, e.g. http://head:8265")
    prun.add_argument("--metrics-port", type=int, help="Prometheus port (-1 off, 0 any free port)")

    king = sub.add_parser("king", help="run the king")
    ksub = king.add_subparsers(dest="action", metavar="ACTION", required=True)
    krun = ksub.add_parser("run", help="run the king: the renter gateway and scheduler, queens' sessions, bridge "
                                       "deliveries, settlements")
    _common(krun)
    _tls_flags(krun, client=False)
    _deployment_flag(krun)
    krun.add_argument("--listen", help="HOST:PORT for renters and queens (default 0.0.0.0:7480)")
    krun.add_argument("--metrics-port", type=int, help="Prometheus port (-1 off, 0 any free port)")
    krun.add_argument("--web-listen", help="HOST:PORT of the renters' web page and its API (king.web_listen; "
                                           "HTTPS with the gRPC certificate when TLS is on; default: off)")

    stake = sub.add_parser("stake", help="this node's stake in StakingManager: see it, or stake GPUTOKEN")
    stsub = stake.add_subparsers(dest="action", metavar="ACTION", required=True)
    stshow = stsub.add_parser("show", help="this node's stake per role, the minimums, its GPUTOKEN balance")
    stadd = stsub.add_parser(
        "add", help="stake GPUTOKEN from this node's key (approves StakingManager, then stakes; the key pays gas)",
        description="Stakes AMOUNT GPUTOKEN for ROLE from <home>/node.key. Providers need the minimum per GPU "
                    "they offer, queens the queen minimum (`blendr stake show` prints both). The devnet's "
                    "king, queen and provider keys are staked already.")
    stadd.add_argument("role", choices=["provider", "queen", "king"], help="the role the stake is for")
    stadd.add_argument("amount", help="GPUTOKEN, e.g. 1000 or 1000.5")
    for p in (stshow, stadd):
        _common(p)
        _deployment_flag(p)
    stshow.add_argument("--json", action="store_true", help="machine-readable output (amounts in GPUTOKEN)")

    from blendrctl import renter

    renter.add_parsers(sub, _common)
    from blendrctl import rewards

    rewards.add_parsers(sub, _common, _deployment_flag)
    from blendrctl import gov

    gov.add_parsers(sub, _common, _deployment_flag)
    from blendrctl import vouchers

    vouchers.add_parsers(sub, _common, _deployment_flag)
    from blendrctl import network

    network.add_parsers(sub, _common)

    pool = sub.add_parser("pool", help="inspect a queen's pool")
    posub = pool.add_subparsers(dest="action", metavar="ACTION", required=True)
    pls = posub.add_parser("ls", help="list the providers of a running queen")
    _common(pls)
    _tls_flags(pls, client=True)
    pls.add_argument("--queen", help="HOST:PORT of the queen's admin listener (default: the port in "
                                     "<home>/queen/admin_port, else queen.admin_listen, 127.0.0.1:7471)")
    pls.add_argument("--state", action="append", choices=["alive", "suspect", "dead"], help="only these states")
    pls.add_argument("--json", action="store_true", help="machine-readable output")
    pls.add_argument("--watch", type=float, metavar="SECONDS", help="refresh every SECONDS until Ctrl-C")

    dn = sub.add_parser("devnet", help="local eth + etc chains (anvil) with every contract deployed")
    dnsub = dn.add_subparsers(dest="action", metavar="ACTION", required=True)
    dup = dnsub.add_parser("up", help="start both chains, deploy and fund; writes <home>/deployment.json and "
                                      "prints how nodes find it (a devnet already running, also one started "
                                      "from another home, is reused and its manifest copied into this home)",
                           description="Starts eth (31337) and etc (63) anvil chains on [devnet] eth_port/etc_port, "
                                       "deploys and wires every contract, funds and stakes the devnet accounts, "
                                       "and writes <home>/deployment.json. Chains already running are reused: "
                                       "from another home, their manifest is copied into this one. It prints "
                                       "where the deployment file is; nodes read it with --deployment FILE.")
    ddown = dnsub.add_parser("down", help="stop both chains (state kept for the next `up`)")
    ddown.add_argument("--reset", action="store_true", help="also delete the chains' state and the manifest")
    dstat = dnsub.add_parser("status", help="what runs, head blocks, deployed contracts")
    dstat.add_argument("--json", action="store_true", help="machine-readable output")
    dkey = dnsub.add_parser("key", help="install a devnet account's key as this node's key (devnets only; "
                                        "refuses a home that holds another key)")
    dkey.add_argument("role", help="king, queen1..queen3, provider1..provider4, renter or deployer")
    for p in (dup, ddown, dstat, dkey):
        _common(p)
    dup.add_argument("--block-time", type=float, help="seconds between blocks (default 0: a block per transaction)")

    ch = sub.add_parser("chain", help="contracts on real networks")
    chsub = ch.add_subparsers(dest="action", metavar="ACTION", required=True)
    cdep = chsub.add_parser(
        "deploy", help="deploy every contract to the [network.NAME] of the config file",
        description="Deploys, wires and hands every contract over to governance on the ETH and ETC endpoints "
                    "of [network.NAME] in config.toml (keys: eth_rpc_url, eth_chain_id, etc_rpc_url, "
                    "etc_chain_id, key_file, treasury, scheduler, attesters, threshold, guardian, team, "
                    "investors, advisors; optional eth_confirmations, etc_confirmations). Writes the deployment "
                    "manifest.")
    _common(cdep)
    cdep.add_argument("--network", required=True, help="the [network.NAME] table to deploy to")
    cdep.add_argument("--out", help="manifest path (default: chain.deployment, else <home>/deployment.json)")
    cdep.add_argument("--force", action="store_true", help="overwrite an existing manifest")
    cdep.add_argument("--no-handover", action="store_true",
                      help="keep the deployer's admin roles (testing only; production hands over to governance)")
    for cat, share in (("team", "15"), ("investors", "15"), ("advisors", "5")):
        cdep.add_argument(f"--{cat}", action="append", metavar="ADDRESS[=TOKENS]",
                          help=f"genesis {cat} beneficiary (repeatable; replaces the network's `{cat}` key): its "
                               f"grant ({share} %% of the supply without =TOKENS) vests in a wallet whose votes "
                               "count for it at once")
    cinfo = chsub.add_parser("info", help="the deployment this node uses: chains, depths, contract addresses, "
                                          "the bridge's attesters")
    _common(cinfo)
    _deployment_flag(cinfo)
    cinfo.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _load(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> Any:
    from blendr.config import load_config
    from blendr.telemetry import configure_logging

    ov: dict[str, Any] = dict(overrides or {})
    if getattr(args, "log_level", None):
        ov["log.level"] = args.log_level
    if getattr(args, "log_format", None):
        ov["log.format"] = args.log_format
    if getattr(args, "insecure", False):
        ov["rpc.tls"] = False
    if getattr(args, "ca_file", None):
        ov["rpc.ca_file"] = str(Path(args.ca_file).expanduser().resolve())
    if getattr(args, "deployment", None):
        path = Path(args.deployment).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"--deployment {args.deployment}: no such file (`blendr devnet up` prints where the "
                              "devnet's is)")
        ov["chain.deployment"] = str(path)
    cfg = load_config(args.home, config_file=args.config, overrides=ov)
    configure_logging(cfg.log.level, cfg.log.format)  # type: ignore[arg-type]
    return cfg


def _cmd_identity(args: argparse.Namespace) -> int:
    from blendr.identity import NodeIdentity

    cfg = _load(args)
    if args.action == "init":
        ident, created = NodeIdentity.load_or_create(cfg.home)
        print(f"{'created' if created else 'existing'} key for {ident.address} in {cfg.home}")
    else:
        print(NodeIdentity.load(cfg.home).address)
    return 0


def _cmd_queen(args: argparse.Namespace) -> int:
    if args.action == "run":
        from queen.app import run_queen

        cfg = _load(args, {"queen.listen": args.listen, "queen.admin_listen": args.admin_listen,
                           "queen.admission": args.admission,
                           "metrics.port": args.metrics_port,
                           "queen.challenge_mean_interval_s": args.challenge_interval,
                           "relay.enabled": True if args.relay else None, "relay.king": args.king,
                           "relay.king_ca_file": args.king_ca_file, "relay.king_address": args.king_address})
        asyncio.run(run_queen(cfg))
        return 0
    from blendr.clock import SystemClock
    from queen.admission import AllowlistOracle
    from queen.app import open_queen_store

    cfg = _load(args)
    with open_queen_store(cfg) as store:
        oracle = AllowlistOracle(store, SystemClock())
        if args.action == "allow":
            for a in args.addresses:
                print(f"allowed {oracle.allow(a, args.note)}")
        elif args.action == "deny":
            for a in args.addresses:
                print(f"{'removed' if oracle.deny(a) else 'not on the allowlist:'} {a}")
        else:
            for a in oracle.list():
                print(a)
    return 0


def _cmd_provider(args: argparse.Namespace) -> int:
    from provider.app import run_provider

    queens = [q.strip() for q in args.queen.split(",") if q.strip()] if args.queen else None
    cfg = _load(args, {"provider.queens": queens, "provider.ray_address": args.ray_address,
                       "provider.ray_resource": args.ray_resource,
                       "provider.use_gpu": False if args.no_gpu else None,
                       "provider.ask_per_gpu_hour": args.ask, "provider.ray_dashboard": args.ray_dashboard,
                       "metrics.port": args.metrics_port})
    if not cfg.provider.queens:
        raise ConfigError("no queen given: pass --queen HOST:PORT (or set provider.queens in config.toml)")
    if cfg.rpc.tls:  # checked before the agent creates its key or starts Ray
        from blendr.rpc.server import trust_anchor

        trust_anchor(cfg)
    asyncio.run(run_provider(cfg))
    return 0


def _cmd_king(args: argparse.Namespace) -> int:
    from king.app import run_king

    cfg = _load(args, {"king.listen": args.listen, "metrics.port": args.metrics_port, "king.web_listen": args.web_listen})
    asyncio.run(run_king(cfg))
    return 0


def _default_queen_target(cfg: Any) -> str:
    port_file = cfg.path("queen", "admin_port")
    if port_file.is_file():
        return f"127.0.0.1:{port_file.read_text().strip()}"
    return str(cfg.queen.admin_listen).replace("0.0.0.0", "127.0.0.1")


def _cmd_pool(args: argparse.Namespace) -> int:
    import time

    import grpc

    from queen.poolview import fetch_pool, render, rows

    cfg = _load(args)
    target = args.queen or _default_queen_target(cfg)
    from blendr.rpc import convert
    from blendr.types import ProviderState

    states = [convert.STATE_TO_PB[ProviderState(s)] for s in (args.state or [])]
    while True:
        try:
            resp = asyncio.run(fetch_pool(cfg, target, states))
        except grpc.aio.AioRpcError as exc:
            print(f"error: cannot list the pool of the queen at {target}: {exc.code().name}: {exc.details()}",
                  file=sys.stderr)
            if exc.code() is grpc.StatusCode.UNAVAILABLE:
                print("hint: is the queen running? With TLS, pass --ca-file <queen home>/tls/ca.crt; "
                      "with a plaintext queen, pass --insecure.", file=sys.stderr)
            return EXIT_FAILURE
        if args.json:
            print(json.dumps(rows(resp), indent=2))
        else:
            if args.watch:
                print("\x1b[2J\x1b[H", end="")
            print(render(resp))
        if not args.watch:
            return 0
        time.sleep(args.watch)


def _cmd_devnet(args: argparse.Namespace) -> int:
    from blendr import devnet

    cfg = _load(args, {"devnet.block_time_s": getattr(args, "block_time", None)})
    if args.action == "up":
        devnet.up(cfg)
        return 0
    if args.action == "down":
        devnet.down(cfg, reset=args.reset)
        return 0
    if args.action == "key":
        print(devnet.install_key(cfg, args.role))
        return 0
    st = devnet.status(cfg)
    if args.json:
        print(json.dumps(st, indent=2))
    else:
        print(f"manifest: {st['manifest'] or 'none (run `blendr devnet up`)'}")
        for name, c in st["chains"].items():
            if c["running"]:
                live = f", contracts {c.get('contracts_live', 0)}/{c.get('contracts', 0)} live" if c.get("contracts") else ""
                print(f"{name}: chain {c['chain_id']} at {c['url']} (pid {c['pid'] or '?'}), block {c['block']}{live}")
            else:
                print(f"{name}: not running ({c['url']})")
    running = all(c["running"] for c in st["chains"].values())
    return 0 if running else EXIT_FAILURE


def _cmd_chain(args: argparse.Namespace) -> int:
    from blendr.chain.manifest import load_manifest, manifest_path

    cfg = _load(args)
    if args.action == "info":
        m = load_manifest(cfg)
        if args.json:
            print(json.dumps(m.to_json(), indent=2))
            return 0
        print(f"network {m.network} (manifest {manifest_path(cfg)})")
        for name in ("eth", "etc"):
            d = m.chain(name)
            print(f"{name}: chain {d.chain_id} at {d.rpc_url}, {d.confirmations} confirmations, "
                  f"{'EIP-1559' if d.eip1559 else 'legacy'} fees")
            for cname, addr in sorted(d.contracts.items()):
                print(f"  {cname:26} {addr}")
        _print_bridge(cfg, m)
        return 0
    from blendr.chain.client import ChainClient, ChainSettings
    from blendr.chain.deploy import DeployParams, deploy_system, hand_over
    from blendr.chain.networks import load_network
    from blendr.identity import NodeIdentity

    net = load_network(cfg, args.network, args.config)
    out = Path(args.out).expanduser() if args.out else manifest_path(cfg)
    if out.exists() and not args.force:
        raise ConfigError(f"{out} already exists: pass --force to overwrite it, or --out another path")
    key = NodeIdentity.load_file(Path(net.key_file).expanduser(), what="deployer key").account()
    common = {"rpc_timeout_s": cfg.chain.rpc_timeout_s, "retries": cfg.chain.rpc_retries,
              "receipt_timeout_s": cfg.chain.receipt_timeout_s}
    eth = ChainClient(ChainSettings("eth", net.eth_rpc_url, net.eth_chain_id, net.eth_confirmations,
                                    net.eth_eip1559, **common), key)
    etc = ChainClient(ChainSettings("etc", net.etc_rpc_url, net.etc_chain_id, net.etc_confirmations,
                                    net.etc_eip1559, **common), key)
    from blendr.chain.networks import parse_grants

    def grants(cat: str) -> Any:  # the flags replace the network's key
        flags = getattr(args, cat)
        return parse_grants(flags or getattr(net, cat), f"--{cat}" if flags else f"[network.{net.name}] {cat}")

    params = DeployParams(treasury=net.treasury, scheduler=net.scheduler, attesters=sorted(net.attesters, key=str.lower),
                          threshold=net.threshold, guardian=net.guardian, team=grants("team"),
                          investors=grants("investors"), advisors=grants("advisors"))
    m = deploy_system(eth, etc, params, network=net.name)
    m.save(out)  # saved before the hand-over, so a failure there still leaves the addresses on record
    if not args.no_handover:
        hand_over(eth, etc, m)
    print(f"deployed to {net.name}; manifest {out}")
    return 0


def _print_bridge(cfg: Any, m: Any) -> None:
    """The bridge's attesters and threshold per inbox, read from the chains (a chain that does not answer is
    said, not fatal: the rest of ``chain info`` comes from the manifest)."""
    from dataclasses import replace

    from blendr.chain.client import ChainClient
    from blendr.chain.contracts import BridgeInbox
    from blendr.chain.manifest import chain_settings

    for name in ("eth", "etc"):
        settings = replace(chain_settings(cfg, m, name), retries=1, rpc_timeout_s=5.0)
        try:
            inbox = BridgeInbox(ChainClient(settings), m.chain(name).address("BridgeInbox"))
            attesters, k = inbox.attesters(), inbox.threshold()
        except BlendrError as exc:
            print(f"bridge into {name}: cannot read its inbox: {str(exc)[:200]}")
            continue
        print(f"bridge into {name}: delivers a message with {k} of {len(attesters)} attesters' signatures: "
              f"{', '.join(attesters)} (queens with these keys must run `blendr queen run --relay`; with fewer "
              f"than {k} of them live, rentals do not settle)")


def _cmd_stake(args: argparse.Namespace) -> int:
    from blendr.chain.client import ChainClient
    from blendr.chain.contracts import GPUToken, StakingManager, Tier
    from blendr.chain.manifest import chain_settings, load_manifest
    from blendr.identity import NodeIdentity
    from blendr.units import fmt_tokens, parse_tokens

    cfg = _load(args)
    m = load_manifest(cfg)
    ident = NodeIdentity.load(cfg.home)
    eth = ChainClient(chain_settings(cfg, m, "eth"), ident.account())
    staking = StakingManager(eth, m.eth.address("StakingManager"))
    token = GPUToken(eth, m.eth.address("GPUToken"))
    if args.action == "add":
        tier = Tier[args.role.upper()]
        amount = parse_tokens(args.amount, "amount")
        if amount <= 0:
            raise ConfigError(f"amount must be positive (got {args.amount})")
        balance = int(token.balance_of(ident.address))
        if balance < amount:
            raise ConfigError(f"{ident.address} holds {fmt_tokens(balance)} GPUTOKEN, less than the "
                              f"{fmt_tokens(amount)} to stake")
        if int(token.allowance(ident.address, staking.address)) < amount:
            token.approve(staking.address, amount)
        staking.stake(tier, amount)
        print(f"staked {fmt_tokens(amount)} GPUTOKEN for {args.role} {ident.address}; now "
              f"{fmt_tokens(int(staking.stake_of(ident.address, tier)))} (minimum "
              f"{fmt_tokens(int(staking.min_stake(tier)))}{' per GPU' if tier is Tier.PROVIDER else ''})")
        return 0
    rows = {t.name.lower(): (int(staking.stake_of(ident.address, t)), int(staking.min_stake(t))) for t in Tier}
    balance = int(token.balance_of(ident.address))
    if args.json:
        from blendrctl.jsonout import gputoken

        print(json.dumps({"address": ident.address, "balance_gputoken": gputoken(str(balance)),
                          "stakes": {r: {"stake_gputoken": gputoken(str(st)), "min_stake_gputoken": gputoken(str(mn))}
                                     for r, (st, mn) in rows.items()}}, indent=2))
        return 0
    print(f"{ident.address}: {fmt_tokens(balance)} GPUTOKEN unstaked")
    for role, (st, mn) in rows.items():
        per = " per GPU" if role == "provider" else ""
        print(f"  {role:9} staked {fmt_tokens(st):>14}  minimum {fmt_tokens(mn)}{per}")
    return 0


def _cmd_vouchers(args: argparse.Namespace) -> int:
    from blendrctl import vouchers

    return vouchers.run(args, _load)


def _cmd_renter(args: argparse.Namespace) -> int:
    from blendrctl import renter

    return renter.run(args, _load)


def _cmd_rewards(args: argparse.Namespace) -> int:
    from blendrctl import rewards

    return rewards.run(args, _load)


def _cmd_network(args: argparse.Namespace) -> int:
    from blendrctl import network

    return network.run(args, _load)


def _cmd_gov(args: argparse.Namespace) -> int:
    from blendrctl import gov

    return gov.run(args, _load)


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command whose reader went away


def main(argv: list[str] | None = None) -> int:
    """The ``blendr`` command. Output to a reader that goes away (``blendr job list | head -3``) ends the
    command quietly with status 141, as Unix tools do, never with a traceback."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # a broken pipe shows here, while it can still be handled
        return code
    except BrokenPipeError:
        # Nothing more can be written; point stdout at /dev/null so the interpreter's final flush is quiet.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.cmd:
        parser.print_help()
        return EXIT_USAGE
    handlers = {"identity": _cmd_identity, "queen": _cmd_queen, "provider": _cmd_provider, "pool": _cmd_pool,
                "devnet": _cmd_devnet, "chain": _cmd_chain, "king": _cmd_king, "stake": _cmd_stake, "job": _cmd_renter,
                "offers": _cmd_renter, "wallet": _cmd_renter,
                "rewards": _cmd_rewards, "gov": _cmd_gov, "vouchers": _cmd_vouchers, "network": _cmd_network}
    try:
        return handlers[args.cmd](args)
    except KeyboardInterrupt:
        return 130
    except BlendrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE if type(exc).__name__ in {"ConfigError", "InvalidArgumentError"} else EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
