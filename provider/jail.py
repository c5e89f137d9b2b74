"""The launcher between Ray's job supervisor and a job's sandbox: ``python -m provider.jail run SPEC``.

Ray runs this (our code) as the job's entrypoint on the provider's host; it reads the job's
:class:`~provider.sandbox.SandboxSpec`, puts itself in a fresh cgroup with the job's limits (or sets rlimits
where no cgroup can be made), starts the sandbox, forwards a stop (SIGTERM/SIGINT) to it, and when the sandbox
ends kills whatever is left in the cgroup, removes it and the sandbox's state, and exits with the job's exit
code (128 + N for a signal). The renter's command runs only inside the sandbox.

``python -m provider.jail selftest KIND NETWORK`` runs a trivial command in a sandbox of that kind and prints
``sandbox ok``; the provider's readiness check runs a probe job the same way as a real one.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import IO, Any

from provider.sandbox import (
    Limits,
    SandboxError,
    SandboxSpec,
    bubblewrap_argv,
    check_backend,
    env_file_text,
    gpu_device_nodes,
    gvisor_argv,
    job_env,
    no_userns_filter,
    oci_config,
    which,
)

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu")
CGROUP_PREFIX = "blendr-"
SLIRP_READY_S = 10.0


# Where a job with provider.job_network = "outbound" must never connect: private, shared, link-local (cloud
# metadata), benchmark, multicast and reserved ranges. slirp4netns forwards a connection to any address from the
# host, so without these the job would reach the host's own LAN addresses and its neighbours. The sandbox's own
# link (10.0.2.0/24: slirp's gateway and DNS) is a longer prefix and stays reachable; the gateway does not lead
# to the host's loopback (--disable-host-loopback).
BLOCKED_NETWORKS = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
                    "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4")


def host_addresses() -> list[str]:
    """The host's own IPv4 addresses outside 127/8 (``ip -j addr``), which a job must not reach either."""
    out = subprocess.run([which("ip"), "-j", "-4", "addr", "show"], capture_output=True, text=True, timeout=10,
                         check=True).stdout
    found = {a["local"] for link in json.loads(out or "[]") for a in link.get("addr_info", [])
             if a.get("family") == "inet" and a.get("local") and not a["local"].startswith("127.")}
    return sorted(found)


def block_private_networks(pid: int) -> None:
    """Add ``prohibit`` routes for :data:`BLOCKED_NETWORKS` and the host's own addresses to the network namespace of
    ``pid`` (the job's, before it runs): a connection there fails at once with EACCES. The job has no capability
    in that namespace, so it cannot remove them. Raises SandboxError when they cannot be added."""
    batch = "".join(f"route add prohibit {net}\n" for net in (*BLOCKED_NETWORKS, *(f"{a}/32" for a in host_addresses())))
    enter = [which("nsenter"), "--target", str(pid), "--net"]
    if os.geteuid() != 0:  # the sandbox's user namespace gives the rights over its network namespace
        enter += ["--user", "--preserve-credentials"]
    done = subprocess.run([*enter, "--", which("ip"), "-batch", "-"], input=batch, capture_output=True, text=True,
                          timeout=30, check=False)
    if done.returncode != 0:
        raise SandboxError(f"could not fence the job's network off the host's networks: {done.stderr.strip()[-300:]}")


def cgroup_support(root: Path = CGROUP_ROOT) -> str:
    """``"v2"`` or ``"v1"`` when this process may create cgroups with memory, pids and cpu limits, else ``""``."""
    if (root / "cgroup.controllers").exists():
        ctrls = (root / "cgroup.controllers").read_text().split()
        ok = all(c in ctrls for c in V1_CONTROLLERS) and os.access(root, os.W_OK)
        return "v2" if ok else ""
    if all(os.access(root / c, os.W_OK) for c in V1_CONTROLLERS):
        return "v1"
    return ""


def _own_v1_path(controller: str) -> str:
    """This process's cgroup (v1) for ``controller``, from /proc/self/cgroup ("/" when unknown)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3 and controller in parts[1].split(","):
                return parts[2] or "/"
    return "/"


def job_cgroup_dirs(name: str, version: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """Where a job's cgroup goes: under the launcher's own cgroup (so a job stays inside whatever limits the agent
    runs under: a systemd slice, a Kubernetes pod), or at the top where that is not writable. On v2 the top is
    already the container's own (cgroup namespaces)."""
    if version == "v2":
        return [root / "blendr" / name]
    dirs = []
    for c in V1_CONTROLLERS:
        own = root / c / _own_v1_path(c).lstrip("/")
        dirs.append((own if own.is_dir() and os.access(own, os.W_OK) else root / c) / name)
    return dirs


class JobCgroup:
    """The job's cgroup(s): limits set at creation, this process moved in (its children inherit it)."""

    def __init__(self, name: str, limits: Limits, version: str, root: Path = CGROUP_ROOT) -> None:
        self.version = version
        if version == "v2":
            parent = root / "blendr"
            parent.mkdir(exist_ok=True)
            with contextlib.suppress(OSError):
                (root / "cgroup.subtree_control").write_text("+memory +pids +cpu")
            with contextlib.suppress(OSError):
                (parent / "cgroup.subtree_control").write_text("+memory +pids +cpu")
            self.dirs = [parent / name]
        else:
            self.dirs = job_cgroup_dirs(name, version, root)
        for d in self.dirs:
            d.mkdir(exist_ok=True)
        self._set(limits)

    def _write(self, d: Path, key: str, value: str) -> None:
        (d / key).write_text(value)

    def _set(self, limits: Limits) -> None:
        if self.version == "v2":
            d = self.dirs[0]
            if limits.memory_bytes:
                self._write(d, "memory.max", str(limits.memory_bytes))
                with contextlib.suppress(OSError):
                    self._write(d, "memory.swap.max", "0")
            if limits.pids:
                self._write(d, "pids.max", str(limits.pids))
            if limits.cpus:
                self._write(d, "cpu.max", f"{int(limits.cpus * 100_000)} 100000")
            return
        mem, pids, cpu = self.dirs
        if limits.memory_bytes:
            self._write(mem, "memory.limit_in_bytes", str(limits.memory_bytes))
        if limits.pids:
            self._write(pids, "pids.max", str(limits.pids))
        if limits.cpus:
            self._write(cpu, "cpu.cfs_period_us", "100000")
            self._write(cpu, "cpu.cfs_quota_us", str(int(limits.cpus * 100_000)))

    def enter(self, pid: int = 0) -> None:
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(pid or os.getpid()))

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in self.dirs:
            with contextlib.suppress(OSError):
                out |= {int(x) for x in (d / "cgroup.procs").read_text().split()}
        return out

    def destroy(self, *, keep: int = 0) -> None:
        """Kill every process in the cgroup but ``keep`` (this launcher), move it out, remove the cgroup."""
        for _ in range(50):
            left = self.pids() - {keep}
            if not left:
                break
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        if keep:
            for d in self.dirs:
                with contextlib.suppress(OSError):
                    (d.parent / "cgroup.procs").write_text(str(keep))
        for d in self.dirs:
            for _ in range(20):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def _rlimits(limits: Limits) -> None:
    """Weaker limits where no cgroup can be made (runs in the child before exec)."""
    if limits.memory_bytes:
        resource.setrlimit(resource.RLIMIT_DATA, (limits.memory_bytes, limits.memory_bytes))
    if limits.pids and os.geteuid() != 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.pids, limits.pids))


def _cpu_affinity(limits: Limits) -> None:
    if limits.cpus and hasattr(os, "sched_getaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        want = max(1, int(limits.cpus))
        if want < len(cpus):
            os.sched_setaffinity(0, cpus[:want])


def _nvml() -> Any:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:
        return None


def _own_tree(spec: SandboxSpec) -> None:
    """Hand the job's writable folders to the job's user (when the launcher is root and drops to it)."""
    if os.geteuid() != 0:
        return
    for top in (spec.workdir, spec.outdir, *spec.rw_paths):
        for dirpath, dirnames, filenames in os.walk(top):
            for name in (dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)):
                with contextlib.suppress(OSError):
                    os.lchown(name, spec.job_uid, spec.job_uid)


class Launch:
    """One run of a job's sandbox."""

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self.child: subprocess.Popen[bytes] | None = None
        self.helpers: list[subprocess.Popen[bytes]] = []
        self.stopping = False

    def _argv_and_fds(self, env: dict[str, str], devices: list[str]) -> tuple[list[str], tuple[int, ...],
                                                                            tuple[int, int] | None]:
        spec = self.spec
        state = Path(spec.state_dir)
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        if spec.kind == "none":
            env = {**env, "PWD": spec.workdir, "HOME": spec.workdir}
            env.pop("RAY_OVERRIDE_RESOURCES", None)
            return ["/usr/bin/env", "-i", *[f"{k}={v}" for k, v in sorted(env.items())], "/bin/sh", "-c",
                    spec.command], (), None
        if spec.kind == "gvisor":
            bundle = state / "bundle"
            rootfs = bundle / "rootfs"
            rootfs.mkdir(parents=True, exist_ok=True)
            cg = cgroup_support() != ""
            config = oci_config(spec, env, devices, cgroups=cg)
            for m in config["mounts"]:  # made here: gVisor creating them in a read-only root fails now and then
                dest = rootfs / m["destination"].lstrip("/")
                dest.mkdir(mode=0o755, parents=True, exist_ok=True)
                for d in [dest, *dest.parents]:
                    if d == rootfs:
                        break
                    d.chmod(0o755)
            rootfs.chmod(0o755)
            (bundle / "config.json").write_text(json.dumps(config))
            return gvisor_argv(spec, bundle, cgroups=cg, runsc=which("runsc")), (), None
        as_root = os.geteuid() == 0
        fds: tuple[int, ...] = ()
        parent: tuple[int, int] | None = None
        info_w = block_r = -1
        if spec.network == "outbound":
            info_r, info_w = os.pipe()
            block_r, block_w = os.pipe()
            fds, parent = (info_w, block_r), (info_r, block_w)
        env_file = state / "job.env"
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)  # in a 0700 folder; read by the job
        with os.fdopen(fd, "w") as f:
            f.write(env_file_text(env, spec.command))
        argv = bubblewrap_argv(spec, env, devices, env_file=str(env_file), as_root=as_root, bwrap=which("bwrap"),
                               info_fd=info_w, block_fd=block_r)
        if spec.network == "outbound":
            resolv = state / "resolv.conf"
            resolv.write_text("nameserver 10.0.2.3\n")
            i = argv.index("--chdir")
            argv[i:i] = ["--ro-bind", str(resolv), "/etc/resolv.conf"]
        # The arguments go through a file descriptor, not the command line: the sandbox's first process is bwrap
        # itself, and its /proc/1/cmdline would show the job the host's paths.
        args_file = state / "bwrap.args"
        fd = os.open(args_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        extra_fds: list[int] = []
        if as_root and (program := no_userns_filter()) is not None:
            seccomp = state / "seccomp.bpf"
            seccomp.write_bytes(program)
            extra_fds.append(os.open(seccomp, os.O_RDONLY))
            seccomp.unlink()
            i = argv.index("--")
            argv[i:i] = ["--seccomp", str(extra_fds[-1])]
        cut = argv.index("--")  # the options; the command itself must stay on the command line
        with os.fdopen(fd, "wb") as f:
            f.write(b"".join(a.encode() + b"\0" for a in argv[1:cut]))
        args_fd = os.open(args_file, os.O_RDONLY)
        args_file.unlink()
        return [argv[0], "--args", str(args_fd), *argv[cut:]], (*fds, *extra_fds, args_fd), parent

    def _attach_network(self, info_r: int, block_w: int) -> None:
        """Give the bubblewrap sandbox its user-mode network (slirp4netns, no host loopback), then let it run."""
        with os.fdopen(info_r, "rb", closefd=True) as f:
            buf = b""
            while b"}" not in buf:
                chunk = f.read1(4096)
                if not chunk:
                    raise SandboxError("bwrap ended before reporting its sandbox")
                buf += chunk
        child_pid = int(json.loads(buf[: buf.index(b"}") + 1])["child-pid"])
        self._wait_for_loopback(child_pid)
        ready_r, ready_w = os.pipe()
        slirp = subprocess.Popen(
            [which("slirp4netns"), "--configure", "--mtu=65520", "--disable-host-loopback",
             "--ready-fd", str(ready_w), str(child_pid), "tap0"],
            pass_fds=(ready_w,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(ready_w)
        self.helpers.append(slirp)
        with os.fdopen(ready_r, "rb") as rf:
            if rf.read(1) != b"1":
                err = slirp.stderr.read().decode(errors="replace")[-300:] if slirp.stderr else ""
                raise SandboxError(f"slirp4netns could not attach the job's network: {err.strip()}")
        block_private_networks(child_pid)
        os.write(block_w, b"1")
        os.close(block_w)

    def _wait_for_loopback(self, child_pid: int, timeout_s: float = 60.0) -> None:
        """Waits until bwrap has given the sandbox's loopback its address. slirp4netns brings ``lo`` up as it
        attaches, and the kernel then gives ``lo`` 127.0.0.1 itself: bwrap, adding that address right after
        (exclusively), would fail its setup ("bwrap: loopback: Failed RTM_NEWADDR") and the job with it."""
        trie = Path(f"/proc/{child_pid}/net/fib_trie")  # the sandbox's network namespace's local addresses
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if "127.0.0.1" in trie.read_text():
                    return
            except OSError:
                pass  # the sandbox's process is gone: bwrap ended (said below)
            if self.child is not None and self.child.poll() is not None:
                raise SandboxError(f"bwrap ended (exit {self.child.returncode}) before its sandbox's network was set up")
            if time.monotonic() > deadline:
                raise SandboxError(f"bwrap did not set up its sandbox's loopback within {timeout_s:.0f} s")
            time.sleep(0.005)

    def run(self) -> int:
        spec = self.spec
        check_backend(spec.kind, spec.network)
        visible = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()][: spec.gpus]
        devices = gpu_device_nodes(visible, _nvml() if visible else None)
        env = job_env(spec, visible)
        # gVisor's runsc makes the sandbox's cgroup itself (from the OCI config); the launcher makes one otherwise.
        version = cgroup_support() if spec.kind != "gvisor" else ""
        cgroup = JobCgroup(CGROUP_PREFIX + spec.job_id, spec.limits, version) if version else None
        _own_tree(spec)
        argv, child_fds, parent_fds = self._argv_and_fds(env, devices)
        limits = spec.limits

        def preexec() -> None:
            if cgroup is None and spec.kind != "gvisor":
                _rlimits(limits)
                _cpu_affinity(limits)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        try:
            if cgroup is not None:
                cgroup.enter()
            # gVisor hands the stdio it is given to the job's user: give it pipes of its own, never the host's
            # /dev/null or the launcher's log file.
            piped = subprocess.PIPE if spec.kind == "gvisor" else None
            self.child = subprocess.Popen(argv, pass_fds=child_fds, preexec_fn=preexec,
                                          cwd=spec.workdir if spec.kind == "none" else "/",
                                          stdin=piped, stdout=piped, stderr=piped)
            for fd in child_fds:
                os.close(fd)
            pumps = []
            if piped is not None:
                assert self.child.stdin and self.child.stdout and self.child.stderr
                self.child.stdin.close()
                pumps = [threading.Thread(target=_pump, args=(src, dst), daemon=True)
                         for src, dst in ((self.child.stdout, sys.stdout.buffer),
                                          (self.child.stderr, sys.stderr.buffer))]
                for t in pumps:
                    t.start()
            if parent_fds is not None:
                self._attach_network(*parent_fds)
            code = self.child.wait()
            for t in pumps:
                t.join(timeout=10)
        finally:
            self._cleanup(cgroup)
        return 128 - code if code < 0 else code

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(OSError):
                self.child.send_signal(signal.SIGTERM if self.spec.kind != "bubblewrap" else signal.SIGKILL)

    def _cleanup(self, cgroup: JobCgroup | None) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.kill()
            self.child.wait()
        for h in self.helpers:
            with contextlib.suppress(OSError):
                h.kill()
            h.wait()
        reap(self.spec, cgroup)


def _pump(src: IO[bytes], dst: IO[bytes]) -> None:
    """Copy a sandbox's output to the launcher's own, as it comes."""
    while chunk := src.read1(65536) if hasattr(src, "read1") else src.read(65536):
        with contextlib.suppress(OSError):
            dst.write(chunk)
            dst.flush()


def reap(spec: SandboxSpec, cgroup: JobCgroup | None = None) -> None:
    """Leave nothing of the job's sandbox: its processes (the cgroup), gVisor's container, its state folder.
    Safe to call again, and from the agent after the launcher itself was killed."""
    if spec.kind == "gvisor":
        state = Path(spec.state_dir) / "runsc-state"
        if state.exists():
            with contextlib.suppress(OSError, SandboxError, subprocess.TimeoutExpired):
                subprocess.run([which("runsc"), "--root", str(state), "delete", "-force",
                                f"blendr-{spec.job_id}"], capture_output=True, timeout=30, check=False)
    if cgroup is None:
        version = cgroup_support()
        if version:
            dirs = job_cgroup_dirs(CGROUP_PREFIX + spec.job_id, version)
            if any(d.exists() for d in dirs):
                cgroup = JobCgroup.__new__(JobCgroup)
                cgroup.version, cgroup.dirs = version, dirs
    if cgroup is not None:
        cgroup.destroy(keep=os.getpid() if os.getpid() in cgroup.pids() else 0)
    shutil.rmtree(spec.state_dir, ignore_errors=True)


def self_test(kind: str, network: str, timeout_s: float = 60.0) -> str:
    """Run ``echo sandbox ok`` in a sandbox of ``kind``; returns its output or raises SandboxError."""
    check_backend(kind, network)
    with tempfile.TemporaryDirectory(prefix="blendr-sandbox-check-") as tmp:
        root = Path(tmp)
        for d in ("work", "out"):
            (root / d).mkdir()
        spec = SandboxSpec(job_id=f"selftest-{os.getpid()}", kind=kind, command="echo sandbox ok",
                           workdir=str(root / "work"), outdir=str(root / "out"), state_dir=str(root / "state"),
                           network=network, ro_paths=[sys.base_prefix, sys.prefix])
        (root / "spec.json").write_text(spec.to_json())
        try:
            done = subprocess.run([sys.executable, "-m", "provider.jail", "run", str(root / "spec.json")],
                                  capture_output=True, text=True, timeout=timeout_s, check=False,
                                  env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
        except subprocess.TimeoutExpired:
            raise SandboxError(f"the {kind} sandbox did not run a trivial command within {timeout_s:g} s") from None
        out = (done.stdout + done.stderr).strip()
        if done.returncode != 0 or "sandbox ok" not in done.stdout:
            raise SandboxError(f"the {kind} sandbox does not work here (exit {done.returncode}): {out[-400:]}")
        return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "run":
        try:
            spec = SandboxSpec.from_json(Path(args[1]).read_text())
            return Launch(spec).run()
        except SandboxError as exc:
            print(f"blendr sandbox: {exc}", file=sys.stderr, flush=True)
            return 125
        except (OSError, ValueError, TypeError) as exc:
            print(f"blendr sandbox: cannot start the job's sandbox: {exc}", file=sys.stderr, flush=True)
            return 125
    if len(args) == 3 and args[0] == "selftest":
        try:
            print(self_test(args[1], args[2]))
            return 0
        except SandboxError as exc:
            print(f"blendr sandbox: {exc}", file=sys.stderr)
            return 1
    print("usage: python -m provider.jail run SPEC.json | selftest KIND NETWORK", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
