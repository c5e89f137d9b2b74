"""Render and run the King/Queen tier: the chart's King and queen pods run as local processes (tests/deploy/podrun.py)
against the devnet chains, with the rendered commands, environment and config.toml and the files the pods mount —
each answers SERVING on its health probe port and the queen registers with the King. Proves the chart and the
program agree. Defaults of a real deployment: the chart's values, TLS on, the King's and queen's own defaults
(the 5 s leader lease included)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from blendr.chain.devkeys import DEV_KEYS, ROLES
from blendr.rpc.tls import devnet_tls
from tests.deploy import helm
from tests.deploy.podrun import Pod, free_port, pod_spec

KING_SVC = "bc-blendr-king.blendr.svc"
PROVIDER = Account.from_key(DEV_KEYS[ROLES["provider1"]]).address


def key_of(role: str) -> bytes:
    return ("0x" + bytes(Account.from_key(DEV_KEYS[ROLES[role]]).key).hex() + "\n").encode()


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


@dataclass
class Tier:
    objs: list[dict[str, Any]]
    secrets: dict[str, dict[str, bytes]]
    configmaps: dict[str, dict[str, str]]
    tmp: Path
    pods: list[Pod]

    def king(self, pod_name: str, pod_ip: str = "127.0.0.1") -> Pod:
        p = Pod(pod_spec(self.objs, "Deployment", "bc-blendr-king"), pod_name, self.tmp / pod_name, self.objs,
                self.secrets, self.configmaps, extra_env={"BLENDR_METRICS__PORT": str(free_port())}, pod_ip=pod_ip)
        p.ports[9090] = int(p.extra_env["BLENDR_METRICS__PORT"])  # scraped at the port the env gave it
        self.pods.append(p)
        p.start()
        return p

    def queen(self, ordinal: int, king: Pod) -> Pod:
        name = f"bc-blendr-queen-{ordinal}"
        p = Pod(pod_spec(self.objs, "StatefulSet", "bc-blendr-queen"), name, self.tmp / name, self.objs,
                self.secrets, self.configmaps, services={f"{KING_SVC}:7480": king.local(7480)},
                loopback_ports=(7471,), extra_env={"BLENDR_METRICS__PORT": str(free_port())})
        self.pods.append(p)
        p.start()
        return p


@pytest.fixture
def tier(deployed: Any, tmp_path: Path) -> Iterator[Any]:
    """Render the chart with ``values`` (merged over an example file) and the Secrets an operator would create."""
    running: list[Pod] = []
    manifest = deployed
    deployment = tmp_path / "deployment.json"
    manifest.save(deployment)
    # The tier's certificate, as an operator (or cert-manager) would issue it: the King Service's names.
    tls = devnet_tls(tmp_path / "ca", [KING_SVC, f"{KING_SVC}.cluster.local"])
    assert tls.cert is not None and tls.key is not None
    secrets = {
        "blendr-tls": {"tls.crt": tls.cert.read_bytes(), "tls.key": tls.key.read_bytes(),
                       "ca.crt": tls.ca_cert.read_bytes()},
        "blendr-king-key": {"node.key": key_of("king")},
        "blendr-queen-keys": {"queen-0.key": key_of("queen1")},  # queen1: a bridge attester of the devnet
    }
    configmaps = {"bc-blendr-deployment": {"deployment.json": deployment.read_text()}}

    def make(example: str, extra: dict[str, Any] | None = None) -> Tier:
        values = helm.load_values(helm.CHARTS / "blendr" / "examples" / f"{example}.yaml")
        chain = values.setdefault("common", {}).setdefault("chain", {})
        chain.update(ethRpcUrl=manifest.eth.rpc_url, etcRpcUrl=manifest.etc.rpc_url, ethConfirmations=1,
                     etcConfirmations=1)
        values["queen"]["relay"] = {"enabled": True, "kingAddress": Account.from_key(DEV_KEYS[ROLES["king"]]).address}
        for k, v in (extra or {}).items():
            values.setdefault(k, {}).update(v)
        return Tier(helm.render("blendr", values), secrets, configmaps, tmp_path, running)

    yield make
    for p in reversed(running):
        p.stop()


def test_king_and_queen_pods_run_as_rendered(tier: Any) -> None:
    t = tier("single-king-sqlite")
    king = t.king("bc-blendr-king-7d9f-x2x")
    king.wait_serving(7490)
    assert metric(king.scrape(9090), "blendr_king_leader") == 1.0
    queen = t.queen(0, king)
    queen.wait_serving(7490)
    # The queen took the key of its ordinal (0600, in its home) and registered with the King.
    node_key = queen.root / "var/lib/blendr/node.key"
    assert node_key.read_bytes() == key_of("queen1") and oct(node_key.stat().st_mode & 0o777) == "0o600"
    king.wait(lambda: metric(king.scrape(9090), "blendr_king_queens_connected") == 1.0,
              "the queen's session on the King", timeout=120)
    assert '"event": "queen registered"' in king.output()
    # The operator's commands of NOTES.txt, through `kubectl exec`: the queen's operator API on its loopback.
    allow = queen.exec("blendr", "queen", "allow", "--home", "/var/lib/blendr", "--config",
                       "/etc/blendr/config/config.toml", PROVIDER)
    assert allow.returncode == 0 and PROVIDER in allow.stdout, allow.stderr
    pool = queen.exec("blendr", "pool", "ls", "--home", "/var/lib/blendr", "--config", "/etc/blendr/config/config.toml",
                      "--json")
    assert pool.returncode == 0 and pool.stdout.strip().startswith("["), pool.stderr
    assert '"tls": true' in king.output() and f'"health_port": {king.ports[7490]}' in king.output()
    # Both stop cleanly on SIGTERM, as a pod does.
    assert queen.stop() == 0, queen.output()[-3000:]
    assert king.stop() == 0, king.output()[-3000:]


def test_two_kings_on_postgres_one_leads_and_the_queen_reaches_it_through_either(
        postgres_url: str, tier: Any) -> None:
    t = tier("three-kings-postgres", {
        "common": {"tls": {"existingSecret": "blendr-tls", "certManager": {"enabled": False}}},
        "king": {"replicas": 2}, "queen": {"keys": {"existingSecret": "blendr-queen-keys"}}})
    t.secrets["blendr-postgres"] = {"url": postgres_url.encode()}
    # Each King's pod IP is an address of its own that the certificate does not name (as on a cluster): a follower
    # reaches the leader there only because it checks the Service's name instead (king.peer_tls_name).
    a = t.king("bc-blendr-king-5c8d-aaaaa", pod_ip="127.0.0.2")
    a.wait_serving(7490)
    b = t.king("bc-blendr-king-5c8d-bbbbb", pod_ip="127.0.0.3")
    b.wait_serving(7490)

    def leaders() -> list[float | None]:
        return [metric(k.scrape(9090), "blendr_king_leader") for k in (a, b)]

    a.wait(lambda: sorted(leaders()) == [0.0, 1.0], "exactly one King leading")
    leader, follower = (a, b) if leaders()[0] == 1.0 else (b, a)
    # The queen dials the follower (as a Service may send it there): the follower passes its session to the leader
    # at the leader's pod address, checking the shared certificate's name (king.peer_tls_name).
    queen = t.queen(0, follower)
    queen.wait_serving(7490)
    leader.wait(lambda: metric(leader.scrape(9090), "blendr_king_queens_connected") == 1.0,
                "the queen's session, through the follower, on the leader", timeout=120)
    assert metric(follower.scrape(9090), "blendr_king_leader") == 0.0
