"""A Ray head with its dashboard (for Ray's job submission API), started with the ``ray`` CLI.

A process holds only one ``ray.init``, and the session-wide ``ray_cluster`` fixture runs Ray inside the test
process without a dashboard. So renters' jobs run on a separate head, started with ``ray start --head
--block`` in a new session, with every port chosen free (the dashboard agent's default port 52365 would
collide with any other Ray on the machine), token authentication on and a random token passed by
environment, so neither ~/.ray/auth_token nor other Rays are touched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from blendr.ports import free_ports

PIN = "blendr-jobs-test-pin"


@dataclass(frozen=True)
class RayHead:
    address: str
    token: str
    logs: Path
    gcs: str = ""  # HOST:PORT of its GCS, for `ray start --address` and ray.init


def _wait_for_dashboard(proc: subprocess.Popen[bytes], address: str, token: str, out: Path) -> None:
    import json
    import urllib.request

    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + 90
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        if proc.poll() is not None:
            pytest.fail(f"ray start exited with {proc.returncode}:\n{out.read_text()[-4000:]}")
        try:
            JobSubmissionClient(address, headers=headers)
            # and the head's node alive in its GCS: the raylet, which starts last, registered
            req = urllib.request.Request(address + "/api/v0/nodes?limit=10", headers=headers)
            with urllib.request.urlopen(req, timeout=5) as resp:
                if any(n.get("state") == "ALIVE" for n in json.loads(resp.read())["data"]["result"]["result"]):
                    return
        except Exception:  # not up yet: connection refused, 5xx while modules load
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the Ray head at {address} did not come up:\n{out.read_text()[-4000:]}")
        time.sleep(0.3)


@contextlib.contextmanager
def ray_head(num_gpus: int = 2, num_cpus: int = 2) -> Iterator[RayHead]:
    """A Ray head with its dashboard, ``num_gpus`` logical GPUs and a pin resource, in its own process group."""
    tmp = Path(tempfile.mkdtemp(prefix="blendr-ray-", dir="/tmp"))  # short: Ray's socket paths live here
    token = secrets.token_hex(16)
    ports = free_ports(9)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_USAGE_STATS_ENABLED="0")
    ray_cli = Path(sys.executable).with_name("ray")
    cmd = [str(ray_cli), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
           f"--port={ports[0]}", f"--dashboard-port={ports[1]}", f"--dashboard-agent-listen-port={ports[2]}",
           f"--dashboard-agent-grpc-port={ports[3]}", f"--metrics-export-port={ports[4]}",
           f"--runtime-env-agent-port={ports[5]}", f"--node-manager-port={ports[6]}",
           f"--object-manager-port={ports[7]}", f"--ray-client-server-port={ports[8]}",
           f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}", f'--resources={{"{PIN}": 1000}}', f"--temp-dir={tmp}",
           "--include-dashboard=true", "--disable-usage-stats"]
    out = tmp / "ray-start.out"
    with out.open("wb") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{ports[1]}"
    try:
        _wait_for_dashboard(proc, address, token, out)
        yield RayHead(address, token, tmp, gcs=f"127.0.0.1:{ports[0]}")
    finally:
        # --block makes `ray start` stop its processes on SIGTERM; the group kill catches stragglers.
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


