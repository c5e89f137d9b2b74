"""Render and run the King/Queen tier: the chart's King and queen pods run as local processes (tests/deploy/podrun.py)
against the devnet chains, with the rendered commands, environment and config.toml and the files the pods mount —
each answers SERVING on its health probe port and the queen registers with the King. Proves the chart and the
program agree. Defaults of a real deployment: the chart's values, TLS on, the King's and queen's own defaults
(the 5 s leader lease included)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from blendr.chain.devkeys import DEV_KEYS, ROLES
from blendr.rpc.tls import devnet_tls
from tests.deploy import helm, podrun
from tests.deploy.podrun import Pod, Process

KING_SVC = "bc-blendr-king.blendr.svc"
PROVIDER = Account.from_key(DEV_KEYS[ROLES["provider1"]]).address


def key_of(role: str) -> bytes:
    return ("0x" + bytes(Account.from_key(DEV_KEYS[ROLES[role]]).key).hex() + "\n").encode()


def metric(pod: Pod, name: str) -> float | None:
    """A sample of ``name`` scraped from the pod's metrics port (None: not there, or nothing answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{pod.port('metrics')}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


@dataclass
class Running:
    pod: Pod
    proc: Process


@dataclass
class Tier:
    objs: list[dict[str, Any]]
    secrets: dict[str, dict[str, bytes]]
    configmaps: dict[str, dict[str, str]]
    tmp: Path
    pods: list[Pod]

    def _run(self, workload: str, pod_name: str, **kw: Any) -> Running:
        pod = podrun.prepare(self.objs, workload, self.tmp / pod_name, secrets=self.secrets,
                             config_maps=self.configmaps, pod_name=pod_name, **kw)
        self.pods.append(pod)
        pod.run_init()
        return Running(pod, pod.start())

    def king(self, pod_name: str, pod_ip: str = "127.0.0.1") -> Running:
        return self._run("bc-blendr-king", pod_name, pod_ip=pod_ip)

    def queen(self, ordinal: int, king: Running) -> Running:
        return self._run("bc-blendr-queen", f"bc-blendr-queen-{ordinal}",
                         # the Service's address stands for its name, which the certificate carries
                         services={f"{KING_SVC}:7480": f"127.0.0.1:{king.pod.port('grpc')}"},
                         extra_ports=(7471,))  # its operator API, on the pod's loopback


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
    king.proc.wait_serving(king.pod.port("health"))
    assert metric(king.pod, "blendr_king_leader") == 1.0
    queen = t.queen(0, king)
    queen.proc.wait_serving(queen.pod.port("health"))
    # The queen took the key of its ordinal (0600, in its home) and registered with the King.
    node_key = queen.pod.local("/var/lib/blendr/node.key")
    assert node_key.read_bytes() == key_of("queen1") and oct(node_key.stat().st_mode & 0o777) == "0o600"
    king.proc.wait_for(lambda: metric(king.pod, "blendr_king_queens_connected") == 1.0, 120,
                       "the queen's session on the King")
    assert '"event": "queen registered"' in king.proc.output()
    # The operator's commands of NOTES.txt, through `kubectl exec`: the queen's operator API on its loopback.
    allow = queen.pod.exec("blendr", "queen", "allow", "--home", "/var/lib/blendr", "--config",
                       "/etc/blendr/config/config.toml", PROVIDER)
    assert allow.returncode == 0 and PROVIDER in allow.stdout, allow.stderr
    pool = queen.pod.exec("blendr", "pool", "ls", "--home", "/var/lib/blendr", "--config", "/etc/blendr/config/config.toml",
                      "--json")
    assert pool.returncode == 0 and pool.stdout.strip().startswith("["), pool.stderr
    assert '"tls": true' in king.proc.output() and f'"health_port": {king.pod.port("health")}' in king.proc.output()
    # Both stop cleanly on SIGTERM, as a pod does.
    assert queen.proc.stop() == 0, queen.proc.output()[-3000:]
    assert king.proc.stop() == 0, king.proc.output()[-3000:]


def test_two_kings_on_postgres_one_leads_and_the_queen_reaches_it_through_either(
        postgres_url: str, tier: Any) -> None:
    t = tier("three-kings-postgres", {
        "common": {"tls": {"existingSecret": "blendr-tls", "certManager": {"enabled": False}}},
        "king": {"replicas": 2}, "queen": {"keys": {"existingSecret": "blendr-queen-keys"}}})
    t.secrets["blendr-postgres"] = {"url": postgres_url.encode()}
    # Each King's pod IP is an address of its own that the certificate does not name (as on a cluster): a follower
    # reaches the leader there only because it checks the Service's name instead (king.peer_tls_name).
    a = t.king("bc-blendr-king-5c8d-aaaaa", pod_ip="127.0.0.2")
    a.proc.wait_serving(a.pod.port("health"))
    b = t.king("bc-blendr-king-5c8d-bbbbb", pod_ip="127.0.0.3")
    b.proc.wait_serving(b.pod.port("health"))

    def leaders() -> list[float | None]:
        return [metric(k.pod, "blendr_king_leader") for k in (a, b)]

    a.proc.wait_for(lambda: sorted(leaders(), key=str) == [0.0, 1.0], 60, "exactly one King leading")
    leader, follower = (a, b) if leaders()[0] == 1.0 else (b, a)
    # The queen dials the follower (as a Service may send it there): the follower passes its session to the leader
    # at the leader's pod address, checking the shared certificate's name (king.peer_tls_name).
    queen = t.queen(0, follower)
    queen.proc.wait_serving(queen.pod.port("health"))
    leader.proc.wait_for(lambda: metric(leader.pod, "blendr_king_queens_connected") == 1.0, 120,
                         "the queen's session, through the follower, on the leader")
    assert metric(follower.pod, "blendr_king_leader") == 0.0
