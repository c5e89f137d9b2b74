"""Render and run the King/Queen tier: the chart's King and queen pods run as local processes (tests/deploy/podrun.py)
against the devnet chains, with the rendered commands, environment and config.toml and the files the pods mount —
each answers SERVING on its health probe port and the queen registers with the King. Proves the chart and the
program agree. Defaults of a real deployment: the chart's values, TLS on, the King's and queen's own defaults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from blendr.chain.devkeys import DEV_KEYS, ROLES
from blendr.rpc.tls import devnet_tls
from tests.deploy import helm
from tests.deploy.podrun import Pod, free_port, pod_spec

KING_SVC = "bc-blendr-king.blendr.svc"


def key_of(role: str) -> bytes:
    return ("0x" + bytes(Account.from_key(DEV_KEYS[ROLES[role]]).key).hex() + "\n").encode()


@pytest.fixture
def pods(tmp_path: Path) -> Iterator[list[Pod]]:
    running: list[Pod] = []
    yield running
    for p in reversed(running):
        p.stop()


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_king_and_queen_pods_run_as_rendered(deployed: Any, tmp_path: Path, pods: list[Pod]) -> None:
    manifest = deployed
    eth_url, etc_url = manifest.eth.rpc_url, manifest.etc.rpc_url
    deployment = tmp_path / "deployment.json"
    manifest.save(deployment)
    # The tier's certificate, as an operator (or cert-manager) would issue it: the King Service's names.
    tls = devnet_tls(tmp_path / "ca", [KING_SVC, f"{KING_SVC}.cluster.local"])
    assert tls.cert is not None and tls.key is not None
    king_addr = Account.from_key(DEV_KEYS[ROLES["king"]]).address
    values = helm.load_values(helm.CHARTS / "blendr" / "examples" / "single-king-sqlite.yaml")
    values["common"]["chain"].update(ethRpcUrl=eth_url, etcRpcUrl=etc_url, ethConfirmations=1, etcConfirmations=1)
    values["queen"]["relay"] = {"enabled": True, "kingAddress": king_addr}
    objs = helm.render("blendr", values)
    secrets = {
        "blendr-tls": {"tls.crt": tls.cert.read_bytes(), "tls.key": tls.key.read_bytes(),
                       "ca.crt": tls.ca_cert.read_bytes()},
        "blendr-king-key": {"node.key": key_of("king")},
        "blendr-queen-keys": {"queen-0.key": key_of("queen1")},  # queen1: a bridge attester of the devnet
    }
    configmaps = {"bc-blendr-deployment": {"deployment.json": deployment.read_text()}}

    king = Pod(pod_spec(objs, "Deployment", "bc-blendr-king"), "bc-blendr-king-7d9f-x2x", tmp_path / "king", objs,
               secrets, configmaps, extra_env={"BLENDR_METRICS__PORT": str(free_port())})
    pods.append(king)
    king.start()
    king.wait_serving(7490)
    # The probe port is plaintext health only; the King's gRPC is TLS with the tier's certificate.
    king_metrics = int(king.extra_env["BLENDR_METRICS__PORT"])
    king.ports[9090] = king_metrics
    assert metric(king.scrape(9090), "blendr_king_leader") == 1.0

    queen = Pod(pod_spec(objs, "StatefulSet", "bc-blendr-queen"), "bc-blendr-queen-0", tmp_path / "queen", objs,
                secrets, configmaps, services={f"{KING_SVC}:7480": king.local(7480)}, loopback_ports=(7471,),
                extra_env={"BLENDR_METRICS__PORT": str(free_port())})
    pods.append(queen)
    queen.start()
    queen.wait_serving(7490)
    # The queen took the key of its ordinal (0600, in its home) and registered with the King.
    node_key = queen.root / "var/lib/blendr/node.key"
    assert node_key.read_bytes() == key_of("queen1") and oct(node_key.stat().st_mode & 0o777) == "0o600"
    king.wait(lambda: metric(king.scrape(9090), "blendr_king_queens_connected") == 1.0,
              "the queen's session on the King", timeout=120)
    assert '"event": "queen registered"' in king.output()
    assert '"tls": true' in king.output() and f'"health_port": {king.ports[7490]}' in king.output()
    # Both stop cleanly on SIGTERM, as a pod does.
    assert queen.stop() == 0, queen.output()[-3000:]
    assert king.stop() == 0, king.output()[-3000:]
