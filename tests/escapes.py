"""A hostile renter job: it tries every escape from its sandbox that was found to work before jobs ran sandboxed,
does its legitimate work too, and prints one line ``ESCAPES <json>``: each attempt, and whether it was blocked.

Used by the sandbox tests (tests/integration/test_sandbox.py) and by bench/sandbox.py (the escape table). What
the attacker knows comes in ``ESCAPE_TARGETS`` (JSON): paths of the provider's key, TLS key, store and home, of
another job's working directory and log, host ports (the provider's Ray GCS and dashboard, a queen, a chain),
and the Ray auth token's path (and, optionally, ``ray_timeout_s``: how long the attempt to run a task on the
provider's Ray may wait, 20 s by default). The job runs this file as its entrypoint (``python main.py``).
"""

from __future__ import annotations

ESCAPE_JOB = r'''
import glob, json, os, socket, subprocess, sys

t = json.loads(os.environ["ESCAPE_TARGETS"])
res = {}

def blocked(name, fn):
    try:
        out = fn()
        res[name] = {"blocked": not out, "detail": str(out)[:200]}
    except Exception as exc:  # the attempt failed: blocked
        res[name] = {"blocked": True, "detail": type(exc).__name__ + ": " + str(exc)[:160]}

def read(path):
    with open(path, "rb") as f:
        return f.read(64)

def connect(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(("127.0.0.1", int(port)))
        return "connected"
    finally:
        s.close()

def host_processes():
    seen = []
    for p in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            cmd = open(p, "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(w in cmd for w in ("gcs_server", "raylet", "pytest", "blendr", "dashboard")):
            seen.append(cmd[:80])
    return seen

def paths_from_cmdlines():
    found = []
    for p in glob.glob("/proc/*/cmdline"):
        try:
            cmd = open(p, "rb").read().decode(errors="replace")
        except OSError:
            continue
        if t["home"] in cmd:
            found.append(cmd[:80])
    return found

blocked("read provider node.key", lambda: read(t["node_key"]))
blocked("read provider TLS key", lambda: read(t["tls_key"]))
blocked("read provider store", lambda: read(t["store"]))
blocked("find provider paths in /proc/*/cmdline", paths_from_cmdlines)
blocked("list host processes", host_processes)
blocked("read another job's files", lambda: os.listdir(t["other_job"]))
blocked("write another job's files", lambda: open(os.path.join(t["other_job"], "planted"), "w").write("x"))
blocked("read Ray's auth token", lambda: read(t["ray_token"]))
blocked("reach Ray GCS", lambda: connect(t["gcs_port"]))
blocked("reach Ray dashboard (job API)", lambda: connect(t["dashboard_port"]))
for name, port in sorted(t.get("loopback", {}).items()):
    blocked("reach host loopback: " + name, lambda port=port: connect(port))
blocked("write into provider home", lambda: open(os.path.join(t["home"], "planted"), "w").write("x"))
blocked("write outside the job (/usr)", lambda: open("/usr/planted", "w").write("x"))
def gpu_nodes():
    return [d for d in os.listdir("/dev") if d.startswith("nvidia") and d[6:].isdigit()
            and d[6:] not in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
blocked("see GPU device nodes not rented", gpu_nodes)
def in_gvisor():
    try:
        return "gVisor" in subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
def new_user_namespace():
    if in_gvisor():
        return ""  # gVisor's user namespaces are its own user-space kernel's: none of the host kernel's code
    done = subprocess.run(["unshare", "-Ur", "id", "-u"], capture_output=True, text=True, timeout=20)
    return "became uid 0 in a user namespace of its own" if done.returncode == 0 else ""
blocked("create a user namespace (a root of its own)", new_user_namespace)
def ray_on_provider():
    code = ("import ray; ray.init(address='127.0.0.1:%d', log_to_driver=False); "
            "print(ray.get(ray.remote(lambda: 'ran').remote()))" % int(t["gcs_port"]))
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=float(t.get("ray_timeout_s", 20)))
    except subprocess.TimeoutExpired:
        return ""  # still waiting for a GCS it cannot reach
    return "ran a task on the provider's Ray" if "ran" in done.stdout.split() else ""
blocked("run Ray tasks on the provider's cluster", ray_on_provider)
# A process meant to outlive the job (the old way to keep using the provider unbilled).
subprocess.Popen(["/bin/sh", "-c", "exec sleep " + str(t["linger_s"])], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
res["leave a process running after the job"] = {"blocked": None, "detail": "checked by the host after the job"}

# The legitimate work: compute, write an output, use the job's own Ray.
import numpy
total = float(numpy.arange(1000).sum())
with open(os.path.join(os.environ["BLENDR_OUTPUT_DIR"], "result.txt"), "w") as f:
    f.write(str(total))
open("work-file.txt", "w").write("in my own folder")
if t.get("use_ray"):
    import ray
    ray.shutdown()
    ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    @ray.remote
    def sq(x):
        return x * x
    res["own Ray"] = {"blocked": None, "detail": str(sum(ray.get([sq.remote(i) for i in range(8)])))}
    ray.shutdown()
print("LEGIT", total, flush=True)
print("ESCAPES " + json.dumps(res), flush=True)
'''
