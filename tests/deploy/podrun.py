"""Run a rendered pod's commands as local processes: the proof that a chart and the program agree.

Given the objects a chart rendered and the name of a workload (Deployment, StatefulSet, DaemonSet or Job),
:func:`prepare` takes its pod template and builds the pod on this machine, under one temporary directory:

- every volume becomes a folder ``<tmp>/volumes/<name>``: ConfigMap and Secret volumes filled from the rendered
  ConfigMaps and Secrets, or from ``secrets`` / ``config_maps`` the test passes for objects the chart only names
  (``existingSecret``), with their ``items`` and modes; emptyDir, PVC and volumeClaimTemplates volumes empty;
- each mount path maps to its volume's folder (with ``subPath``, to that file or folder in it); every mount path
  is rewritten to its local path wherever it appears: in commands, args, env values and in the text of the
  ConfigMap files mounted (``/var/lib/blendr`` becomes ``<tmp>/volumes/home``); with the pod's ``fsGroup``
  set, Secret and ConfigMap files are made group-readable, as the kubelet makes them;
- every port a container declares (and every numeric probe port) maps to a free local port, rewritten in the
  same places where it is bound: ``0.0.0.0:7490`` (or 127.0.0.1, localhost, [::]) becomes
  ``127.0.0.1:<free>``, a TOML/INI line ``port = 9090`` becomes ``port = <free>``, and a host of ``"0.0.0.0"``
  becomes ``"127.0.0.1"``; so tests never collide on the chart's fixed ports;
- env from ``value``, ``valueFrom`` (secretKeyRef, configMapKeyRef, fieldRef of metadata.name/namespace,
  spec.nodeName, status.podIP → 127.0.0.1) and ``envFrom``; ``$(VAR)`` references expanded as the kubelet does.

:meth:`Pod.run_init` runs the init containers to completion; :meth:`Pod.start` starts a container as a
subprocess (a command of ``blendr`` is this interpreter's ``blendr`` console script; the interpreter's bin folder
leads ``PATH``, so shell scripts find ``blendr``, ``ray`` and ``install``) in a session of its own, its output in a
log that :class:`Process` shows when a wait fails. :meth:`Process.wait_serving` waits for ``grpc.health.v1``
SERVING on a port; :meth:`Process.stop` sends SIGTERM to the process, then kills its process group.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blendr.ports import free_port

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
BIND_HOSTS = r"(?:0\.0\.0\.0|127\.0\.0\.1|localhost|\[::\]|::)"
LOG_TAIL = 6000


def _data_of(obj: Mapping[str, Any]) -> dict[str, bytes]:
    """A rendered ConfigMap's or Secret's data, decoded to bytes."""
    out: dict[str, bytes] = {}
    for k, v in (obj.get("data") or {}).items():
        out[k] = base64.b64decode(v) if obj.get("kind") == "Secret" else str(v).encode()
    for k, v in (obj.get("binaryData") or {}).items():
        out[k] = base64.b64decode(v)
    for k, v in (obj.get("stringData") or {}).items():
        out[k] = str(v).encode()
    return out


def _as_bytes(data: Mapping[str, str | bytes]) -> dict[str, bytes]:
    return {k: v if isinstance(v, bytes) else v.encode() for k, v in data.items()}


@dataclass
class Process:
    """A container running as a local process group."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    grace_s: float = 30.0

    def output(self) -> str:
        """The process's output so far (stdout and stderr together)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _tail(self) -> str:
        return f"--- {self.name} log ({self.log}), last {LOG_TAIL} chars ---\n{self.output()[-LOG_TAIL:]}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, pred: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
        """Poll ``pred()`` until it returns something truthy; AssertionError with the log when the process exits
        or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while True:
            value = pred()
            if value:
                return value
            if not self.alive():
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} before {what}\n{self._tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{self._tail()}")
            time.sleep(interval)

    def wait_serving(self, port: int, timeout: float = 120.0, service: str = "") -> None:
        """Wait until the gRPC health service on 127.0.0.1:``port`` answers SERVING (plaintext)."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = health_pb2_grpc.HealthStub(channel)
        last = ["no answer yet"]

        def serving() -> bool:
            try:
                resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
            except grpc.RpcError as exc:
                last[0] = f"{exc.code().name}: {exc.details()}"
                return False
            last[0] = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
            return resp.status == health_pb2.HealthCheckResponse.SERVING

        try:
            self.wait_for(serving, timeout, f"SERVING on health port {port}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast health answer: {last[0]}") from None
        finally:
            channel.close()

    def stop(self) -> int | None:
        """As the kubelet stops a container: SIGTERM to its process, then, after ``grace_s``, SIGKILL to whatever
        is left of its process group. Returns the process's exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(self.grace_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        return self.proc.returncode


@dataclass
class Pod:
    """A rendered pod laid out on this machine (see the module docstring)."""

    name: str
    namespace: str
    tmp: Path
    spec: dict[str, Any]
    volumes: dict[str, Path]
    paths: dict[str, Path]
    ports: dict[int, int]
    env_sources: dict[tuple[str, str], dict[str, bytes]]
    image_env: dict[str, str]
    entrypoint: list[str]
    processes: list[Process] = field(default_factory=list)
    services: dict[str, str] = field(default_factory=dict)  # a Service's "host:port" → "127.0.0.1:<local port>"
    pod_ip: str = "127.0.0.1"  # status.podIP (another loopback address, 127.0.0.2…, is an address of its own)

    # ------------------------------------------------------------------ lookups
    def local(self, path: str) -> Path:
        """The local path of a path inside the pod (under one of its mounts)."""
        return Path(self.rewrite(path))

    def port(self, port: int | str) -> int:
        """The local port of a container port, by number or by name."""
        if isinstance(port, str):
            for c in self._containers():
                for p in c.get("ports") or []:
                    if p.get("name") == port:
                        return self.ports[int(p["containerPort"])]
            raise KeyError(f"no container port named {port!r}")
        return self.ports[port]

    def container(self, name: str | None = None) -> dict[str, Any]:
        """A container of the pod (the first when ``name`` is None)."""
        cs = self.spec.get("containers") or []
        if name is None:
            return dict(cs[0])
        for c in cs:
            if c["name"] == name:
                return dict(c)
        raise KeyError(f"no container {name!r} in {self.name}")

    def _containers(self) -> list[dict[str, Any]]:
        return list(self.spec.get("initContainers") or []) + list(self.spec.get("containers") or [])

    # ------------------------------------------------------------------ rewriting
    def rewrite(self, text: str) -> str:
        """``text`` with the pod's mount paths and bound ports made local."""
        if self.paths:
            alts = "|".join(re.escape(p) for p in sorted(self.paths, key=len, reverse=True))
            text = re.sub(rf"(?<![\w./-])({alts})(?=$|[/\s\"',;:=)\]}}])",
                          lambda m: str(self.paths[m.group(1)]), text)
        for inside, outside in self.ports.items():
            if self.pod_ip != "127.0.0.1":  # its own address: bound on every local one, so it answers there too
                text = re.sub(rf"(?<![\d.])({re.escape(self.pod_ip)}|0\.0\.0\.0):{inside}(?!\d)",
                              rf"\g<1>:{outside}", text)
            text = re.sub(rf"{BIND_HOSTS}:{inside}(?!\d)", f"127.0.0.1:{outside}", text)
            text = re.sub(rf"(?m)^(\s*port\s*=\s*){inside}(?!\d)", rf"\g<1>{outside}", text)
            text = re.sub(rf"(--[\w-]*port[=\s]){inside}(?!\d)", rf"\g<1>{outside}", text)
        for svc, local in self.services.items():
            text = text.replace(svc, local)
        return text.replace('"0.0.0.0"', '"127.0.0.1"')

    # ------------------------------------------------------------------ env and command
    def env(self, container: Mapping[str, Any]) -> dict[str, str]:
        """The container's environment as the kubelet would set it (made local), over this process's own (minus
        ``BLENDR_*`` and ``RAY_*``), with the interpreter's bin folder first on PATH."""
        # RAY_*: a Ray this test process started (a session's head with token auth) is not the pod's business
        base = {k: v for k, v in os.environ.items() if not k.startswith(("BLENDR_", "RAY_"))}
        bindir = str(Path(sys.executable).parent)
        base["PATH"] = bindir + os.pathsep + base.get("PATH", "/usr/bin:/bin")
        base["PYTHONUNBUFFERED"] = "1"
        env: dict[str, str] = {k: self.rewrite(v) for k, v in self.image_env.items()}
        for src in container.get("envFrom") or []:
            prefix = src.get("prefix", "")
            ref = src.get("configMapRef") or src.get("secretRef")
            kind = "ConfigMap" if "configMapRef" in src else "Secret"
            data = self.env_sources.get((kind, ref["name"]))
            if data is None:
                if ref.get("optional"):
                    continue
                raise AssertionError(f"envFrom: no {kind} {ref['name']!r} (pass it to prepare())")
            env.update({prefix + k: self.rewrite(v.decode()) for k, v in data.items()})
        for var in container.get("env") or []:
            value = self._env_value(var, env)
            if value is not None:
                env[var["name"]] = value
        return {**base, **env}

    def _env_value(self, var: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
        if "valueFrom" not in var:
            return self.rewrite(_expand(str(var.get("value", "")), env))
        src = var["valueFrom"]
        for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
            if key in src:
                ref = src[key]
                data = self.env_sources.get((kind, ref["name"]), {})
                if ref["key"] not in data:
                    if ref.get("optional"):
                        return None
                    raise AssertionError(f"env {var['name']}: no key {ref['key']!r} in {kind} {ref['name']!r} "
                                         "(pass it to prepare())")
                return data[ref["key"]].decode()
        if "fieldRef" in src:
            path = src["fieldRef"]["fieldPath"]
            fields = {"metadata.name": self.name, "metadata.namespace": self.namespace, "spec.nodeName": "localhost",
                      "status.podIP": self.pod_ip, "status.hostIP": "127.0.0.1", "status.podIPs": self.pod_ip,
                      "spec.serviceAccountName": self.spec.get("serviceAccountName", "default")}
            if path not in fields:
                raise AssertionError(f"env {var['name']}: fieldRef {path!r} is not supported here")
            return fields[path]
        raise AssertionError(f"env {var['name']}: valueFrom {sorted(src)} is not supported here")

    def argv(self, container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
        """The container's command and args (made local, ``$(VAR)`` expanded); ``blendr`` is this interpreter's."""
        argv = list(container.get("command") or self.entrypoint) + list(container.get("args") or [])
        program = argv[0] if argv and Path(argv[0]).is_absolute() and Path(argv[0]).exists() else None
        argv = [self.rewrite(_expand(a, env)) for a in argv]
        if program is not None:  # a program of this machine (the test's interpreter), wherever it lives (/tmp too)
            argv[0] = program
        if argv and argv[0] == "blendr":
            argv[0] = str(Path(sys.executable).with_name("blendr"))
        return argv

    # ------------------------------------------------------------------ running
    def run_init(self, timeout: float = 60.0) -> None:
        """Run every init container in order; AssertionError with its output when one fails."""
        for c in self.spec.get("initContainers") or []:
            env = self.env(c)
            argv = self.argv(c, env)
            done = subprocess.run(argv, env=env, cwd=self._cwd(c), capture_output=True, text=True,
                                  timeout=timeout, check=False)
            if done.returncode != 0:
                raise AssertionError(f"init container {c['name']} ({shlex.join(argv)}) exited with "
                                     f"{done.returncode}:\n{done.stdout}{done.stderr}")

    def start(self, name: str | None = None, grace_s: float = 30.0) -> Process:
        """Start a container (the first when ``name`` is None) as a process group of its own."""
        c = self.container(name)
        env = self.env(c)
        argv = self.argv(c, env)
        log = self.tmp / f"{c['name']}.log"
        with log.open("wb") as fh:
            fh.write(f"$ {shlex.join(argv)}\n".encode())
            fh.flush()
            proc = subprocess.Popen(argv, env=env, cwd=self._cwd(c), stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        p = Process(c["name"], proc, log, grace_s=grace_s)
        self.processes.append(p)
        return p

    def exec(self, *argv: str, container: str | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``kubectl exec POD [-c NAME] -- ARGV``: a command in a container's environment, its paths made local."""
        c = self.container(container)
        env = self.env(c)
        cmd = [self.rewrite(a) for a in argv]
        if cmd and cmd[0] == "blendr":
            cmd[0] = str(Path(sys.executable).with_name("blendr"))
        return subprocess.run(cmd, env=env, cwd=self._cwd(c), capture_output=True, text=True, timeout=timeout,
                              check=False)

    def stop(self) -> None:
        """Stop every process started, last first."""
        for p in reversed(self.processes):
            p.stop()

    def _cwd(self, c: Mapping[str, Any]) -> Path:
        if c.get("workingDir"):
            return self.local(c["workingDir"])
        d = self.tmp / "cwd" / c["name"]
        d.mkdir(parents=True, exist_ok=True)
        return d


def _expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined variables replaced, ``$$`` an escaped ``$``, others kept."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def workload(objs: Iterable[Mapping[str, Any]], name: str) -> dict[str, Any]:
    """The workload object (Deployment, StatefulSet, DaemonSet, Job) named ``name``."""
    found = [dict(o) for o in objs if o.get("kind") in WORKLOADS and o.get("metadata", {}).get("name") == name]
    assert len(found) == 1, f"expected one workload named {name!r}, found {len(found)}"
    return found[0]


def prepare(objs: Iterable[Mapping[str, Any]], name: str, tmp: Path, *,
            secrets: Mapping[str, Mapping[str, str | bytes]] | None = None,
            config_maps: Mapping[str, Mapping[str, str | bytes]] | None = None,
            image_env: Mapping[str, str] | None = None,
            entrypoint: Iterable[str] = ("blendr",), pod_name: str | None = None,
            services: Mapping[str, str] | None = None, pod_ip: str = "127.0.0.1",
            extra_ports: Iterable[int] = ()) -> Pod:
    """Lay out the pod of workload ``name`` under ``tmp`` (see the module docstring).

    Args:
        secrets / config_maps: Data of objects the chart refers to but does not render, by name (they win over
            rendered objects of the same name).
        image_env: The image's ENV (made local like the container's own env).
        entrypoint: The image's ENTRYPOINT, for containers without ``command``.
        pod_name: ``metadata.name`` for fieldRef (default: ``<name>-0`` for a StatefulSet, e.g. another ordinal's).
        services: A Service's ``host:port`` the pod dials → the local address of the pod behind it.
        pod_ip: The pod's IP (``status.podIP``); a loopback address other than 127.0.0.1 gives pods addresses of
            their own, which a certificate for 127.0.0.1 does not name.
        extra_ports: Ports the pod binds without declaring them (e.g. on its loopback), to map to free ones too.

    Raises:
        AssertionError: the pod refers to something this harness cannot provide (a missing Secret, an unknown
            volume type, two containers mounting different volumes at one path).
    """
    objs = list(objs)
    wl = workload(objs, name)
    template = wl["spec"]["template"]
    spec = template["spec"]
    namespace = wl.get("metadata", {}).get("namespace", "default")
    pod_name = pod_name or (f"{name}-0" if wl["kind"] == "StatefulSet" else f"{name}-local")
    tmp.mkdir(parents=True, exist_ok=True)

    sources: dict[tuple[str, str], dict[str, bytes]] = {}
    for o in objs:
        if o.get("kind") in ("ConfigMap", "Secret"):
            sources[(o["kind"], o["metadata"]["name"])] = _data_of(o)
    for n, d in (secrets or {}).items():
        sources[("Secret", n)] = _as_bytes(d)
    for n, d in (config_maps or {}).items():
        sources[("ConfigMap", n)] = _as_bytes(d)

    containers = list(spec.get("initContainers") or []) + list(spec.get("containers") or [])
    vol_dirs = {v["name"]: tmp / "volumes" / v["name"] for v in spec.get("volumes") or []}
    for claim in wl["spec"].get("volumeClaimTemplates") or []:
        vol_dirs[claim["metadata"]["name"]] = tmp / "volumes" / claim["metadata"]["name"]
    paths: dict[str, Path] = {}
    for c in containers:
        for m in c.get("volumeMounts") or []:
            if m["name"] not in vol_dirs:
                raise AssertionError(f"container {c['name']} mounts unknown volume {m['name']!r}")
            local = vol_dirs[m["name"]] / m["subPath"] if m.get("subPath") else vol_dirs[m["name"]]
            if paths.setdefault(m["mountPath"], local) != local:
                raise AssertionError(f"two containers mount different volumes at {m['mountPath']}")
    ports: dict[int, int] = {}
    for c in containers:
        declared = [int(p["containerPort"]) for p in c.get("ports") or []]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            for handler in ("grpc", "httpGet", "tcpSocket"):
                port = ((c.get(probe) or {}).get(handler) or {}).get("port")
                if isinstance(port, int):
                    declared.append(port)
        for p in declared:
            ports.setdefault(p, free_port())
    for p in extra_ports:
        ports.setdefault(p, free_port())

    pod = Pod(pod_name, namespace, tmp, spec, vol_dirs, paths, ports, sources, dict(image_env or {}),
              list(entrypoint), services=dict(services or {}), pod_ip=pod_ip)
    # Volumes: ConfigMap files are text the program reads, so their mount paths and ports are made local too.
    for v in spec.get("volumes") or []:
        _materialize(pod, v, sources)
    for claim in wl["spec"].get("volumeClaimTemplates") or []:
        vol_dirs[claim["metadata"]["name"]].mkdir(parents=True, exist_ok=True)
    return pod


def _materialize(pod: Pod, vol: Mapping[str, Any], sources: Mapping[tuple[str, str], dict[str, bytes]]) -> None:
    d = pod.volumes[vol["name"]]
    d.mkdir(parents=True, exist_ok=True)
    if "emptyDir" in vol or "persistentVolumeClaim" in vol:
        return
    if "configMap" in vol or "secret" in vol:
        _project(pod, d, vol.get("configMap") or vol["secret"], "ConfigMap" if "configMap" in vol else "Secret",
                 sources)
        return
    if "projected" in vol:
        for src in vol["projected"].get("sources") or []:
            if "configMap" in src or "secret" in src:
                ref = dict(src.get("configMap") or src["secret"])
                ref.setdefault("defaultMode", vol["projected"].get("defaultMode"))
                _project(pod, d, ref, "ConfigMap" if "configMap" in src else "Secret", sources)
            else:
                raise AssertionError(f"volume {vol['name']}: projected source {sorted(src)} is not supported here")
        return
    raise AssertionError(f"volume {vol['name']}: {sorted(set(vol) - {'name'})} is not supported here")


def _project(pod: Pod, d: Path, ref: Mapping[str, Any], kind: str,
             sources: Mapping[tuple[str, str], dict[str, bytes]]) -> None:
    obj_name = ref.get("name") or ref.get("secretName")
    assert obj_name, f"a {kind} volume without a name in {pod.name}"
    data = sources.get((kind, obj_name))
    if data is None:
        if ref.get("optional"):
            return
        raise AssertionError(f"{pod.name} mounts {kind} {obj_name!r}, which the chart does not render and the test "
                             "did not pass (prepare(..., secrets=/config_maps=))")
    default_mode = ref.get("defaultMode") or 0o644
    items = ref.get("items") or [{"key": k, "path": k} for k in data]
    for item in items:
        if item["key"] not in data:
            if ref.get("optional"):
                continue
            raise AssertionError(f"{kind} {obj_name!r} has no key {item['key']!r}")
        raw = data[item["key"]]
        if kind == "ConfigMap":
            with contextlib.suppress(UnicodeDecodeError):  # binary data is left as it is
                raw = pod.rewrite(raw.decode()).encode()
        target = d / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw)
        mode = item.get("mode") or default_mode
        if (pod.spec.get("securityContext") or {}).get("fsGroup") is not None:
            # As the kubelet does: with fsGroup, the files of these (read-only) volumes become group-readable.
            mode |= 0o440
        target.chmod(mode)
