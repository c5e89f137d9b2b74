"""The King/Queen tier chart (deploy/helm/blendr): lint, render with each values file, strict Kubernetes schemas,
the fields that matter, and the values it refuses."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from blendr.config import load_config
from tests.deploy import helm

CHART = "blendr"
EXAMPLES = sorted((helm.CHARTS / CHART / "examples").glob("*.yaml"))
VALUES = [("defaults", None), *[(p.stem, p) for p in EXAMPLES]]


def values_of(path: Path | None) -> dict[str, Any]:
    return helm.load_values(path) if path else {}


def config(objs: list[dict[str, Any]], role: str) -> dict[str, Any]:
    cm = helm.one(objs, "ConfigMap")
    return tomllib.loads(cm["data"][f"{role}.toml"])


def pod(objs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = helm.one(objs, kind)["spec"]["template"]["spec"]
    return spec


def test_examples_cover_the_issue() -> None:
    assert {p.stem for p in EXAMPLES} >= {"single-king-sqlite", "three-kings-postgres", "three-queens"}


@pytest.mark.parametrize(("label", "path"), VALUES, ids=[v[0] for v in VALUES])
def test_lint_and_render_validate_strictly(label: str, path: Path | None, tmp_path: Path) -> None:
    values = values_of(path)
    assert helm.lint(CHART, values) == []
    objs = helm.render(CHART, values)
    helm.validate(objs)
    for obj in objs:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "blendrchain"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/instance"] == "bc"
    # Each role's config.toml is one the program loads.
    for role in ("king", "queen"):
        cfg_text = helm.one(objs, "ConfigMap")["data"][f"{role}.toml"]
        f = tmp_path / f"{role}.toml"
        f.write_text(cfg_text)
        load_config(home=tmp_path, config_file=f, env={})


@pytest.mark.parametrize(("label", "path"), VALUES, ids=[v[0] for v in VALUES])
def test_pods_are_locked_down_and_probed_over_grpc(label: str, path: Path | None) -> None:
    objs = helm.render(CHART, values_of(path))
    kinds = ["Deployment"] + (["StatefulSet"] if helm.find(objs, "StatefulSet") else [])
    for kind in kinds:
        spec = pod(objs, kind)
        assert spec["automountServiceAccountToken"] is False
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in spec["containers"] + spec["initContainers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
        main = spec["containers"][0]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert main[probe]["grpc"] == {"port": 7490}
        assert {p["name"]: p["containerPort"] for p in main["ports"]}["health"] == 7490
        assert main["resources"]["requests"]
        # The key reaches the home with mode 0600, through the init container.
        init = spec["initContainers"][0]
        assert init["name"] == "install-key" and "install -m 0600" in init["command"][-1]
        assert "/var/lib/blendr/node.key" in init["command"][-1]
        mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
        assert mounts["/etc/blendr/tls"]["readOnly"] is True
        assert "/etc/blendr/key" not in mounts  # only the init container sees the Secret
        assert "--config" in main["args"] and "/etc/blendr/config/config.toml" in main["args"]


def test_defaults_one_king_on_sqlite_one_queen() -> None:
    objs = helm.render(CHART)
    king = helm.one(objs, "Deployment")
    assert king["spec"]["replicas"] == 1 and king["spec"]["strategy"]["type"] == "Recreate"
    vols = {v["name"]: v for v in pod(objs, "Deployment")["volumes"]}
    assert vols["home"]["persistentVolumeClaim"]["claimName"] == "bc-blendr-king"
    assert helm.one(objs, "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteOnce"]
    kcfg = config(objs, "king")
    assert "store" not in kcfg and "outputs_dir" not in kcfg["king"]
    assert kcfg["rpc"] == {"tls": True, "cert_file": "/etc/blendr/tls/tls.crt", "key_file": "/etc/blendr/tls/tls.key",
                           "ca_file": "/etc/blendr/tls/ca.crt", "health_listen": "0.0.0.0:7490"}
    assert kcfg["king"]["peer_tls_name"] == "bc-blendr-king.blendr.svc"
    env = {e["name"]: e for e in pod(objs, "Deployment")["containers"][0]["env"]}
    assert env["BLENDR_KING__ADVERTISE"]["value"] == "$(POD_IP):7480"
    assert "BLENDR_STORE__URL" not in env
    assert not helm.find(objs, "PodDisruptionBudget")  # a lone King must not block node drains
    # The public Service carries the King's gRPC only.
    svc = helm.one(objs, "Service", "bc-blendr-king")
    assert [p["port"] for p in svc["spec"]["ports"]] == [7480]
    notes = helm.notes(CHART)
    assert "create secret generic bc-blendr-king-key" in notes and "bc-blendr-deployment" in notes


def test_the_web_page_is_off_by_default_and_on_with_king_web() -> None:
    assert "web_listen" not in config(helm.render(CHART), "king")["king"]
    objs = helm.render(CHART, {"king": {"web": {"enabled": True, "port": 9443}}})
    helm.validate(objs)
    kcfg = config(objs, "king")
    assert kcfg["king"]["web_listen"] == "0.0.0.0:9443" and kcfg["rpc"]["tls"] is True  # HTTPS, the King's cert
    load_config(Path("/nonexistent"), overrides={"king.web_listen": kcfg["king"]["web_listen"]}, env={})
    ports = pod(objs, "Deployment")["containers"][0]["ports"]
    assert {"name": "web", "containerPort": 9443, "protocol": "TCP"} in ports
    svc = helm.one(objs, "Service", "bc-blendr-king")
    assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [("grpc", 7480, "grpc"),
                                                                                      ("web", 9443, "web")]
    policy = helm.one(objs, "NetworkPolicy", "bc-blendr-king")
    assert {"port": "web", "protocol": "TCP"} in policy["spec"]["ingress"][0]["ports"]


def test_a_king_reached_from_outside_sees_each_renters_own_address() -> None:
    """Behind a LoadBalancer or a NodePort, Kubernetes' default (Cluster) rewrites every renter's address to a
    node's, and the web API's per-address stream limit would then count all renters behind a node as one."""
    for kind in ("LoadBalancer", "NodePort"):
        objs = helm.render(CHART, {"king": {"service": {"type": kind}, "web": {"enabled": True}}})
        helm.validate(objs)
        assert helm.one(objs, "Service", "bc-blendr-king")["spec"]["externalTrafficPolicy"] == "Local"
    objs = helm.render(CHART, {"king": {"service": {"type": "LoadBalancer", "externalTrafficPolicy": "Cluster"}}})
    assert helm.one(objs, "Service", "bc-blendr-king")["spec"]["externalTrafficPolicy"] == "Cluster"
    inside = helm.one(helm.render(CHART), "Service", "bc-blendr-king")["spec"]
    assert "externalTrafficPolicy" not in inside  # ClusterIP: not a field Kubernetes accepts there
    assert "'/king/service/externalTrafficPolicy': value must be one of 'Local', 'Cluster'" in helm.schema_error(
        CHART, {"king": {"service": {"externalTrafficPolicy": "Nearest"}}})


def test_three_kings_share_postgres_and_outputs() -> None:
    objs = helm.render(CHART, helm.load_values(helm.CHARTS / CHART / "examples" / "three-kings-postgres.yaml"))
    king = helm.one(objs, "Deployment")
    assert king["spec"]["replicas"] == 3 and king["spec"]["strategy"]["type"] == "RollingUpdate"
    spec = pod(objs, "Deployment")
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env["BLENDR_STORE__URL"]["valueFrom"]["secretKeyRef"] == {"name": "blendr-postgres", "key": "url"}
    vols = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in vols["home"] and vols["outputs"]["persistentVolumeClaim"]["claimName"] == "blendr-outputs"
    assert config(objs, "king")["king"]["outputs_dir"] == "/var/lib/blendr-outputs"
    assert not helm.find(objs, "PersistentVolumeClaim")
    assert helm.one(objs, "PodDisruptionBudget", "bc-blendr-king")["spec"]["maxUnavailable"] == 1
    cert = helm.one(objs, "Certificate")
    assert cert["spec"]["secretName"] == "bc-blendr-tls"
    assert {"bc-blendr-king.blendr.svc", "king.blendr.example.com",
            "*.bc-blendr-queens.blendr.svc.cluster.local"} <= set(cert["spec"]["dnsNames"])
    assert cert["spec"]["issuerRef"]["kind"] == "ClusterIssuer"
    assert "localhost" in cert["spec"]["dnsNames"] and cert["spec"]["ipAddresses"] == ["127.0.0.1"]
    sm = helm.one(objs, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    metrics_svc = helm.one(objs, "Service", "bc-blendr-metrics")
    assert sm["spec"]["selector"]["matchLabels"].items() <= metrics_svc["metadata"]["labels"].items()
    metrics_rule = next(r for r in helm.one(objs, "NetworkPolicy", "bc-blendr-king")["spec"]["ingress"]
                        if r["ports"][0]["port"] == "metrics")
    assert metrics_rule["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}


def test_three_queens_each_with_its_key_identity_and_service() -> None:
    objs = helm.render(CHART, helm.load_values(helm.CHARTS / CHART / "examples" / "three-queens.yaml"))
    sts = helm.one(objs, "StatefulSet")
    assert sts["spec"]["replicas"] == 3 and sts["spec"]["serviceName"] == "bc-blendr-queens"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast-ssd"
    spec = sts["spec"]["template"]["spec"]
    assert '"/etc/blendr/key/queen-${POD_NAME##*-}.key"' in spec["initContainers"][0]["command"][-1]
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env["BLENDR_RELAY__ENDPOINT"]["value"] == "$(POD_NAME).queens.blendr.example.com:7470"
    for i in range(3):
        svc = helm.one(objs, "Service", f"bc-blendr-queen-{i}")
        assert svc["spec"]["type"] == "LoadBalancer"
        assert svc["spec"]["selector"]["statefulset.kubernetes.io/pod-name"] == f"bc-blendr-queen-{i}"
        assert [p["port"] for p in svc["spec"]["ports"]] == [7470]  # never the operator API
    qcfg = config(objs, "queen")
    assert qcfg["queen"]["admin_listen"].startswith("127.0.0.1:")  # the operator API stays on the pod's loopback
    assert qcfg["queen"]["admission"] == "stake" and qcfg["queen"]["challenge_mean_interval_s"] == 300
    assert qcfg["relay"]["king"] == "bc-blendr-king.blendr.svc:7480" and qcfg["relay"]["enabled"] is True
    assert helm.one(objs, "PodDisruptionBudget", "bc-blendr-queen")["spec"]["maxUnavailable"] == 1


REFUSED = [
    ({"king": {"replicas": 0}}, "/king/replicas': minimum: got 0, want 1"),
    ({"king": {"replicas": "two"}}, "/king/replicas': got string, want integer"),
    ({"king": {"replicas": 3}}, "king.replicas > 1 needs store.postgres.existingSecret"),
    ({"king": {"replicas": 2}, "store": {"postgres": {"existingSecret": "pg"}}}, "king.replicas > 1 needs king.outputs.existingClaim"),
    ({"common": {"image": {"pullPolicy": "Sometimes"}}}, "value must be one of 'Always', 'IfNotPresent', 'Never'"),
    ({"queen": {"admission": "anyone"}}, "/queen/admission': value must be one of 'allowlist', 'open', 'stake'"),
    ({"common": {"chain": {"ethConfirmations": 0}}}, "/common/chain/ethConfirmations': minimum: got 0, want 1"),
    ({"common": {"chain": {"ethRpcUrl": "eth.example.net"}}}, "/common/chain/ethRpcUrl'"),
    ({"queen": {"relay": {"kingAddress": "0x12"}}}, "'0x12' does not match pattern"),
    ({"king": {"config": {"kign": {"listen": "x"}}}}, "invalid propertyName 'kign'"),
    ({"king": {"service": {"port": 70000}}}, "/king/service/port': maximum: got 70,000, want 65,535"),
    ({"common": {"tls": {"certManager": {"enabled": True}}}}, "needs common.tls.certManager.issuerRef.name"),
    ({"queen": {"replicas": -1}}, "/queen/replicas': minimum: got -1, want 0"),
    ({"kings": 3}, "additional properties 'kings' not allowed"),
    ({"king": {"web": {"enabled": True, "port": 7480}}}, "king.web.port must differ from king.service.port"),
    ({"king": {"web": {"port": 0}}}, "/king/web/port': minimum: got 0, want 1"),
]


@pytest.mark.parametrize(("values", "message"), REFUSED, ids=[m.split("'")[0][:40] or m[:40] for _, m in REFUSED])
def test_bad_values_are_refused_with_a_readable_message(values: dict[str, Any], message: str) -> None:
    assert message in helm.schema_error(CHART, values)


def leaves(values: dict[str, Any], path: str = "") -> list[str]:
    out: list[str] = []
    for k, v in values.items():
        p = f"{path}.{k}" if path else k
        out.extend(leaves(v, p) if isinstance(v, dict) and v else [p])
    return out


def test_readme_lists_every_value() -> None:
    import yaml

    readme = (helm.CHARTS / CHART / "README.md").read_text()
    values = yaml.safe_load((helm.CHARTS / CHART / "values.yaml").read_text())
    # A value is listed itself or as part of a map the table lists whole (securityContext, resources).
    missing = [leaf for leaf in leaves(values)
               if not any(f"| `{'.'.join(leaf.split('.')[:n])}` |" in readme for n in range(1, leaf.count(".") + 2))]
    assert not missing, f"values missing from the README's table: {missing}"
