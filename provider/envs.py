"""Renters' job environments: the provider's base environment, and per-job virtualenvs for declared dependencies.

The base environment is the provider agent's own interpreter (``sys.executable``): its ``bin`` directory comes
first on the job's ``PATH``, so the job's ``python`` has the agent's Python version, Ray and NumPy (CuPy on a
GPU provider where it is installed). A job that declares dependencies — a ``requirements.txt`` at the top of
its working directory and/or ``--pip`` requirements in its payload — gets a virtualenv layered on the base one
(``python -m venv``, plus a ``.pth`` file that puts the base environment's site-packages after the job's own,
so ``--system-site-packages`` semantics hold even when the agent itself runs in a virtualenv); its ``bin``
comes first on ``PATH`` instead.

What a job sees: ``python`` (and ``pip``) of that environment first on ``PATH`` (the agent's own interpreter:
Python >= 3.11, Ray >= 2.50 with its job API, NumPy 2; CuPy on GPU providers that installed the ``gpu`` extra,
``cupy-cuda12x``);
``VIRTUAL_ENV`` when it has its own environment; ``BLENDR_JOB_ID`` (the king's job id);
``CUDA_VISIBLE_DEVICES`` (set by Ray to the GPUs granted; empty for a job granted none); the renter's
``--env`` variables (which may override ``PATH``, never the device variables); and whatever the output
packing adds (``BLENDR_OUTPUT_DIR``). Its working directory is the renter's ``--workdir``, inside the job's
sandbox (:mod:`provider.sandbox`); a Ray the job starts runs there too, in the job's own environment.

Guarantees:
  * Environments are cached under ``<home>/envs/<key>`` by the hash of the requirement set (with the base
    interpreter), at most ``max_envs`` of them and ``max_bytes`` in all, least recently used evicted first
    (never one a running job uses). Concurrent jobs with the same set share one build.
  * A requirement set that may name files of the job's working directory (``./mypkg``, ``-r other.txt``,
    ``--find-links ./wheels``, ``-e .``, a bare ``pkg-1.0-py3-none-any.whl``, anything with ``file:``, and
    every pip option but a few harmless ones, such as ``--extra-index-url``) is built for that job alone under
    its job directory, never cached: it would hold the renter's code after the job, under a key that does
    not say what the files held.
  * pip runs without its own cache and without config files (a job could have written one for the next).
  * One environment larger than ``max_bytes`` fails its job (the job's fault) and is deleted.
  * pip installs wheels only (``--only-binary=:all:``; editable and local folders, source archives and
    ``--no-binary`` are refused with the job's failure): installing runs no code of the renter's outside the
    sandbox. Jobs see their environment (and the base one) read-only, so a cached one cannot be rewritten.
  * An install runs at most ``install_timeout_s``; a failed or timed-out install raises
    :class:`EnvInstallError` with pip's output tail (the job's fault, not the provider's). A half-built
    environment is never used: an env counts only once its completion marker is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shlex
import shutil
import site
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from blendr.errors import BlendrError, ComputeError
from blendr.telemetry import get_logger

log = get_logger("blendr.provider.envs")

REQUIREMENTS_FILE = "requirements.txt"
MARKER = ".blendr-env.json"
# Lines of pip's output kept for the job's log when an install fails.
ERROR_TAIL_LINES = 40
# pip options (in requirements.txt) that name no file and no index: a set with only these may be cached.
_HARMLESS_OPTIONS = ("--pre", "--prefer-binary", "--only-binary", "--no-binary", "--no-deps", "--require-hashes",
                     "--hash")
_ARCHIVES = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip", ".tar")


class EnvInstallError(BlendrError):
    """Raised when a job's declared dependencies cannot be installed (pip failed or ran out of time); ``tail``
    holds the last lines of pip's output."""

    def __init__(self, message: str, tail: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.tail = list(tail)


@dataclass(frozen=True)
class JobEnv:
    """A job's Python environment: ``bin_dir`` goes first on its ``PATH``; ``private`` ones live under the
    job's own directory and go with it."""

    bin_dir: Path
    key: str = ""
    private: bool = False


def _needs_private_env(line: str) -> bool:
    """Whether one requirement (a requirements.txt line or a --pip entry) may name a file of the working dir (or
    anything whose content its text does not pin down as well as a package name and version do)."""
    text = line.split(" #", 1)[0].strip()
    if not text or text.startswith("#"):
        return False
    if "file:" in text.lower():
        return True  # a local file, wherever it is: its content is not in the requirement's text
    if text.startswith("-"):
        name = text.split("=", 1)[0].split(None, 1)[0]
        return name not in _HARMLESS_OPTIONS  # -r, -c, -e, -f, -i, --extra-index-url ./idx, ...: private
    spec = text.split(";", 1)[0].split(" --", 1)[0].strip()
    if "://" in spec:
        return False  # a URL requirement (pkg @ https://...): the same for every job
    if spec.lower().endswith(_ARCHIVES):
        return True  # pkg-1.0-py3-none-any.whl: pip reads it from the working directory
    return spec.startswith((".", "/", "~")) or "/" in spec.split("@", 1)[0] or "\\" in spec


_SDISTS = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip", ".tar")


def _builds_from_source(line: str) -> bool:
    """Whether pip would build this requirement from source (run its setup code, outside the job's sandbox):
    an editable or local folder, a source archive, or a ``--no-binary`` option. Only wheels are installed."""
    text = line.split(" #", 1)[0].strip()
    if not text or text.startswith("#"):
        return False
    low = text.lower()
    if "--no-binary" in low or low.startswith(("-e ", "-e=", "--editable")):
        return True
    if low.startswith("-"):
        return False
    spec = low.split(";", 1)[0].split(" --", 1)[0].strip()
    target = spec.split("@", 1)[1].strip() if "@" in spec and "://" in spec else spec
    if target.endswith(_SDISTS):
        return True
    return spec.startswith((".", "/", "~")) and not spec.endswith(".whl")


def _source_builds(workdir: Path, lines: Sequence[str], depth: int = 0) -> list[str]:
    """The requirement lines (following ``-r``/``-c`` files of the working directory) pip would build from source."""
    bad = [ln.strip() for ln in lines if _builds_from_source(ln)]
    if depth >= 4:
        return bad
    for ln in lines:
        parts = ln.split(" #", 1)[0].replace("=", " ", 1).split()
        if len(parts) >= 2 and parts[0] in ("-r", "-c", "--requirement", "--constraint"):
            nested = (workdir / parts[1]).resolve()
            if nested.is_relative_to(workdir.resolve()) and nested.is_file():
                with contextlib.suppress(OSError):
                    bad += _source_builds(workdir, nested.read_text(errors="replace").splitlines(), depth + 1)
    return bad


class EnvCache:
    """Builds and caches job environments (see the module's guarantees)."""

    def __init__(self, root: Path, *, base_python: str | None = None, install_timeout_s: float = 600.0,
                 max_envs: int = 8, max_bytes: int = 10 * 2**30, sandbox: str = "none",
                 job_uid: int = 65534) -> None:
        """
        Raises:
            ComputeError: a non-positive timeout or bound.
        """
        if install_timeout_s <= 0 or max_envs < 1 or max_bytes <= 0:
            raise ComputeError("install_timeout_s, max_envs and max_bytes must be > 0")
        # pip runs in a sandbox (bubblewrap, with outbound network, as the jobs' user) unless jobs run unsandboxed:
        # whatever a requirement makes pip read or run stays in there.
        self.sandbox = sandbox
        self.job_uid = job_uid
        self.root = root
        # Not resolved: a virtualenv's python is a link, and resolving it would leave that virtualenv.
        self.base_python = base_python or sys.executable
        self.base_bin = Path(self.base_python).parent
        self.install_timeout_s = install_timeout_s
        self.max_envs = max_envs
        self.max_bytes = max_bytes
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # per key while jobs want it: (lock, how many)
        self._in_use: dict[str, int] = {}
        # _in_use and the markers are checked and changed under it: eviction runs in a thread
        self._evict_lock = threading.Lock()
        self._base_site: list[str] | None = None

    # ------------------------------------------------------------------ public
    def base(self) -> JobEnv:
        """The provider's base environment (no dependencies declared)."""
        return JobEnv(self.base_bin)

    async def acquire(self, workdir: Path, pip: Sequence[str], private_dir: Path) -> JobEnv:
        """The environment for a job whose files are in ``workdir`` and whose payload declares ``pip``.

        The base one when nothing is declared; else a cached (or freshly built) one, or for a set that names
        the working directory's files a private one built in ``private_dir``. Pair it with :meth:`release`.

        Raises:
            EnvInstallError: pip failed or ran past ``install_timeout_s`` (the job's fault).
            ComputeError: the provider cannot create the environment (disk, permissions, no venv module).
        """
        req_file = workdir / REQUIREMENTS_FILE
        try:
            req_text = req_file.read_bytes() if req_file.is_file() else None
        except OSError as exc:
            raise ComputeError(f"cannot read the job's {REQUIREMENTS_FILE}: {exc}") from None
        if req_text is None and not pip:
            return self.base()
        lines = (req_text or b"").decode("utf-8", "replace").splitlines()
        args = (["-r", REQUIREMENTS_FILE] if req_text is not None else []) + list(pip)
        if bad := _source_builds(workdir, [*lines, *pip]):
            raise EnvInstallError("a job's dependencies are installed from wheels only (building from source would run "
                                  "its setup code outside the job's sandbox); refused: " + "; ".join(bad)[:500],
                                  bad[:ERROR_TAIL_LINES])
        if any(_needs_private_env(x) for x in [*lines, *pip]):
            target = private_dir / "venv"
            await self._build(target, args, cwd=workdir, key="")
            return JobEnv(target / "bin", private=True)
        digest = hashlib.sha256(json.dumps([self.base_python, sys.version, (req_text or b"").hex(), list(pip)])
                                .encode()).hexdigest()[:32]
        lock, users = self._locks.get(digest, (asyncio.Lock(), 0))
        self._locks[digest] = (lock, users + 1)
        target = self.root / digest
        try:
            async with lock:
                with self._evict_lock:  # counted in use before its marker is trusted: eviction skips it now
                    self._in_use[digest] = self._in_use.get(digest, 0) + 1
                    complete = (target / MARKER).is_file()
                try:
                    if not complete:
                        await asyncio.to_thread(shutil.rmtree, target, True)  # a build that never finished
                        await self._build(target, args, cwd=workdir, key=digest)
                except BaseException:
                    self.release(JobEnv(target / "bin", key=digest))
                    raise
                with contextlib.suppress(OSError):
                    os.utime(target / MARKER)  # most recently used
        finally:
            lock, users = self._locks[digest]
            if users <= 1:
                del self._locks[digest]
            else:
                self._locks[digest] = (lock, users - 1)
        await asyncio.to_thread(self._evict)
        return JobEnv(target / "bin", key=digest)

    def adopt(self, venv: str) -> JobEnv | None:
        """Count a cached environment (its directory, from a running job's ``VIRTUAL_ENV``) as in use by a job this
        process did not start (a re-attached one); None when ``venv`` is not a complete environment of this cache.
        Pair it with :meth:`release`."""
        if not venv:
            return None
        path = Path(venv)
        if path.parent != self.root or not (path / MARKER).is_file():
            return None
        with self._evict_lock:
            self._in_use[path.name] = self._in_use.get(path.name, 0) + 1
        return JobEnv(path / "bin", key=path.name)

    def release(self, env: JobEnv) -> None:
        """The job using ``env`` ended (a private env is deleted with the job's directory)."""
        with self._evict_lock:
            if env.key and self._in_use.get(env.key, 0) > 0:
                self._in_use[env.key] -= 1
                if not self._in_use[env.key]:
                    del self._in_use[env.key]

    def cached(self) -> list[str]:
        """Keys of the complete cached environments, least recently used first."""
        return [p.name for p in self._complete()]

    # ------------------------------------------------------------------ building
    def _site_packages(self) -> list[str]:
        if self._base_site is None:
            import subprocess

            out = subprocess.run([self.base_python, "-c", "import site, json; print(json.dumps(site.getsitepackages()))"],
                                 capture_output=True, text=True, timeout=60, check=False)
            self._base_site = json.loads(out.stdout) if out.returncode == 0 else site.getsitepackages()
        return self._base_site

    async def _build(self, target: Path, args: list[str], *, cwd: Path, key: str) -> None:
        started = time.monotonic()
        try:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            base_site = await asyncio.to_thread(self._site_packages)
        except OSError as exc:
            raise ComputeError(f"cannot create a job environment under {target.parent}: {exc}") from None
        code, out = await self._exec([self.base_python, "-m", "venv", "--without-pip", str(target)], cwd,
                                     timeout_s=120.0)
        if code != 0:
            await asyncio.to_thread(shutil.rmtree, target, True)
            raise ComputeError(f"cannot create a virtualenv: {' | '.join(out[-5:])}")
        py = target / "bin" / "python"
        # The job's own packages first, the base environment's after them (pip installs into the former).
        code, out = await self._exec([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     cwd, timeout_s=60.0)
        if code != 0 or not out:
            await asyncio.to_thread(shutil.rmtree, target, True)
            raise ComputeError(f"the new virtualenv does not run: {' | '.join(out[-5:])}")
        Path(out[-1]).joinpath("_blendr_base_env.pth").write_text("".join(p + "\n" for p in base_site))
        # pip itself comes from the base environment (the venv has none): `python -m pip` finds it there.
        cmd = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
               "--no-cache-dir", "--only-binary=:all:", *args]
        remaining = max(1.0, self.install_timeout_s - (time.monotonic() - started))
        code, out = await self._pip(cmd, cwd, target, timeout_s=remaining)
        if code != 0:
            await asyncio.to_thread(shutil.rmtree, target, True)
            what = (f"ran past its {self.install_timeout_s:g} s limit" if code is None
                    else f"failed (pip exited with {code})")
            raise EnvInstallError(f"installing the job's dependencies {what}", out[-ERROR_TAIL_LINES:])
        size = await asyncio.to_thread(_tree_size, target)
        if size > self.max_bytes:
            await asyncio.to_thread(shutil.rmtree, target, True)
            raise EnvInstallError(f"the job's dependencies take {size} bytes installed, more than this provider's "
                                  f"limit of {self.max_bytes} bytes")
        (target / MARKER).write_text(json.dumps({"args": args, "bytes": size, "built_s": time.monotonic() - started}))
        log.info("job environment built", key=key or "private", seconds=round(time.monotonic() - started, 1),
                 bytes=size)

    async def _pip(self, cmd: list[str], cwd: Path, target: Path, *, timeout_s: float) -> tuple[int | None, list[str]]:
        """Run pip for a job's environment in a sandbox like a job's (as the jobs' user, outbound network), which
        sees the job's files and writes only ``target``: nothing a requirement makes pip read or run reaches the
        provider. Unsandboxed only when the provider runs its jobs so."""
        if self.sandbox == "none":
            return await self._exec(cmd, cwd, timeout_s=timeout_s)
        from provider.jail import reap
        from provider.sandbox import Limits, SandboxSpec

        scratch = Path(tempfile.mkdtemp(prefix=".pip-", dir=target.parent))
        try:
            (scratch / "out").mkdir()
            env = {"PATH": f"{target / 'bin'}:{self.base_bin}:/usr/bin:/bin", "PIP_NO_INPUT": "1",
                   "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
            spec = SandboxSpec(job_id=f"pip-{scratch.name[5:]}", kind="bubblewrap", command=shlex.join(cmd),
                               workdir=str(cwd), outdir=str(scratch / "out"), state_dir=str(scratch / "state"),
                               env=env, ro_paths=list(dict.fromkeys([sys.base_prefix, sys.prefix,
                                                                     str(self.base_bin.parent)])),
                               rw_paths=[str(target)], network="outbound", limits=Limits(pids=1024),
                               job_uid=self.job_uid)
            (scratch / "spec.json").write_text(spec.to_json())
            try:
                return await self._exec([sys.executable, "-m", "provider.jail", "run", str(scratch / "spec.json")],
                                        cwd, timeout_s=timeout_s)
            finally:
                await asyncio.to_thread(reap, spec)
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)

    @staticmethod
    async def _exec(cmd: list[str], cwd: Path, *, timeout_s: float) -> tuple[int | None, list[str]]:
        """Run ``cmd``; its exit code (None when killed at ``timeout_s``) and its output lines."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["PIP_NO_INPUT"] = "1"
        env["PIP_CONFIG_FILE"] = os.devnull  # no pip.conf a job may have written for the next one
        try:
            proc = await asyncio.create_subprocess_exec(*cmd, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise ComputeError(f"cannot run {cmd[0]}: {exc}") from None
        try:
            data, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            data = b""
            with contextlib.suppress(TimeoutError):
                data, _ = await asyncio.wait_for(proc.communicate(), 10)
            return None, data.decode("utf-8", "replace").splitlines()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            raise
        return proc.returncode, data.decode("utf-8", "replace").splitlines()

    # ------------------------------------------------------------------ the cache's bounds
    def _complete(self) -> list[Path]:
        try:
            envs = [p for p in self.root.iterdir() if not p.name.startswith(".") and (p / MARKER).is_file()]
        except FileNotFoundError:
            return []
        return sorted(envs, key=lambda p: (p / MARKER).stat().st_mtime)

    def _evict(self) -> None:
        envs = self._complete()
        sizes = {}
        for p in envs:
            try:
                sizes[p] = int(json.loads((p / MARKER).read_text()).get("bytes", 0))
            except (OSError, ValueError):
                sizes[p] = 0
        total = sum(sizes.values())
        for p in envs:  # least recently used first
            if len(envs) <= self.max_envs and total <= self.max_bytes:
                break
            trash = p.with_name(f".evicted-{p.name}-{os.getpid()}-{time.monotonic_ns()}")
            with self._evict_lock:  # not in use, and no job can start using it once it has moved away
                if self._in_use.get(p.name):
                    continue
                try:
                    p.rename(trash)
                except OSError:
                    continue
            shutil.rmtree(trash, ignore_errors=True)
            envs = [e for e in envs if e != p]
            total -= sizes[p]
            log.info("job environment evicted", key=p.name)


def _tree_size(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total
