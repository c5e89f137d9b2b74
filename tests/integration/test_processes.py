"""Whole processes: `blendr provider run` killed with SIGKILL, `blendr queen run` killed and restarted,
and the `blendr` CLI against a running queen."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from blendr.identity import NodeIdentity
from blendr.ports import free_port
from blendr.types import ProviderState
from queen.app import start_queen
from queen.poolview import fetch_pool
from tests.integration.helpers import (
    PINS,
    QUEEN_DEFAULTS,
    blendr_cmd,
    client_config,
    queen_config,
    running_agent,
    subprocess_env,
    wait_for,
)
from tests.integration.test_pool import make_agent

pytestmark = pytest.mark.usefixtures("ray_cluster")


def write_queen_config(home: Path, port: int, admin_port: int) -> None:
    lines = ["[queen]"]
    for k, v in QUEEN_DEFAULTS.items():
        section, key = k.split(".")
        if section != "queen":
            continue
        if key == "listen":
            v = f"127.0.0.1:{port}"
        if key == "admin_listen":
            v = f"127.0.0.1:{admin_port}"
        lines.append(f"{key} = {v!r}".replace("'", '"'))
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("\n".join(lines) + "\n")


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    fh = open(log, "wb")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=subprocess_env(),
                            start_new_session=True)


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)


async def test_provider_killed_with_sigkill_is_marked_dead(node_home: Any, ray_cluster: str, tmp_path: Path) -> None:
    qhome = node_home("queen")
    app = await start_queen(queen_config(qhome))
    target = f"127.0.0.1:{app.port}"
    phome = node_home("provider")
    ident, _ = NodeIdentity.load_or_create(phome)
    proc = spawn(blendr_cmd("provider", "run", "--home", str(phome), "--queen", target, "--ca-file",
                            str(qhome / "tls" / "ca.crt"), "--ray-address", ray_cluster, "--ray-resource", PINS[3],
                            "--no-gpu"), tmp_path / "provider.log")
    try:
        await wait_for(lambda: (r := app.core.pool.get(ident.address)) and r.passed >= 1, 90,
                       "the provider process to join and pass a challenge")
        kill(proc)
        killed = time.monotonic()
        bound = app.cfg.queen.dead_after_s + 2 * app.cfg.queen.tick_s + 1.0
        await wait_for(lambda: app.core.pool.get(ident.address).state is ProviderState.DEAD, bound,
                       f"the killed provider to be marked dead within {bound:.1f}s")
        assert time.monotonic() - killed <= bound
    finally:
        kill(proc)
        await app.stop()
        print((tmp_path / "provider.log").read_text()[-3000:])


async def test_queen_killed_and_restarted_keeps_its_pool(node_home: Any, tmp_path: Path) -> None:
    qhome = node_home("queen")
    port = free_port()
    admin_port = free_port()
    write_queen_config(qhome, port, admin_port)
    queen_cmd = blendr_cmd("queen", "run", "--home", str(qhome), "--admission", "open")
    queen = spawn(queen_cmd, tmp_path / "queen1.log")
    target = f"127.0.0.1:{port}"
    agents = []
    try:
        await wait_for(lambda: (qhome / "queen" / "port").is_file(), 30, "the queen to start")
        agents = [make_agent(node_home(f"p{i}"), qhome, [target], PINS[4 + i]) for i in range(2)]
        admin = client_config(node_home("admin"), qhome)
        async with running_agent(agents[0]), running_agent(agents[1]):
            async def passed_all() -> bool:
                resp = await fetch_pool(admin, f"127.0.0.1:{admin_port}")
                return len(resp.providers) == 2 and all(p.challenges_passed >= 1 for p in resp.providers)

            deadline = time.monotonic() + 60
            while not await passed_all():
                assert time.monotonic() < deadline, "providers did not pass their first challenges"
                await asyncio.sleep(0.2)
            kill(queen)  # SIGKILL: no graceful shutdown, no final flush
            await wait_for(lambda: not any(a.status.admitted for a in agents), 10, "agents to notice")
            queen = spawn(queen_cmd, tmp_path / "queen2.log")
            # The pool comes back from the store, and the providers reconnect by themselves.
            try:
                await wait_for(lambda: all(a.status.admitted and a.status.sessions >= 2 for a in agents), 60,
                               "agents to reconnect to the restarted queen")
            except AssertionError:
                print("agents:", [a.status for a in agents])
                print("queen2 log:", (tmp_path / "queen2.log").read_text()[-3000:])
                raise
            resp = await fetch_pool(admin, f"127.0.0.1:{admin_port}")
            assert {p.address for p in resp.providers} == {a.identity.address for a in agents}
            assert all(p.challenges_passed >= 1 for p in resp.providers)
    finally:
        kill(queen)


async def test_cli_pool_ls_and_errors(node_home: Any, tmp_path: Path) -> None:
    qhome = node_home("queen")
    app = await start_queen(queen_config(qhome))
    target = f"127.0.0.1:{app.port}"
    agent = make_agent(node_home("p"), qhome, [target], PINS[7])
    try:
        async with running_agent(agent):
            await wait_for(lambda: (r := app.core.pool.get(agent.identity.address)) and r.passed >= 1, 30, "a pass")

            def run(*args: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run(blendr_cmd(*args), capture_output=True, text=True, env=subprocess_env(),
                                      timeout=60)

            admin_target = f"127.0.0.1:{app.admin_port}"
            (qhome / "queen").mkdir(exist_ok=True)
            (qhome / "queen" / "admin_port").write_text(f"{app.admin_port}\n")
            # Without --queen, the CLI finds the admin port in the queen's home.
            out = await asyncio.to_thread(run, "pool", "ls", "--home", str(qhome))
            assert out.returncode == 0, out.stderr
            assert "alive" in out.stdout and agent.identity.address[:12] in out.stdout
            js = await asyncio.to_thread(run, "pool", "ls", "--home", str(qhome), "--queen", admin_target, "--json")
            assert js.returncode == 0 and '"state": "alive"' in js.stdout
            # A client that does not trust the queen's CA gets a clear error, not a traceback.
            other = node_home("other")
            bad = await asyncio.to_thread(run, "pool", "ls", "--home", str(other), "--queen", admin_target)
            assert bad.returncode != 0 and "CA certificate" in bad.stderr and "Traceback" not in bad.stderr
            plain = await asyncio.to_thread(run, "pool", "ls", "--home", str(other), "--queen", admin_target, "--insecure")
            assert plain.returncode == 1 and "cannot list the pool" in plain.stderr
    finally:
        await app.stop()

    def run_sync(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(blendr_cmd(*args), capture_output=True, text=True, env=subprocess_env(), timeout=60)

    r = run_sync("queen", "allow", "not-an-address", "--home", str(qhome))
    assert r.returncode != 0 and "not an Ethereum address" in r.stderr
    r = run_sync("provider", "run", "--home", str(node_home("p2")))
    assert r.returncode == 2 and "--queen" in r.stderr
    r = run_sync("queen", "allow", agent.identity.address, "--home", str(qhome))
    assert r.returncode == 0
    r = run_sync("queen", "allowlist", "--home", str(qhome))
    assert agent.identity.address in r.stdout
