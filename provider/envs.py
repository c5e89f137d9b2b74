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
packing adds (``BLENDR_OUTPUT_DIR``). Its working directory is the renter's ``--workdir``. A Ray task the job
starts runs in the cluster's workers (the base environment), not in the job's own one.

Guarantees:
  * A job's environment is its own: built for that job alone in its job directory and deleted with it, never
    shared with another job. A job runs as the agent's OS user and could rewrite any environment it runs in,
    and the provider cannot tell one renter from another (the payload's key is the renter's own claim), so
    a shared one would let one renter's job plant code in another renter's run. For the same reason pip runs
    without its cache (``--no-cache-dir``) and without user or site configuration files
    (``PIP_CONFIG_FILE=/dev/null``; the agent's ``PIP_*`` environment variables still apply).
  * At most ``max_envs`` environments are built at once (the others wait their turn); an environment larger
    than ``max_bytes`` is deleted and fails the job with :class:`EnvInstallError`.
  * An install runs at most ``install_timeout_s``; a failed or timed-out install raises
    :class:`EnvInstallError` with pip's output tail (the job's fault, not the provider's). A half-built
    environment is never used: an env counts only once its completion marker is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import site
import sys
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
    private: bool = False


class EnvCache:
    """Builds job environments (see the module's guarantees)."""

    def __init__(self, root: Path, *, base_python: str | None = None, install_timeout_s: float = 600.0,
                 max_envs: int = 8, max_bytes: int = 10 * 2**30) -> None:
        """``root`` is where an earlier agent kept environments shared between jobs: any left there is deleted
        (a job may have rewritten it).

        Raises:
            ComputeError: a non-positive timeout or bound.
        """
        if install_timeout_s <= 0 or max_envs < 1 or max_bytes <= 0:
            raise ComputeError("install_timeout_s, max_envs and max_bytes must be > 0")
        self.root = root
        # Not resolved: a virtualenv's python is a link, and resolving it would leave that virtualenv.
        self.base_python = base_python or sys.executable
        self.base_bin = Path(self.base_python).parent
        self.install_timeout_s = install_timeout_s
        self.max_envs = max_envs
        self.max_bytes = max_bytes
        self._builds = asyncio.Semaphore(max_envs)
        self._base_site: list[str] | None = None
        if root.is_dir():
            shutil.rmtree(root, ignore_errors=True)
            log.info("deleted job environments shared by an earlier agent", root=str(root))

    # ------------------------------------------------------------------ public
    def base(self) -> JobEnv:
        """The provider's base environment (no dependencies declared)."""
        return JobEnv(self.base_bin)

    async def acquire(self, workdir: Path, pip: Sequence[str], private_dir: Path) -> JobEnv:
        """The environment for a job whose files are in ``workdir`` and whose payload declares ``pip``.

        The base one when nothing is declared; else one built for this job alone in ``private_dir / "venv"``
        (deleted with that directory). Pair it with :meth:`release`.

        Raises:
            EnvInstallError: pip failed, ran past ``install_timeout_s``, or the environment is larger than
                ``max_bytes`` (the job's fault).
            ComputeError: the provider cannot create the environment (disk, permissions, no venv module).
        """
        req_file = workdir / REQUIREMENTS_FILE
        try:
            has_req = req_file.is_file()
        except OSError as exc:
            raise ComputeError(f"cannot read the job's {REQUIREMENTS_FILE}: {exc}") from None
        if not has_req and not pip:
            return self.base()
        args = (["-r", REQUIREMENTS_FILE] if has_req else []) + list(pip)
        target = private_dir / "venv"
        async with self._builds:
            await asyncio.to_thread(shutil.rmtree, target, True)  # an earlier try that never finished
            await self._build(target, args, cwd=workdir)
        return JobEnv(target / "bin", private=True)

    def adopt(self, venv: str) -> JobEnv | None:
        """The environment (its directory, from a running job's ``VIRTUAL_ENV``) of a job this process did not
        start (a re-attached one); None when ``venv`` is not a complete environment. Pair it with
        :meth:`release`."""
        if not venv:
            return None
        path = Path(venv)
        if not (path / MARKER).is_file():
            return None
        return JobEnv(path / "bin", private=True)

    def release(self, env: JobEnv) -> None:
        """The job using ``env`` ended. Nothing to free here: a job's own environment is deleted with its job
        directory, and the base one is never deleted."""

    # ------------------------------------------------------------------ building
    def _site_packages(self) -> list[str]:
        if self._base_site is None:
            import subprocess

            out = subprocess.run([self.base_python, "-c", "import site, json; print(json.dumps(site.getsitepackages()))"],
                                 capture_output=True, text=True, timeout=60, check=False)
            self._base_site = json.loads(out.stdout) if out.returncode == 0 else site.getsitepackages()
        return self._base_site

    async def _build(self, target: Path, args: list[str], *, cwd: Path) -> None:
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
               "--no-cache-dir", *args]
        remaining = max(1.0, self.install_timeout_s - (time.monotonic() - started))
        code, out = await self._exec(cmd, cwd, timeout_s=remaining)
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
        log.info("job environment built", path=str(target), seconds=round(time.monotonic() - started, 1),
                 bytes=size)

    @staticmethod
    async def _exec(cmd: list[str], cwd: Path, *, timeout_s: float) -> tuple[int | None, list[str]]:
        """Run ``cmd``; its exit code (None when killed at ``timeout_s``) and its output lines."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["PIP_NO_INPUT"] = "1"
        # No config file a job could have written (~/.config/pip/pip.conf) steers another job's install.
        env["PIP_CONFIG_FILE"] = os.devnull
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


def _tree_size(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total
