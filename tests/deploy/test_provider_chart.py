"""The blendr-provider chart: lint, render and validate each values file, refuse bad values with readable
messages, and run the rendered pod's commands against a real queen (the chart and the program agree)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tempfile
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from blendr.config import load_config
from blendr.identity import NodeIdentity
from tests.deploy import helm, podrun

CHART = "blendr-provider"
EXAMPLES = helm.chart_path(CHART) / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*-values.yaml"))
# The least a release needs: a key, a queen and the queens' CA.
REQUIRED: dict[str, Any] = {"key": {"existingSecret": "provider-key"}, "queens": ["queen-0.queens:7470"],
                            "tls": {"caSecret": "queens-ca"}}
NAME = "bc-blendr-provider"
LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
          "app.kubernetes.io/component", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by", "helm.sh/chart")


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in layers:
        helm._merge(out, yaml.safe_load(yaml.safe_dump(layer)))
    return out


def example(name: str) -> dict[str, Any]:
    return helm.load_values(EXAMPLES / f"{name}-values.yaml")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every values file rendered once: the minimal required set and each example."""
    out = {"required": helm.render(CHART, REQUIRED)}
    for f in EXAMPLE_FILES:
        out[f.name.removesuffix("-values.yaml")] = helm.render(CHART, helm.load_values(f))
    return out


def pod_spec(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(helm.one(objs, "StatefulSet", NAME)["spec"]["template"]["spec"])


def container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = pod_spec(objs)["containers"]
    return dict(c)


def config_toml(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return tomllib.loads(helm.one(objs, "ConfigMap", NAME)["data"]["config.toml"])


# ---------------------------------------------------------------------------------------------- lint and render
def test_examples_are_there() -> None:
    assert [f.name for f in EXAMPLE_FILES] == ["cpu-values.yaml", "gpu-values.yaml", "kuberay-values.yaml"]


@pytest.mark.parametrize("values", [None, "required", *(f.name for f in EXAMPLE_FILES)])
def test_helm_lint_strict_is_clean(values: str | None) -> None:
    # Helm's lint reports a template's `fail` as information only: default values lint clean, and render refuses.
    vals = {} if values is None else REQUIRED if values == "required" else helm.load_values(EXAMPLES / values)
    assert helm.lint(CHART, vals) == []


def test_default_values_are_refused_for_want_of_a_key() -> None:
    msg = helm.schema_error(CHART, {})
    assert "key.existingSecret is required: a provider needs a stable identity" in msg
    assert "kubectl create secret generic provider-key --from-file=node.key=" in msg


def test_every_rendered_object_is_valid_kubernetes_1_35(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, objs in rendered.items():
        assert sorted(o["kind"] for o in objs) == ["ConfigMap", "Service", "StatefulSet"], name
        helm.validate(objs)


def test_labels_on_every_object_and_pod(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, objs in rendered.items():
        for o in objs:
            labels = o["metadata"]["labels"]
            assert set(LABELS) <= set(labels), (name, o["kind"])
            assert labels["app.kubernetes.io/component"] == "provider"
            assert labels["app.kubernetes.io/part-of"] == "blendrchain"
            assert labels["app.kubernetes.io/version"] == "0.1.0"
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
        sts = helm.one(objs, "StatefulSet", NAME)
        selector = sts["spec"]["selector"]["matchLabels"]
        assert selector == {"app.kubernetes.io/name": CHART, "app.kubernetes.io/instance": "bc",
                            "app.kubernetes.io/component": "provider"}
        assert selector.items() <= sts["spec"]["template"]["metadata"]["labels"].items()
        assert helm.one(objs, "Service")["spec"]["selector"] == selector


def test_every_config_toml_is_accepted_by_the_program(rendered: dict[str, list[dict[str, Any]]],
                                                      tmp_path: Path) -> None:
    for name, objs in rendered.items():
        f = tmp_path / f"{name}.toml"
        f.write_text(helm.one(objs, "ConfigMap", NAME)["data"]["config.toml"])
        cfg = load_config(tmp_path / "home", config_file=f, env={})
        assert cfg.rpc.health_listen == "0.0.0.0:7490", name
        assert (cfg.metrics.host, cfg.metrics.port) == ("0.0.0.0", 9090), name


# ---------------------------------------------------------------------------------------------- the pod
def test_probes_are_grpc_on_the_health_port(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, objs in rendered.items():
        c = container(objs)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == {"health": 7490, "metrics": 9090}, name
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert c[probe]["grpc"] == {"port": 7490}, (name, probe)
        assert config_toml(objs)["rpc"]["health_listen"] == "0.0.0.0:7490"


def test_security_context_is_locked_down(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, objs in rendered.items():
        spec = pod_spec(objs)
        assert spec["securityContext"] == {
            "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}, name
        assert spec["automountServiceAccountToken"] is False
        for c in [*spec["initContainers"], *spec["containers"]]:
            assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                             "capabilities": {"drop": ["ALL"]}}, (name, c["name"])
        vols = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
        # Writable places on a read-only root: the home, /tmp, and a memory-backed /dev/shm for Ray.
        assert mounts["/tmp"] == "tmp" and "emptyDir" in vols["tmp"]
        assert mounts["/dev/shm"] == "shm" and vols["shm"]["emptyDir"]["medium"] == "Memory"
        assert mounts["/var/lib/blendr"] == "home"


def test_seccomp_can_be_loosened_for_the_sandbox() -> None:
    objs = helm.render(CHART, merged(REQUIRED, {
        "hostUsers": False,
        "podSecurityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/bwrap.json"}},
        "securityContext": {"appArmorProfile": {"type": "Unconfined"}, "procMount": "Unmasked"}}))
    helm.validate(objs)
    spec = pod_spec(objs)
    assert spec["hostUsers"] is False
    assert spec["securityContext"]["seccompProfile"] == {"type": "Localhost", "localhostProfile": "profiles/bwrap.json"}
    assert spec["securityContext"]["runAsNonRoot"] is True  # the rest of the defaults stay
    assert spec["containers"][0]["securityContext"]["procMount"] == "Unmasked"
    assert spec["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "hostUsers" not in pod_spec(helm.render(CHART, REQUIRED))


def test_key_is_copied_from_its_secret_with_mode_0600(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, objs in rendered.items():
        spec = pod_spec(objs)
        (init,) = spec["initContainers"]
        assert init["command"] == ["/bin/sh", "-c", "install -m 0600 /etc/blendr/key/node.key /var/lib/blendr/node.key"]
        assert init["image"] == container(objs)["image"] == "ghcr.io/blendrchain/blendr-provider:0.1.0"
        assert {m["mountPath"]: (m["name"], m.get("readOnly", False)) for m in init["volumeMounts"]} == {
            "/etc/blendr/key": ("key", True), "/var/lib/blendr": ("home", False)}
        key = next(v for v in spec["volumes"] if v["name"] == "key")["secret"]
        values = REQUIRED if name == "required" else example(name)
        assert key["secretName"] == values["key"]["existingSecret"], name
        assert key["items"] == [{"key": "node.key", "path": "node.key"}]
        # The agent reads the copy only: the key volume is not mounted in its container.
        assert "key" not in {m["name"] for m in container(objs)["volumeMounts"]}


def test_gpu_values(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objs = rendered["gpu"]
    c, spec = container(objs), pod_spec(objs)
    assert c["resources"]["limits"] == {"nvidia.com/gpu": 2, "memory": "64Gi"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "gpu-node-a", "nvidia.com/gpu.present": "true"}
    assert spec["runtimeClassName"] == "nvidia"
    assert c["command"] == ["blendr"]
    assert c["args"] == ["provider", "run", "--home", "/var/lib/blendr", "--config", "/etc/blendr/config.toml"]
    (claim,) = helm.one(objs, "StatefulSet")["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "home" and claim["spec"]["resources"]["requests"]["storage"] == "100Gi"
    assert "home" not in {v["name"] for v in spec["volumes"]}
    toml = config_toml(objs)["provider"]
    assert (toml["ask_per_gpu_hour"], toml["job_network"], toml["sandbox"]) == ("1.25", "outbound", "bubblewrap")
    assert "ray_address" not in toml


def test_cpu_values(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objs = rendered["cpu"]
    c, spec = container(objs), pod_spec(objs)
    assert "nvidia.com/gpu" not in c["resources"]["limits"]
    assert "tolerations" not in spec
    assert c["args"][-1] == "--no-gpu"
    assert config_toml(objs)["provider"]["queens"] == ["queen-0.queens.blendr.svc.cluster.local:7470",
                                                      "queen-1.queens.blendr.svc.cluster.local:7470"]


def test_kuberay_values_join_the_cluster_as_a_worker(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objs = rendered["kuberay"]
    c = container(objs)
    pin = "blendr-provider-blendr-bc-blendr-provider"
    assert c["command"] == ["/bin/sh", "-c"]
    (script,) = c["args"]
    assert re.fullmatch(
        r"set -e; ray start --address='raycluster-gpu-head-svc:6379' --num-gpus=1 "
        rf"--resources='\{{\"{pin}\":1000\}}' --temp-dir=/tmp/ray --disable-usage-stats; "
        r"exec blendr provider run --home /var/lib/blendr --config /etc/blendr/config.toml", script), script
    toml = config_toml(objs)["provider"]
    assert toml["ray_address"] == "raycluster-gpu-head-svc:6379"
    assert toml["ray_dashboard"] == "http://raycluster-gpu-head-svc:8265"
    assert toml["ray_resource"] == pin
    env = {e["name"]: e for e in c["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    assert env["RAY_AUTH_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "raycluster-gpu-token", "key": "auth_token"}}
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_ray_start_params_become_flags() -> None:
    objs = helm.render(CHART, merged(example("kuberay"), {"ray": {"startParams": {
        "num-cpus": 8, "object-store-memory": 8000000000, "node-ip-address": "10.0.0.7", "include-log-monitor": False,
        "disable-usage-stats": True}}}))
    (script,) = container(objs)["args"]
    assert ("--disable-usage-stats --disable-usage-stats --node-ip-address='10.0.0.7' --num-cpus='8' "
            "--object-store-memory='8000000000'; exec blendr") in script
    assert "include-log-monitor" not in script


def test_tls_ca_from_a_secret_or_a_config_map_or_off() -> None:
    for source, vol_kind, ref in (("caSecret", "secret", "secretName"), ("caConfigMap", "configMap", "name")):
        objs = helm.render(CHART, merged({**REQUIRED, "tls": {source: "the-ca", "caKey": "root.pem"}}))
        vol = next(v for v in pod_spec(objs)["volumes"] if v["name"] == "tls-ca")
        assert vol[vol_kind][ref] == "the-ca" and vol[vol_kind]["items"] == [{"key": "root.pem", "path": "root.pem"}]
        assert config_toml(objs)["rpc"] == {"tls": True, "ca_file": "/etc/blendr/tls/root.pem",
                                            "health_listen": "0.0.0.0:7490"}
    objs = helm.render(CHART, merged({**REQUIRED, "tls": {"enabled": False}}))
    assert config_toml(objs)["rpc"] == {"tls": False, "health_listen": "0.0.0.0:7490"}
    assert "tls-ca" not in {v["name"] for v in pod_spec(objs)["volumes"]}


@pytest.mark.parametrize("source", ["deploymentConfigMap", "deploymentSecret", "deployment"])
def test_chain_deployment_and_rpc_overrides(source: str) -> None:
    value = '{"eth": {}}' if source == "deployment" else "chain-manifest"
    objs = helm.render(CHART, merged(REQUIRED, {"chain": {
        source: value, "ethRpcUrl": "https://eth.example/v1", "etcConfirmations": 5000}}))
    helm.validate(objs)
    assert config_toml(objs)["chain"] == {"deployment": "/etc/blendr/deployment.json",
                                          "eth_rpc_url": "https://eth.example/v1", "etc_confirmations": 5000}
    mount = next(m for m in container(objs)["volumeMounts"] if m["name"] == "deployment")
    assert (mount["mountPath"], mount["subPath"]) == ("/etc/blendr/deployment.json", "deployment.json")
    vol = next(v for v in pod_spec(objs)["volumes"] if v["name"] == "deployment")
    if source == "deploymentSecret":
        assert vol["secret"]["secretName"] == "chain-manifest"
    else:
        assert vol["configMap"]["name"] == ("chain-manifest" if source == "deploymentConfigMap" else NAME)
    if source == "deployment":
        assert helm.one(objs, "ConfigMap", NAME)["data"]["deployment.json"].strip() == value
    # Without a manifest, no [chain] at all (the agent does not read the chains).
    assert "chain" not in config_toml(helm.render(CHART, REQUIRED))


def test_extra_config_is_merged_over_the_values() -> None:
    objs = helm.render(CHART, merged(REQUIRED, {"config": {
        "provider": {"readiness_interval_s": 30, "sandbox": "gvisor"}, "rpc": {"call_timeout_s": 2.5}}}))
    toml = config_toml(objs)
    assert toml["provider"]["readiness_interval_s"] == 30 and toml["provider"]["sandbox"] == "gvisor"
    assert toml["provider"]["queens"] == ["queen-0.queens:7470"]
    assert toml["rpc"]["call_timeout_s"] == 2.5 and toml["rpc"]["tls"] is True


def test_config_change_rolls_the_pod() -> None:
    a = helm.one(helm.render(CHART, REQUIRED), "StatefulSet")
    b = helm.one(helm.render(CHART, merged(REQUIRED, {"provider": {"askPerGpuHour": "0.7"}})), "StatefulSet")
    key = "checksum/config"
    assert a["spec"]["template"]["metadata"]["annotations"][key] != b["spec"]["template"]["metadata"]["annotations"][key]


def test_notes_say_how_to_check_the_provider() -> None:
    text = helm.notes(CHART, REQUIRED)
    assert "StatefulSet bc-blendr-provider" in text
    assert "kubectl -n blendr logs bc-blendr-provider-0 -c provider" in text
    assert "blendr pool ls" in text
    assert "python -m provider.jail selftest bubblewrap none" in text
    assert "NO SANDBOX" in helm.notes(CHART, merged(REQUIRED, {"provider": {"sandbox": "none"}}))


# ---------------------------------------------------------------------------------------------- refusals
REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("no key", {"key": {"existingSecret": ""}}, "key.existingSecret is required"),
    ("no queen", {"queens": []}, "queens is required: the HOST:PORT of at least one queen"),
    ("queen without a port", {"queens": ["queen-0"]}, "at '/queens/0': 'queen-0' does not match pattern"),
    ("queen as a URL", {"queens": ["grpc://queen-0:7470"]}, "at '/queens/0': 'grpc://queen-0:7470' does not match"),
    ("queen port out of range", {"queens": ["queen-0:70000"]}, "queen-0:70000: the port must be in 1..65535"),
    ("queens twice", {"queens": ["q:1", "q:1"]}, "at '/queens': items at 0 and 1 are equal"),
    ("negative gpus", {"gpus": -1}, "at '/gpus': minimum: got -1, want 0"),
    ("gpus as a string", {"gpus": "2"}, "at '/gpus': got string, want integer"),
    ("gpus twice", {"gpus": 2, "resources": {"limits": {"nvidia.com/gpu": 4}}},
     "disagrees with gpus (2): set the GPU count with gpus only"),
    ("unknown sandbox", {"provider": {"sandbox": "docker"}},
     "at '/provider/sandbox': value must be one of 'bubblewrap', 'gvisor', 'none'"),
    ("unknown job network", {"provider": {"jobNetwork": "host"}}, "at '/provider/jobNetwork': value must be one of"),
    ("ask as a number", {"provider": {"askPerGpuHour": 0.5}}, "at '/provider/askPerGpuHour': got number, want string"),
    ("negative ask", {"provider": {"askPerGpuHour": "-1"}}, "at '/provider/askPerGpuHour': '-1' does not match"),
    ("bad pull policy", {"image": {"pullPolicy": "Sometimes"}},
     "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'"),
    ("unknown value", {"replicas": 3}, "additional properties 'replicas' not allowed"),
    ("unknown provider value", {"provider": {"queens": ["q:1"]}},
     "at '/provider': additional properties 'queens' not allowed"),
    ("no CA", {"tls": {"caSecret": ""}}, "tls.enabled needs the queens' CA certificate"),
    ("two CAs", {"tls": {"caConfigMap": "other"}}, "set tls.caSecret or tls.caConfigMap, not both"),
    ("ray address as a URL", {"ray": {"address": "ray://head:10001"}},
     "at '/ray/address': 'ray://head:10001' does not match"),
    ("ray start flag the chart sets", {"ray": {"address": "head:6379", "startParams": {"num-gpus": 4}}},
     "invalid propertyName 'num-gpus'"),
    ("ray start flag with a quote", {"ray": {"address": "head:6379", "startParams": {"node-ip-address": "x'; rm -rf /"}}},
     "at '/ray/startParams/node-ip-address': 'anyOf' failed"),
    ("dashboard without a cluster", {"ray": {"dashboard": "http://head:8265"}},
     "ray.dashboard is for a cluster given by ray.address"),
    ("two manifests", {"chain": {"deploymentConfigMap": "a", "deployment": "{}"}},
     "give the deployment manifest one way only"),
    ("RPC URL without a scheme", {"chain": {"ethRpcUrl": "eth.example:8545"}}, "at '/chain/ethRpcUrl'"),
    ("unknown config section", {"config": {"provder": {"x": 1}}}, "invalid propertyName 'provder'"),
    ("config value a table", {"config": {"provider": {"x": {"y": 1}}}}, "at '/config/provider/x'"),
    ("same port twice", {"metrics": {"port": 7490}}, "metrics.port and health.port must differ (both 7490)"),
    ("port out of range", {"health": {"port": 0}}, "at '/health/port': minimum: got 0, want 1"),
    ("bad log level", {"log": {"level": "TRACE"}}, "at '/log/level': value must be one of"),
    ("bad size", {"shm": {"sizeLimit": "lots"}}, "at '/shm/sizeLimit': 'lots' does not match"),
    ("unknown probe field", {"livenessProbe": {"exec": {"command": ["true"]}}},
     "at '/livenessProbe': additional properties 'exec' not allowed"),
]


@pytest.mark.parametrize(("values", "message"), [(v, m) for _, v, m in REFUSALS], ids=[i for i, _, _ in REFUSALS])
def test_bad_values_are_refused_with_a_readable_message(values: dict[str, Any], message: str) -> None:
    assert message in helm.schema_error(CHART, merged(REQUIRED, values))


# ---------------------------------------------------------------------------------------------- render and run
async def run_pod_against_a_queen(values: dict[str, Any], pod_dir: Path, queen_dir: Path,
                                  secrets: dict[str, dict[str, str | bytes]] | None = None) -> Any:
    """Render ``values`` with a real queen's address, run the pod's init container and agent as local processes,
    and wait until the agent serves SERVING on its health port and the queen (allowlist admission: only the
    key in the pod's Secret) admitted it, found it ready for renters' jobs and passed its first challenge.
    Returns the queen's record of the provider."""
    from queen.admission import AllowlistOracle
    from queen.app import start_queen
    from tests.integration.helpers import queen_config

    ident = NodeIdentity.generate()
    key_text = ident.save(pod_dir / "keygen").read_text()
    queen_dir.mkdir()
    app = await start_queen(queen_config(queen_dir, queen__admission="allowlist"))
    AllowlistOracle(app.store, app.core.clock).allow(ident.address)
    objs = helm.render(CHART, merged(values, {"queens": [f"127.0.0.1:{app.port}"]}))
    key_secret = helm.one(objs, "StatefulSet")["spec"]["template"]["spec"]["volumes"]
    key_secret = next(v["secret"]["secretName"] for v in key_secret if v["name"] == "key")
    pod = podrun.prepare(objs, NAME, pod_dir / "pod",
                         secrets={key_secret: {"node.key": key_text},
                                  "queens-ca": {"ca.crt": (queen_dir / "tls" / "ca.crt").read_bytes()},
                                  **(secrets or {})},
                         image_env={"BLENDR_HOME": "/var/lib/blendr"})
    proc: podrun.Process | None = None
    try:
        pod.run_init()
        assert (pod.local("/var/lib/blendr") / "node.key").stat().st_mode & 0o777 == 0o600
        # What the agent would refuse: the Secret's own file is group-readable (fsGroup).
        assert (pod.local("/etc/blendr/key") / "node.key").stat().st_mode & 0o040
        proc = pod.start()
        await asyncio.to_thread(proc.wait_serving, pod.port("health"), 150)

        def admitted() -> Any:
            rec = app.core.pool.get(ident.address)
            return rec if rec is not None and rec.passed >= 1 else None

        rec = await asyncio.to_thread(proc.wait_for, admitted, 120, "the queen to admit the provider and a challenge")
        assert rec.ready, f"not ready: {rec.not_ready}"  # its readiness job ran through Ray's job API and bwrap
        metrics = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{pod.port('metrics')}/metrics", timeout=5).read())
        assert b"blendr_provider_connected 1.0" in metrics
    finally:
        pod.stop()
        await app.stop()
    assert proc is not None and proc.proc.returncode == 0, f"stopped with {proc and proc.proc.returncode}\n" + (
        proc.output()[-3000:] if proc else "")
    return rec


async def test_cpu_values_pod_runs_and_a_queen_admits_it(tmp_path: Path) -> None:
    """examples/cpu-values.yaml's pod: the init container copies the key from its Secret, the agent starts a Ray
    head of its own, serves health and metrics on the chart's ports, and a real queen admits it."""
    rec = await run_pod_against_a_queen(example("cpu"), tmp_path, tmp_path / "queen")
    assert rec.sandbox == "bubblewrap"
    assert [d.model for d in rec.devices] == ["cpu"]
    assert rec.ray.num_gpus == 0 and rec.ray.pin_resource.startswith("blendr-provider-")


@pytest.mark.skipif(os.environ.get("BLENDR_TEST_KUBERAY") != "1",
                    reason="about 30 s more (a second Ray head): set BLENDR_TEST_KUBERAY=1")
async def test_kuberay_values_pod_joins_a_ray_cluster(tmp_path: Path) -> None:
    """examples/kuberay-values.yaml's pod against a token-authenticated Ray head standing in for KubeRay's: the
    pod's script joins the cluster as a worker node carrying the provider's resource, and the agent drives the
    cluster from there (its challenges and readiness job run on that node)."""
    from blendr.ports import free_ports
    from tests.rayhead import ray_head

    # Ray's socket paths live under the pod's /tmp and must stay short.
    short = Path(tempfile.mkdtemp(prefix="bp-", dir="/tmp"))
    ports = free_ports(6)
    flags = ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
             "runtime-env-agent-port", "node-manager-port", "object-manager-port")
    try:
        with ray_head(num_gpus=0, num_cpus=1) as head:
            values = merged(example("kuberay"), {"gpus": 0, "ray": {
                "address": head.gcs, "dashboard": head.address,
                "startParams": {"node-ip-address": "127.0.0.1", "num-cpus": 2, "min-worker-port": 0,
                                "max-worker-port": 0, **dict(zip(flags, ports, strict=True))}}})
            rec = await run_pod_against_a_queen(values, short, tmp_path / "queen",
                                                {"raycluster-gpu-token": {"auth_token": head.token}})
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert rec.ray.pin_resource == "blendr-provider-blendr-bc-blendr-provider"
    assert rec.ray.num_cpus == 3  # the head's one CPU and the pod's node's two: one cluster


def test_readme_documents_every_value() -> None:
    """Each value in values.yaml (maps the templates take whole counted as one) has a row in the README's table."""
    values = yaml.safe_load((helm.chart_path(CHART) / "values.yaml").read_text())
    whole = {"podSecurityContext", "securityContext", "resources", "nodeSelector", "affinity", "podAnnotations",
             "podLabels", "config", "ray.startParams"}

    def leaves(d: dict[str, Any], prefix: str = "") -> list[str]:
        out = []
        for k, v in d.items():
            path = f"{prefix}{k}"
            out += leaves(v, path + ".") if isinstance(v, dict) and path not in whole else [path]
        return out

    readme = (helm.chart_path(CHART) / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    missing = [p for p in leaves(values) if not any(f"`{p}`" in row.split("|")[1] for row in rows)]
    assert missing == []
    # and the schema knows every one of them
    schema = json.loads((helm.chart_path(CHART) / "values.schema.json").read_text())
    for path in leaves(values):
        node = schema
        for part in path.split("."):
            node = node["properties"][part]
        assert node.get("description") or node.get("type"), path
