"""Where a renter's code runs: a sandbox, behind one small port the provider chooses.

Every job's entrypoint runs inside a sandbox built from its :class:`SandboxSpec`; nothing of the renter's runs
outside it (the Ray job supervisor runs :mod:`provider.jail`, our launcher, which starts the sandbox). Inside,
the job sees:

* its own working directory at ``/job/work`` (the current directory) and its outputs folder at
  ``/job/outputs``, both writable, both removed when the job ends;
* a private ``/tmp``, ``/dev/shm`` and ``HOME`` (``/tmp``), gone with the sandbox;
* read-only system files (``/usr``, ``/lib*``, ``/bin``, ``/sbin``, ``/etc``), the Python it runs with and its
  own environment (each bound read-only at its own path, so virtualenv scripts keep working);
* only the GPU device nodes it rented (``/dev/nvidiaN`` of the GPUs Ray granted it, and the driver's control
  nodes), with ``CUDA_VISIBLE_DEVICES`` naming them;
* its own process tree only (a PID namespace), its own hostname and IPC;
* the network per ``provider.job_network``: ``none`` (a private loopback, nothing else) or ``outbound`` (the
  internet through a user-mode network stack that does not reach the host's loopback);
* a variable ``RAY_OVERRIDE_RESOURCES`` sizing any Ray the job starts inside (``ray.init()``) to what it
  rented; the provider's own Ray is out of reach (another network namespace, no token, no address).

The backends:

* ``bubblewrap`` — Debian's ``bwrap`` (the sandbox Flatpak uses): Linux namespaces; works unprivileged. When the
  agent runs as root, bwrap mounts as root and the command drops to ``job_uid`` (default 65534) with every
  capability dropped, so the root-owned files it can see are no more reachable than to any other user.
  ``outbound`` needs ``slirp4netns`` (``--disable-host-loopback``).
* ``gvisor`` — ``runsc`` (a user-space kernel, the isolation Kubernetes' sandboxes use for untrusted code),
  through an OCI bundle: needs root. ``job_network = "outbound"`` is refused with gVisor here (``none`` only).
* ``none`` — no sandbox; only when the operator sets ``provider.sandbox = "none"`` explicitly. Logged loudly and
  shown to queens, the king and renters.

Limits per job (memory, CPUs, processes) go through a cgroup where the agent may create one (cgroup v1 or v2),
else through rlimits and CPU affinity (weaker). With gVisor the cgroup holds the whole sandbox (its kernel
included) and limits its memory and CPU; the number of processes inside is bounded by that memory only (a host
pids limit counts gVisor's own threads and kills the sandbox, and Debian's runsc has no limit of its own).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import struct
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from blendr.errors import ComputeError, InvalidArgumentError

SANDBOXES = ("bubblewrap", "gvisor", "none")
NETWORKS = ("none", "outbound")
JOB_ROOT = "/job"
JOB_WORK = "/job/work"
JOB_OUTPUTS = "/job/outputs"
# System paths bound read-only when they exist (merged-/usr systems link most of them into /usr).
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
# The NVIDIA driver's control nodes a CUDA process needs besides its GPUs' own /dev/nvidiaN.
NVIDIA_CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")
DEFAULT_JOB_UID = 65534
JOB_ENV_FILE = "/job/.env"
# Run as the job's user with an empty environment: exports the job's variables, then runs its command.
ENV_LOADER = ('set -a; . /job/.env; set +a; c="$BLENDR_ENTRYPOINT"; unset BLENDR_ENTRYPOINT; '
              'exec /bin/sh -c "$c"')
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SandboxError(ComputeError):
    """Raised when the sandbox cannot be set up or does not work on this machine."""


@dataclass(frozen=True)
class Limits:
    """A job's resource limits (0 = none)."""

    memory_bytes: int = 0
    cpus: float = 0.0
    pids: int = 0


@dataclass(frozen=True)
class SandboxSpec:
    """Everything the launcher needs to start one job's sandbox (written as JSON beside the job's files)."""

    job_id: str
    kind: str  # one of SANDBOXES
    command: str  # the renter's entrypoint, run by /bin/sh -c inside
    workdir: str  # host folder bound at /job/work
    outdir: str  # host folder bound at /job/outputs
    state_dir: str  # host folder for the sandbox's own state (gVisor's bundle); removed at the end
    env: dict[str, str] = field(default_factory=dict)
    ro_paths: list[str] = field(default_factory=list)  # host paths bound read-only at the same path
    rw_paths: list[str] = field(default_factory=list)  # host paths bound writable at the same path (an env's build)
    gpus: int = 0
    network: str = "none"
    limits: Limits = Limits()
    job_uid: int = DEFAULT_JOB_UID

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SandboxSpec:
        d = json.loads(text)
        d["limits"] = Limits(**d.get("limits", {}))
        spec = cls(**d)
        spec.validate()
        return spec

    def validate(self) -> None:
        """Raises InvalidArgumentError for a spec no backend may run."""
        if self.kind not in SANDBOXES:
            raise InvalidArgumentError(f"unknown sandbox {self.kind!r} (one of {', '.join(SANDBOXES)})")
        if self.network not in NETWORKS:
            raise InvalidArgumentError(f"unknown job network {self.network!r} (one of {', '.join(NETWORKS)})")
        for p in (self.workdir, self.outdir, self.state_dir, *self.ro_paths, *self.rw_paths):
            if not os.path.isabs(p):
                raise InvalidArgumentError(f"sandbox path {p!r} must be absolute")
        if any("\0" in k or "=" in k or "\0" in v for k, v in self.env.items()):
            raise InvalidArgumentError("environment variable names and values must not hold NUL or '='")


def job_env(spec: SandboxSpec, visible_gpus: Sequence[str]) -> dict[str, str]:
    """The environment the job's command starts with: the spec's, the sandbox's paths, and its GPUs."""
    env = dict(spec.env)
    env.update({
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "PWD": JOB_WORK,
        "CUDA_VISIBLE_DEVICES": ",".join(visible_gpus),
        "RAY_OVERRIDE_RESOURCES": json.dumps({"CPU": max(1, int(spec.limits.cpus or os.cpu_count() or 1)),
                                              "GPU": len(visible_gpus)}),
    })
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    return env


def gpu_device_nodes(visible_gpus: Sequence[str], nvml: Any = None) -> list[str]:
    """The device nodes of the granted GPUs (``/dev/nvidia<minor>``) plus the driver's control nodes, those that
    exist. The minor number comes from NVML when it answers, else the index is taken as the minor."""
    if not visible_gpus:
        return []
    minors: list[int] = []
    for idx in visible_gpus:
        if not idx.strip().isdigit():
            raise SandboxError(f"cannot map GPU {idx!r} to its device node (expected an index)")
        minor = int(idx)
        if nvml is not None:
            try:
                minor = int(nvml.nvmlDeviceGetMinorNumber(nvml.nvmlDeviceGetHandleByIndex(int(idx))))
            except Exception:
                minor = int(idx)
        minors.append(minor)
    nodes = [f"/dev/nvidia{m}" for m in minors]
    return [n for n in (*nodes, *NVIDIA_CONTROL_NODES) if os.path.exists(n)]


def _ro_binds(spec: SandboxSpec) -> list[str]:
    # A path reached through a symlink (a virtualenv linked elsewhere) is bound where the link points, too.
    wanted = [q for p in (*SYSTEM_PATHS, *spec.ro_paths) for q in (p, os.path.realpath(p))]
    seen: list[str] = []
    for p in wanted:
        if os.path.lexists(p) and p not in seen and not any(p.startswith(s.rstrip("/") + "/") for s in seen):
            seen.append(p)
    return seen


def env_file_text(env: Mapping[str, str], command: str) -> str:
    """The job's variables and command as the shell file :data:`ENV_LOADER` reads (values quoted, names checked).

    Raises:
        InvalidArgumentError: a variable name that is not a shell identifier.
    """
    lines = []
    for k, v in sorted({**env, "BLENDR_ENTRYPOINT": command}.items()):
        if not _NAME.fullmatch(k):
            raise InvalidArgumentError(f"environment variable name {k[:64]!r} is not a shell identifier")
        lines.append(f"{k}={shlex.quote(v)}\n")
    return "".join(lines)


# seccomp: no new user namespace for a job (a root agent's bubblewrap runs without one of its own, so
# --disable-userns is not available): unshare/clone with CLONE_NEWUSER fail with EPERM, clone3 (whose flags a
# filter cannot read) with ENOSYS, on which the C library falls back to clone. Syscall numbers per architecture.
_SECCOMP_ARCHES = {"x86_64": (0xC000003E, 56, 272, 435), "aarch64": (0xC00000B7, 220, 97, 435)}
_CLONE_NEWUSER = 0x10000000


def no_userns_filter(machine: str | None = None) -> bytes | None:
    """A classic-BPF seccomp program (``struct sock_filter[]``) refusing new user namespaces, for bwrap's
    ``--seccomp``; None on an architecture it does not know."""
    arch = _SECCOMP_ARCHES.get(machine or os.uname().machine)
    if arch is None:
        return None
    audit, clone, unshare, clone3 = arch
    ld, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    prog = [
        (ld, 0, 0, 4),  # 0: arch
        (jeq, 0, 4, audit),  # 1: another architecture: allow (6)
        (ld, 0, 0, 0),  # 2: syscall number
        (jeq, 7, 0, clone3),  # 3: -> 11
        (jeq, 2, 0, unshare),  # 4: -> 7
        (jeq, 1, 0, clone),  # 5: -> 7
        (ret, 0, 0, allow),  # 6
        (ld, 0, 0, 16),  # 7: the flags (low 32 bits of the first argument)
        (jset, 1, 0, _CLONE_NEWUSER),  # 8: -> 10
        (ret, 0, 0, allow),  # 9
        (ret, 0, 0, eperm),  # 10
        (ret, 0, 0, enosys),  # 11
    ]
    return b"".join(struct.pack("<HBBI", *ins) for ins in prog)


def bubblewrap_argv(spec: SandboxSpec, env: Mapping[str, str], devices: Sequence[str], *, env_file: str,
                    as_root: bool, bwrap: str = "bwrap", info_fd: int = -1, block_fd: int = -1) -> list[str]:
    """The ``bwrap`` command line that runs the job's command in its sandbox.

    ``as_root``: bwrap runs with real privileges (no user namespace); the command then drops to ``job_uid``
    through ``setpriv`` with no capability left. ``info_fd``/``block_fd`` (``outbound``): bwrap reports the
    sandbox's PID on one and waits on the other until the network is attached.
    """
    argv = [bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--unshare-net", "--hostname", "blendr-job"]
    if not as_root:
        argv += ["--unshare-user", "--disable-userns"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm", "--perms", "1777",
             "--tmpfs", "/tmp"]
    binds = _ro_binds(spec)
    parents = sorted({str(a) for p in binds for a in Path(p).parents if str(a) != "/"} - set(binds))
    for d in parents:  # bwrap would make them 0700, closing them to the job's user
        argv += ["--perms", "0755", "--dir", d]
    for p in binds:
        # A symlink (/bin -> usr/bin on merged-/usr systems) is recreated as one; a folder is bound.
        if os.path.islink(p):
            argv += ["--symlink", os.readlink(p), p]
        else:
            argv += ["--ro-bind", p, p]
    for d in sorted({str(a) for p in spec.rw_paths for a in Path(p).parents if str(a) != "/"} - set(binds)):
        argv += ["--perms", "0755", "--dir", d]
    for p in spec.rw_paths:
        argv += ["--bind", p, p]
    argv += ["--dir", JOB_ROOT, "--bind", spec.workdir, JOB_WORK, "--bind", spec.outdir, JOB_OUTPUTS]
    for node in devices:
        argv += ["--dev-bind", node, node]
    # No variable of the renter's reaches a process that still holds a privilege (setpriv as root honours
    # LD_PRELOAD): the sandbox starts with an empty environment, and the job's variables (and its command) are
    # read from a file by a shell running as the job's user.
    argv += ["--ro-bind", env_file, JOB_ENV_FILE, "--remount-ro", "/", "--chdir", JOB_WORK, "--clearenv"]
    if info_fd >= 0:
        argv += ["--info-fd", str(info_fd)]
    if block_fd >= 0:
        argv += ["--block-fd", str(block_fd)]
    if as_root:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", "/usr/bin/setpriv",
                 f"--reuid={spec.job_uid}", f"--regid={spec.job_uid}", "--clear-groups", "--inh-caps=-all",
                 "--bounding-set=-all", "--no-new-privs"]
    else:
        argv += ["--cap-drop", "ALL", "--"]
    return [*argv, "/usr/bin/env", "-i", "/bin/sh", "-c", ENV_LOADER]


def oci_config(spec: SandboxSpec, env: Mapping[str, str], devices: Sequence[str], *,
               cgroups: bool) -> dict[str, Any]:
    """The OCI runtime config of the job's gVisor sandbox (an empty read-only root with read-only binds)."""
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "nodev", "mode=1777"]},
    ]
    for p in _ro_binds(spec):
        src = os.path.realpath(p)
        mounts.append({"destination": p, "type": "bind", "source": src, "options": ["rbind", "ro"]})
    mounts += [{"destination": p, "type": "bind", "source": p, "options": ["rbind", "rw"]} for p in spec.rw_paths]
    mounts += [{"destination": JOB_WORK, "type": "bind", "source": spec.workdir, "options": ["rbind", "rw"]},
               {"destination": JOB_OUTPUTS, "type": "bind", "source": spec.outdir, "options": ["rbind", "rw"]}]
    linux: dict[str, Any] = {
        "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
        "devices": [_oci_device(n) for n in devices],
    }
    if cgroups:
        res: dict[str, Any] = {}
        if spec.limits.memory_bytes:
            res["memory"] = {"limit": spec.limits.memory_bytes}
        if spec.limits.cpus:
            res["cpu"] = {"quota": int(spec.limits.cpus * 100_000), "period": 100_000}
        linux["resources"] = res
        linux["cgroupsPath"] = f"/blendr-gvisor-{spec.job_id}"
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": spec.job_uid, "gid": spec.job_uid},
            "args": ["/bin/sh", "-c", spec.command],
            "env": [f"{k}={v}" for k, v in sorted(env.items())],
            "cwd": JOB_WORK,
            "capabilities": {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")},
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "blendr-job",
        "mounts": mounts,
        "linux": linux,
    }


def _oci_device(node: str) -> dict[str, Any]:
    st = os.stat(node)
    return {"path": node, "type": "c", "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
            "fileMode": 0o666, "uid": 0, "gid": 0}


def gvisor_argv(spec: SandboxSpec, bundle: Path, *, cgroups: bool, runsc: str = "runsc") -> list[str]:
    """The ``runsc`` command line that runs the bundle (its container id is the job's)."""
    state = Path(spec.state_dir) / "runsc-state"
    return [runsc, "--root", str(state), "--network=none", *([] if cgroups else ["--ignore-cgroups"]),
            "run", "--bundle", str(bundle), f"blendr-{spec.job_id}"]


# Where the sandbox programs are looked for: system folders only, never PATH (a job's environment comes first on the
# PATH Ray gives the launcher, and a renter's wheel may install a script named ``bwrap``).
TRUSTED_BIN_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin", "/usr/local/sbin")


def which(name: str) -> str:
    """The program's path in a system folder, or raise SandboxError saying how to install it."""
    for d in TRUSTED_BIN_DIRS:
        path = os.path.join(d, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    pkg = {"bwrap": "bubblewrap", "nsenter": "util-linux", "ip": "iproute2"}.get(name, name)
    raise SandboxError(f"{name} is not installed in {', '.join(TRUSTED_BIN_DIRS[:2])}: install {pkg} (Debian: "
                       f"apt-get install {pkg}; `make install` does), or choose another provider.sandbox")


def check_backend(kind: str, network: str) -> None:
    """Raise SandboxError unless this machine can run jobs in ``kind`` with ``network``: the programs exist, and
    a trivial command runs in the sandbox (see :func:`provider.jail.self_test`)."""
    if kind not in SANDBOXES:
        raise SandboxError(f"unknown provider.sandbox {kind!r} (one of {', '.join(SANDBOXES)})")
    if network not in NETWORKS:
        raise SandboxError(f"unknown provider.job_network {network!r} (one of {', '.join(NETWORKS)})")
    if kind == "none":
        return
    if kind == "bubblewrap":
        which("bwrap")
        if network == "outbound":
            which("slirp4netns")
            which("nsenter")
            which("ip")
    if kind == "gvisor":
        which("runsc")
        if os.geteuid() != 0:
            raise SandboxError("provider.sandbox = \"gvisor\" needs the agent to run as root (runsc run)")
        if network != "none":
            raise SandboxError("provider.sandbox = \"gvisor\" supports provider.job_network = \"none\" only here; "
                               "use \"bubblewrap\" for outbound network")


THP_DIR = Path("/sys/kernel/mm/transparent_hugepage")


def host_thp(root: Path = THP_DIR) -> dict[str, str | None]:
    """The host's transparent huge page modes: ``enabled`` (anonymous memory) and ``shmem_enabled`` (shared
    memory and memfds); the bracketed choice of each file, None where the kernel has no such file."""
    out: dict[str, str | None] = {}
    for name in ("enabled", "shmem_enabled"):
        try:
            text = (root / name).read_text()
        except OSError:
            out[name] = None
            continue
        chosen = re.search(r"\[([a-z_]+)\]", text)
        out[name] = chosen.group(1) if chosen else None
    return out


def gvisor_memory_advice(thp: dict[str, str | None]) -> str:
    """What to tell an operator whose host keeps gVisor's jobs on small pages ("" when nothing).

    gVisor backs all of a job's memory with one memfd, which is shared memory to the host kernel: with
    ``shmem_enabled`` at ``never`` (the kernel's default) or ``deny`` a job gets 4 KiB pages only, where the same
    job outside a sandbox gets 2 MiB ones (NumPy asks for them), and TLB-bound work such as matrix multiplies runs
    a few per cent slower (bench/sandbox.py measured 0.974x with ``never``; see docs/sandbox.md)."""
    mode = thp.get("shmem_enabled")
    if mode in ("never", "deny"):
        return (f"this host's shared-memory huge pages are off (transparent_hugepage/shmem_enabled = {mode}): "
                "gVisor jobs run on 4 KiB pages, a few per cent slower on memory-heavy compute; set it to "
                "within_size (echo within_size > /sys/kernel/mm/transparent_hugepage/shmem_enabled)")
    return ""


def run_quiet(argv: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; SandboxError when it cannot start or outlives ``timeout_s``."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"{argv[0]} failed: {exc}") from None


__all__ = [
    "JOB_OUTPUTS",
    "JOB_WORK",
    "NETWORKS",
    "SANDBOXES",
    "Limits",
    "SandboxError",
    "SandboxSpec",
    "bubblewrap_argv",
    "check_backend",
    "gpu_device_nodes",
    "gvisor_argv",
    "gvisor_memory_advice",
    "host_thp",
    "job_env",
    "oci_config",
    "which",
]
