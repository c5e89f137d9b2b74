"""tests/deploy/podrun.py on a pod written by hand: volumes, mount paths, ports, env and init containers."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import podrun

CONFIG = '[rpc]\nhealth_listen = "0.0.0.0:7490"\n[metrics]\nhost = "0.0.0.0"\nport = 9090\n' \
         '[store]\npath = "/var/lib/app/state.db"\n'


def objects() -> list[dict[str, Any]]:
    script = ('import json, os, sys; json.dump({"env": {k: os.environ.get(k) for k in sys.argv[2:-1]}, '
              '"argv": sys.argv[1:2] + sys.argv[-1:], "config": open(os.environ["CONF"]).read(), '
              '"copied": open("/var/lib/app/key").read()}, open(sys.argv[1], "w"))')
    return [
        {"kind": "ConfigMap", "metadata": {"name": "app"}, "data": {"config.toml": CONFIG, "LEVEL": "debug"}},
        {"kind": "Secret", "metadata": {"name": "rendered"}, "data": {"token": base64.b64encode(b"t0k").decode()}},
        {"kind": "StatefulSet", "metadata": {"name": "app", "namespace": "ns"}, "spec": {
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
            "template": {"spec": {
                "securityContext": {"fsGroup": 10001},
                "initContainers": [{"name": "init", "command": ["/bin/sh", "-c",
                                    "install -m 0600 /etc/app/key/k /var/lib/app/key"],
                                    "volumeMounts": [{"name": "key", "mountPath": "/etc/app/key"},
                                                     {"name": "data", "mountPath": "/var/lib/app"}]}],
                "containers": [{
                    "name": "main", "command": [sys.executable, "-c", script],
                    "args": ["/var/lib/app/out.json", "CONF", "HOME", "TOKEN", "EXISTING", "POD", "NS", "IP", "LEVEL",
                             "GREETING", "--metrics-port=9090"],
                    "ports": [{"name": "metrics", "containerPort": 9090}],
                    "readinessProbe": {"grpc": {"port": 7490}},
                    "env": [{"name": "CONF", "value": "/etc/app/config.toml"},
                            {"name": "HOME", "value": "/tmp"},
                            {"name": "WHO", "value": "world"},
                            {"name": "GREETING", "value": "hello $(WHO) $$(WHO) $(NOPE)"},
                            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "rendered", "key": "token"}}},
                            {"name": "EXISTING", "valueFrom": {"secretKeyRef": {"name": "given", "key": "k"}}},
                            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                    "envFrom": [{"configMapRef": {"name": "app"}}],
                    "volumeMounts": [{"name": "data", "mountPath": "/var/lib/app"},
                                     {"name": "config", "mountPath": "/etc/app/config.toml", "subPath": "config.toml"},
                                     {"name": "tmp", "mountPath": "/tmp"}]}],
                "volumes": [{"name": "config", "configMap": {"name": "app", "items": [{"key": "config.toml",
                                                                                     "path": "config.toml"}]}},
                            {"name": "key", "secret": {"secretName": "given", "defaultMode": 0o400}},
                            {"name": "tmp", "emptyDir": {}}]}}}},
    ]


def test_a_pod_laid_out_and_run_locally(tmp_path: Path) -> None:
    pod = podrun.prepare(objects(), "app", tmp_path, secrets={"given": {"k": "secret-key"}})
    data = pod.local("/var/lib/app")
    assert data == tmp_path / "volumes" / "data"
    assert pod.local("/etc/app/config.toml") == tmp_path / "volumes" / "config" / "config.toml"
    # fsGroup: the Secret's file is group-readable, as the kubelet makes it
    assert (tmp_path / "volumes" / "key" / "k").stat().st_mode & 0o777 == 0o440
    metrics, health = pod.port("metrics"), pod.port(7490)
    assert len({metrics, health, 9090, 7490}) == 4
    config = pod.local("/etc/app/config.toml").read_text()
    assert f'health_listen = "127.0.0.1:{health}"' in config
    assert f"port = {metrics}" in config and 'host = "127.0.0.1"' in config
    assert f'path = "{data}/state.db"' in config

    pod.run_init()
    assert (data / "key").stat().st_mode & 0o777 == 0o600
    proc = pod.start()
    assert proc.proc.wait(60) == 0, proc.output()
    out = json.loads((data / "out.json").read_text())
    assert out["argv"] == [str(data / "out.json"), f"--metrics-port={metrics}"]
    assert out["copied"] == "secret-key"
    assert out["env"] == {"CONF": str(pod.local("/etc/app/config.toml")), "HOME": str(tmp_path / "volumes" / "tmp"),
                          "TOKEN": "t0k", "EXISTING": "secret-key", "POD": "app-0", "NS": "ns", "IP": "127.0.0.1",
                          "LEVEL": "debug", "GREETING": "hello world $(WHO) $(NOPE)"}


def test_what_the_harness_cannot_provide_is_named(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="mounts Secret 'given', which the chart does not render"):
        podrun.prepare(objects(), "app", tmp_path)
    pod = podrun.prepare(objects(), "app", tmp_path / "b", secrets={"given": {"k": "x"}})
    pod.spec["initContainers"][0]["command"] = ["/bin/sh", "-c", "echo no >&2; exit 3"]
    with pytest.raises(AssertionError, match=r"init container init .* exited with 3:\nno"):
        pod.run_init()
