"""Keeps a provider's local Ray head from outliving its agent.

``python -m provider.headguard FD [--rmtree DIR] -- CMD...`` runs ``CMD`` (``ray start --head --block``) and
stops it when either of these happens first:

- the agent that started the guard goes away in any way, SIGKILL included: the guard holds the read end of a
  pipe whose only write end is the agent's, and EOF on it means the agent is gone;
- the guard gets SIGTERM or SIGINT (the agent's own, orderly stop).

To stop ``CMD`` the guard sends it SIGTERM (``ray start --block`` then stops every process of the head), waits
up to :data:`GRACE_S`, then kills its whole process group (the guard leads it: the agent starts it in a
session of its own). With ``--rmtree`` the guard deletes ``DIR`` (the head's temp directory: its session, logs
and renters' unpacked working directories) once ``CMD`` has stopped because its agent went away.

Guarantees: the guard exits with ``CMD``'s status when ``CMD`` ends by itself; it never leaves ``CMD`` running
once its agent is gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from types import FrameType

GRACE_S = 30.0


def _usage() -> int:
    print("usage: python -m provider.headguard FD [--rmtree DIR] -- CMD...", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    """Run the guard (see the module docstring); returns the exit status."""
    if "--" not in argv:
        return _usage()
    cut = argv.index("--")
    opts, cmd = argv[:cut], argv[cut + 1:]
    if not cmd or not opts or not opts[0].isdigit():
        return _usage()
    fd = int(opts[0])
    rmtree = opts[2] if len(opts) == 3 and opts[1] == "--rmtree" else None
    if len(opts) not in (1, 3) or (len(opts) == 3 and rmtree is None):
        return _usage()

    proc = subprocess.Popen(cmd)
    orphaned = threading.Event()
    stopping = threading.Lock()

    def stop() -> None:
        """SIGTERM to CMD; its whole group (this guard included) killed if it has not ended in GRACE_S."""
        if not stopping.acquire(blocking=False):
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            if rmtree is not None and orphaned.is_set():
                shutil.rmtree(rmtree, ignore_errors=True)
            os.killpg(os.getpgrp(), signal.SIGKILL)

    def watch_agent() -> None:
        try:
            while os.read(fd, 4096):
                pass
        except OSError:
            pass
        orphaned.set()
        stop()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=watch_agent, daemon=True, name="agent-watch").start()
    status = proc.wait()
    if orphaned.is_set():
        # No agent to clean up after the head: its stragglers go, then its temp directory.
        _kill_group_but_me()
        if rmtree is not None:
            shutil.rmtree(rmtree, ignore_errors=True)
    return status


def _kill_group_but_me() -> None:
    """SIGKILL every other process of this process group (Linux: read from /proc)."""
    me, group = os.getpid(), os.getpgrp()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            if int(fields[2]) == group:  # after the command name: state, ppid, pgrp
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            continue


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
