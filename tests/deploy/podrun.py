"""Render and run: a rendered pod's containers run as local processes, exactly as the chart wrote them.

A pod's filesystem is mapped under one folder (``root``): every volume becomes a folder there, linked at its mount
path (``root/etc/blendr/config`` → the ConfigMap's files, …), and every absolute mount path in the containers'
command, args, environment and in the files of mounted ConfigMaps is rewritten to its place under ``root``. The only
other rewrites are addresses: a port the pod binds on ``0.0.0.0``/``127.0.0.1``/``$(POD_IP)`` becomes a free local
port (so tests never collide), and a Service's ``host:port`` the test names becomes the local address of the pod
behind it. Nothing else is changed: the commands, flags, environment and config are the chart's.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

BLENDR = str(Path(sys.executable).parent / "blendr")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pod_spec(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The pod template's spec of the workload ``kind``/``name``."""
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"no {kind} {name} among {[(o['kind'], o['metadata']['name']) for o in objs]}"
    spec: dict[str, Any] = found[0]["spec"]["template"]["spec"]
    return spec


@dataclass
class Pod:
    """One pod of a rendered workload, materialized under ``root`` and run by :meth:`start`."""

    spec: dict[str, Any]
    name: str
    root: Path
    objs: list[dict[str, Any]]
    secrets: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)
    configmaps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    services: Mapping[str, str] = field(default_factory=dict)  # "host:port" of a Service → "127.0.0.1:port"
    extra_env: Mapping[str, str] = field(default_factory=dict)  # set last, e.g. BLENDR_METRICS__PORT for a free port
    loopback_ports: tuple[int, ...] = ()  # ports the pod binds on 127.0.0.1 (e.g. a queen's operator API)
    pod_ip: str = "127.0.0.1"  # status.podIP: another loopback address (127.0.0.2…) makes it an address of its own
    ports: dict[int, int] = field(default_factory=dict)  # the pod's port → the local port it binds
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for port in [*(p["containerPort"] for c in self.spec["containers"] for p in c.get("ports", [])),
                     *self.loopback_ports]:
            self.ports.setdefault(port, free_port())
        self._bind_re = re.compile(
            r"(0\.0\.0\.0|127\.0\.0\.1|\$\(POD_IP\)|" + re.escape(self.pod_ip) + r"):(\d{2,5})\b")
        self._mounts: dict[str, Path] = {}
        for c in [*self.spec.get("initContainers", []), *self.spec["containers"]]:
            for m in c.get("volumeMounts", []):
                self._mounts[m["mountPath"]] = self.root / "volumes" / m["name"]
        self._paths = re.compile(r"(?<![\w./-])(" + "|".join(
            re.escape(p) for p in sorted(self._mounts, key=len, reverse=True)) + r")(?=/|\b|$)")
        for vol in self.spec.get("volumes", []):
            self._volume(vol)
        for path, target in self._mounts.items():  # a StatefulSet's volumeClaimTemplates: empty volumes too
            target.mkdir(parents=True, exist_ok=True)
            link = self.root / path.lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(target, target_is_directory=True)

    # ------------------------------------------------------------------ rewriting
    def rewrite(self, text: str) -> str:
        """Mount paths to their place under ``root``; the pod's bound ports and named Services to local ports."""
        text = self._paths.sub(lambda m: str(self.root) + m.group(1), text)
        for svc, local in self.services.items():
            text = text.replace(svc, local)
        return self._bind_re.sub(self._bind, text)

    def _bind(self, m: re.Match[str]) -> str:
        host, port = m.group(1), int(m.group(2))
        if host == "127.0.0.1" and port not in self.ports and port not in self.loopback_ports:
            return m.group(0)  # another process's address (a chain's RPC): not this pod's
        if port not in self.ports:
            self.ports[port] = free_port()
        return f"{host}:{self.ports[port]}"

    def _volume(self, vol: dict[str, Any]) -> None:
        where = self.root / "volumes" / vol["name"]
        where.mkdir(parents=True, exist_ok=True)
        if "configMap" in vol:
            name = vol["configMap"]["name"]
            data = self.configmaps.get(name) or next(
                (o.get("data", {}) for o in self.objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name),
                None)
            assert data is not None, f"volume {vol['name']}: no ConfigMap {name} rendered or given"
            for key, path in _items(vol["configMap"], data):
                (where / path).write_text(self.rewrite(data[key]))
        elif "secret" in vol:
            name = vol["secret"]["secretName"]
            assert name in self.secrets, f"volume {vol['name']}: the test gives no Secret {name}"
            data_b = self.secrets[name]
            mode = vol["secret"].get("defaultMode", 0o644)
            for key, path in _items(vol["secret"], data_b):
                f = where / path
                f.write_bytes(data_b[key])
                f.chmod(mode)
        elif not ({"emptyDir", "persistentVolumeClaim"} & vol.keys()):
            raise AssertionError(f"volume {vol['name']}: a kind this harness does not run: {vol}")

    # ------------------------------------------------------------------ environment and commands
    def env(self, container: dict[str, Any]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLENDR_")}
        own: dict[str, str] = {}
        for e in container.get("env", []):
            if "value" in e:
                value = re.sub(r"\$\((\w+)\)", lambda m: own.get(m.group(1), m.group(0)), e["value"])
            else:
                value = self._value_from(e["valueFrom"])
            own[e["name"]] = value
        env.update({k: self.rewrite(v) for k, v in own.items()})
        env.update(self.extra_env)
        return env

    def _value_from(self, ref: dict[str, Any]) -> str:
        if "fieldRef" in ref:
            path = ref["fieldRef"]["fieldPath"]
            return {"metadata.name": self.name, "metadata.namespace": "blendr", "status.podIP": self.pod_ip}[path]
        if "secretKeyRef" in ref:
            r = ref["secretKeyRef"]
            return self.secrets[r["name"]][r["key"]].decode()
        if "configMapKeyRef" in ref:
            r = ref["configMapKeyRef"]
            return self.configmaps[r["name"]][r["key"]]
        raise AssertionError(f"env valueFrom this harness does not run: {ref}")

    def argv(self, container: dict[str, Any]) -> list[str]:
        """The container's command and args (the image's ENTRYPOINT, ``blendr``, when no command is set)."""
        command = container.get("command") or [BLENDR]
        command = [BLENDR if c == "blendr" else c for c in command]
        return [self.rewrite(a) for a in [*command, *container.get("args", [])]]

    def start(self, timeout: float = 60.0) -> None:
        """Run the init containers to completion, then start the first container."""
        for c in self.spec.get("initContainers", []):
            done = subprocess.run(self.argv(c), env=self.env(c), capture_output=True, timeout=timeout)
            assert done.returncode == 0, (f"{self.name}: init container {c['name']} failed ({done.returncode}): "
                                          f"{done.stdout.decode()}{done.stderr.decode()}")
        main = self.spec["containers"][0]
        self.log = self.root / f"{main['name']}.log"
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(self.argv(main), env=self.env(main), stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def exec(self, *argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``kubectl exec POD -c MAIN -- ARGV``: a command in the first container's environment and filesystem."""
        main = self.spec["containers"][0]
        cmd = [BLENDR if a == "blendr" else self.rewrite(a) for a in argv]
        return subprocess.run(cmd, env=self.env(main), capture_output=True, text=True, timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def local(self, port: int) -> str:
        """``127.0.0.1:PORT`` where this pod's ``port`` is bound."""
        return f"127.0.0.1:{self.ports[port]}"

    def stop(self, grace: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    # ------------------------------------------------------------------ what a kubelet would ask
    def health(self, port: int, service: str = "") -> int | None:
        """The status of a grpc probe against this pod's ``port``, or None when nothing answers."""
        try:
            with grpc.insecure_channel(self.local(port)) as ch:
                resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service),
                                                            timeout=5)
                status: int = resp.status
                return status
        except grpc.RpcError:
            return None

    def wait(self, pred: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
        """Poll ``pred`` until truthy; fail with the pod's log if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            value = pred()
            if value:
                return value
            if not self.alive():
                raise AssertionError(f"{self.name} exited ({self.proc and self.proc.returncode}) waiting for "
                                     f"{what}:\n{self.output()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: timed out after {timeout}s waiting for {what}:\n"
                                     f"{self.output()[-4000:]}")
            time.sleep(0.2)

    def wait_serving(self, port: int, timeout: float = 120.0) -> None:
        self.wait(lambda: self.health(port) == health_pb2.HealthCheckResponse.SERVING,
                  f"SERVING on its health port {port}", timeout)

    def scrape(self, port: int) -> str:
        with urllib.request.urlopen(f"http://{self.local(port)}/metrics", timeout=5) as resp:
            text: str = resp.read().decode()
            return text

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _items(source: dict[str, Any], data: Mapping[str, Any]) -> list[tuple[str, str]]:
    if "items" in source:
        return [(i["key"], i["path"]) for i in source["items"]]
    return [(k, k) for k in data]
