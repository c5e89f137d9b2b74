"""The container images (deploy/docker/): both Dockerfiles pass hadolint and have the shape the charts rely on,
and deploy/docker/install.sh, the script both run, installs a working BlendrChain into a clean virtual
environment from exactly the build context the images get. No container engine runs here, so this is how
what the images install is tested."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
INSTALL = DOCKER / "install.sh"
DOCKERFILES = {"blendr": DOCKER / "Dockerfile", "blendr-provider": DOCKER / "provider.Dockerfile"}
HADOLINT = Path(sys.executable).parent / "hadolint"
# What each image exposes: King 7480 and its dApp 8443; queen 7470 and its operator API 7471; health 7490; metrics 9090.
PORTS = {"blendr": {7480, 8443, 7470, 7471, 7490, 9090}, "blendr-provider": {7490, 9090}}
# Tools scripts/sandbox-tools.sh checks for that the provider image leaves out, and why.
NOT_IN_PROVIDER_IMAGE = {
    "runsc": "gVisor's sandbox needs a root agent and the image runs as uid 10001; on Kubernetes gVisor is the "
             "node's RuntimeClass",
}
# Parts of a final stage that mean build tools or caches were left in the image.
BUILD_TOOLS = re.compile(r"^(build-essential|gcc(-\d+)?|g\+\+(-\d+)?|clang|make|cmake|[\w.+-]+-dev|python3?[\d.]*-pip)$")


@dataclass
class Stage:
    image: str  # the FROM reference, with the global ARGs' defaults substituted
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def args_of(self, instruction: str) -> list[str]:
        return [a for i, a in self.instructions if i == instruction]


def parse_dockerfile(path: Path) -> list[Stage]:
    """The stages of a Dockerfile: continuation lines joined, comments dropped, ``FROM ${ARG}`` resolved."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path}: the last instruction ends with a line continuation"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "FROM":
            words = rest.split()
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args.get(m[1] or m[2], m[0]), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, name))
        elif not stages:
            assert instruction == "ARG", f"{path}: {instruction} before the first FROM"
            key, _, default = rest.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append((instruction, rest))
    assert stages, f"{path}: no FROM"
    return stages


def builder_stage(stages: list[Stage]) -> Stage:
    """The stage that runs install.sh (named "builder"; the King's image builds the dApp in a stage before it)."""
    found = [s for s in stages if s.name == "builder"]
    assert len(found) == 1, f"expected one stage named builder, got {[s.name for s in stages]}"
    return found[0]


def labels(stage: Stage) -> dict[str, str]:
    out: dict[str, str] = {}
    for args in stage.args_of("LABEL"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            out[key] = value
    return out


def apt_packages(stage: Stage) -> set[str]:
    """The packages a stage's RUN lines give to ``apt-get install``."""
    found: set[str] = set()
    for run in stage.args_of("RUN"):
        for command in re.split(r"&&|;|\|\|", run):
            words = shlex.split(command)
            if "apt-get" in words and "install" in words:
                after = words[words.index("install") + 1:]
                found |= {w.split("=")[0] for w in after if not w.startswith("-")}
    return found


@pytest.fixture(params=sorted(DOCKERFILES), ids=sorted(DOCKERFILES))
def image(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_hadolint_finds_nothing(image: str) -> None:
    assert HADOLINT.is_file(), f"no hadolint at {HADOLINT}: install the dev extra (pip install -e '.[dev]')"
    proc = subprocess.run([str(HADOLINT), "--no-color", str(DOCKERFILES[image])], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, f"hadolint {DOCKERFILES[image].name}:\n{proc.stdout}{proc.stderr}"


def test_base_images_are_pinned_and_take_a_digest(image: str) -> None:
    path = DOCKERFILES[image]
    stages = parse_dockerfile(path)
    names = {s.name for s in stages if s.name}
    assert len(stages) >= 2, f"{path.name} is not multi-stage"
    for stage in stages:
        if stage.image in names:
            continue
        # An exact version tag (not latest, not a bare major), optionally with a digest.
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?", stage.image), \
            f"{path.name}: FROM {stage.image} is not pinned to an exact version tag"
    text = path.read_text()
    assert re.search(r"^FROM \$\{BASE_IMAGE\}", text, re.M) and re.search(r"^ARG BASE_IMAGE=", text, re.M), \
        f"{path.name}: the base should come from ARG BASE_IMAGE, so a build can pin it by digest"


def test_final_stage_runs_blendr_as_a_non_root_user(image: str) -> None:
    path = DOCKERFILES[image]
    final = parse_dockerfile(path)[-1]
    users = final.args_of("USER")
    assert users, f"{path.name}: the final stage sets no USER (it would run as root)"
    # Numeric, so Kubernetes' runAsNonRoot can verify it without a runAsUser.
    assert users[-1] == "10001:10001", f"{path.name}: USER {users[-1]}, expected 10001:10001"
    assert [json.loads(e) for e in final.args_of("ENTRYPOINT")][-1:] == [["blendr"]], \
        f"{path.name}: ENTRYPOINT is not [\"blendr\"]"
    env = " ".join(final.args_of("ENV"))
    assert 'PATH="/opt/blendr/bin:${PATH}"' in env, f"{path.name}: /opt/blendr/bin is not first on PATH"
    assert "BLENDR_HOME=/var/lib/blendr" in env, f"{path.name}: BLENDR_HOME is not /var/lib/blendr"
    assert any("install -d -o blendr -g blendr" in r and "/var/lib/blendr" in r for r in final.args_of("RUN")), \
        f"{path.name}: /var/lib/blendr is not made and owned by the blendr user"
    exposed = {int(p.split("/")[0]) for e in final.args_of("EXPOSE") for p in e.split()}
    assert exposed == PORTS[image], f"{path.name}: EXPOSE {sorted(exposed)}, expected {sorted(PORTS[image])}"


def test_final_stage_holds_no_build_tools_or_caches(image: str) -> None:
    path = DOCKERFILES[image]
    stages = parse_dockerfile(path)
    final = stages[-1]
    tools = sorted(p for p in apt_packages(final) if BUILD_TOOLS.match(p))
    assert not tools, f"{path.name}: the final stage installs build tools {tools}"
    for run in final.args_of("RUN"):
        assert "pip install" not in run and "install.sh" not in run, \
            f"{path.name}: the final stage installs Python packages itself (RUN {run})"
        if "apt-get install" in run:
            assert "--no-install-recommends" in run and "rm -rf /var/lib/apt/lists/*" in run, \
                f"{path.name}: an apt-get install that keeps recommends or the apt lists (RUN {run})"
    copies = final.args_of("COPY")
    assert copies == [f"--from={builder_stage(stages).name} /opt/blendr /opt/blendr"], \
        f"{path.name}: the final stage should copy only the virtual environment, not {copies}"


def test_image_installs_with_install_sh(image: str) -> None:
    path = DOCKERFILES[image]
    builder = builder_stage(parse_dockerfile(path))
    runs = [r for r in builder.args_of("RUN") if "/src/deploy/docker/install.sh" in r]
    assert len(runs) == 1, f"{path.name}: the builder should run deploy/docker/install.sh once, not {runs}"
    words = shlex.split(runs[0])
    assert "--no-cache" in words and words[-2:] == ["/opt/blendr", "/src"], \
        f"{path.name}: install.sh should install /src into /opt/blendr without a pip cache (RUN {runs[0]})"
    assert ("--gpu" in words) == (image == "blendr-provider"), f"{path.name}: --gpu is for the provider only"
    web = ["--from=web /src/king/static /src/king/static"] if image == "blendr" else []
    assert builder.args_of("COPY") == [". /src", *web], \
        f"{path.name}: the builder should copy the context to /src (the King's: and the dApp from the web stage)"
    assert ("--web" in words) == (image == "blendr"), f"{path.name}: --web is for the King's image only"


def test_oci_labels(image: str) -> None:
    path = DOCKERFILES[image]
    final = parse_dockerfile(path)[-1]
    got = labels(final)
    prefix = "org.opencontainers.image."
    missing = [k for k in ("title", "description", "source", "licenses", "version") if not got.get(prefix + k)]
    assert not missing, f"{path.name}: OCI labels missing: {missing}"
    assert got[prefix + "title"] == image
    assert got[prefix + "licenses"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert got[prefix + "version"] == "${VERSION}" and any(a.startswith("VERSION=") for a in final.args_of("ARG")), \
        f"{path.name}: the version label should come from the final stage's ARG VERSION"


def sandbox_tools() -> set[str]:
    """The packages scripts/sandbox-tools.sh installs when their tool is missing (need+=(package))."""
    text = (ROOT / "scripts" / "sandbox-tools.sh").read_text()
    found = set(re.findall(r"need\+=\(([\w.+-]+)\)", text))
    assert found, "scripts/sandbox-tools.sh: no need+=(package) lines found; has its format changed?"
    return found


def test_provider_image_installs_the_job_sandboxes() -> None:
    tools = sandbox_tools()
    stale = set(NOT_IN_PROVIDER_IMAGE) - tools
    assert not stale, f"left out of the provider image but no longer checked by sandbox-tools.sh: {stale}"
    path = DOCKERFILES["blendr-provider"]
    installed = apt_packages(parse_dockerfile(path)[-1])
    missing = sorted(tools - installed - set(NOT_IN_PROVIDER_IMAGE))
    assert not missing, f"{path.name}: the final stage does not install {missing} (scripts/sandbox-tools.sh)"
    for tool in NOT_IN_PROVIDER_IMAGE:
        assert tool in path.read_text(), f"{path.name}: say why {tool} is left out"


def build_context() -> tuple[list[str], list[str]]:
    """.dockerignore as (kept paths, patterns dropped inside them); it must be an allowlist (``*`` first)."""
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    assert lines[0] == "*", ".dockerignore should start with * and list what the context keeps"
    kept = [ln[1:] for ln in lines[1:] if ln.startswith("!")]
    dropped = [ln.removeprefix("**/") for ln in lines[1:] if not ln.startswith("!")]
    assert all(not re.search(r"[*?\[]", k) for k in kept), f"kept paths are plain paths: {kept}"
    return kept, dropped


def test_king_image_builds_the_dapp_in_a_web_stage_and_installs_it() -> None:
    text = DOCKERFILES["blendr"].read_text()
    stages = parse_dockerfile(DOCKERFILES["blendr"])
    web = next((s for s in stages if s.name == "web"), None)
    assert web is not None, "the King image has no web stage (the dApp, king/static/)"
    runs = " ".join(web.args_of("RUN"))
    assert "npm ci" in runs and "web:build" in runs, runs
    assert text.index("FROM ${WEB_IMAGE} AS web") < text.index("FROM ${BASE_IMAGE} AS builder")
    kept, dropped = build_context()
    assert {"package.json", "package-lock.json", "web"} <= set(kept)
    assert "king/static" in dropped, "a locally built king/static should not reach the build context"


def test_build_context_holds_what_install_needs() -> None:
    kept, _ = build_context()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.split(".")[0].rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = {"pyproject.toml", project["project"]["readme"], "deploy/docker/install.sh", *packages}
    assert needed <= set(kept), f".dockerignore leaves out {sorted(needed - set(kept))}"
    assert all((ROOT / k).exists() for k in kept), f".dockerignore keeps paths that do not exist: {kept}"


def stage_context(dest: Path) -> Path:
    """A copy of the repository as the image build sees it (.dockerignore applied)."""
    kept, dropped = build_context()
    ignore = shutil.ignore_patterns(*dropped)
    for rel in kept:
        src, dst = ROOT / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=ignore)
        else:
            shutil.copy2(src, dst)
    for pattern in dropped:  # a path under a kept folder (king/static: the web stage builds it)
        if "/" in pattern and (dest / pattern).exists():
            shutil.rmtree(dest / pattern)
    return dest


def clean_env() -> dict[str, str]:
    """This process's environment without what would point the new venv back at the source tree or ours."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}


def test_install_script_refuses_a_source_that_is_not_blendrchain(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(INSTALL), str(tmp_path / "venv"), str(tmp_path)], capture_output=True,
                          text=True, timeout=60, env=clean_env())
    assert proc.returncode == 1
    assert f"install.sh: error: {tmp_path} has no pyproject.toml" in proc.stderr
    assert not (tmp_path / "venv").exists(), "it created the venv before checking its source"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_install_script_installs_a_working_blendr_into_a_clean_venv(tmp_path: Path) -> None:
    context = stage_context(tmp_path / "context")
    venv = tmp_path / "venv"
    env = clean_env()
    # pip's cache stays on (install.sh without --no-cache): in CI it is warm from `pip install -e .[dev]`.
    # No .pyc compiling: the image needs it (read-only root), this test does not, and it saves ~10 s.
    env["PIP_NO_COMPILE"] = "1"
    env["PYTHON"] = sys.executable  # `python -m venv` from it makes a venv on its base interpreter: clean
    # The provider's install: the King/Queen image installs the same packages with fewer checks. Without
    # --gpu: cupy-cuda12x is a large download no other test needs.
    # The King image's builder gets the dApp from its web stage (COPY --from=web) and installs with --web: so
    # does this test, with the page `make test` built (when it is there; the web tests fail without it).
    web = []
    if (ROOT / "king" / "static" / "index.html").is_file():
        assert not (context / "king" / "static").exists(), "the build context should not hold king/static"
        shutil.copytree(ROOT / "king" / "static", context / "king" / "static")
        web = ["--web"]
    started = time.monotonic()
    proc = subprocess.run(["bash", str(context / "deploy/docker/install.sh"), "--provider", *web, str(venv),
                           str(context)], capture_output=True, text=True, timeout=840, env=env, cwd=tmp_path)
    took = time.monotonic() - started
    assert proc.returncode == 0, f"install.sh failed after {took:.0f} s:\n{proc.stdout}\n{proc.stderr[-8000:]}"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"blendrchain {version} installed in {venv}" in proc.stdout, proc.stdout

    # Run from the repository root: the source tree beside it must not be what runs.
    blendr = venv / "bin" / "blendr"
    for argv, expect in (([str(blendr), "--help"], ("king", "queen", "provider", "identity")),
                         ([str(blendr), "identity", "--help"], ("usage: blendr identity",))):
        run = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
        assert run.returncode == 0, f"blendr {' '.join(argv[1:])}: {run.stderr}"
        assert all(word in run.stdout for word in expect), f"blendr {' '.join(argv[1:])}:\n{run.stdout}"

    # Installed into the venv (not an editable install pointing at the source tree), without the dev extra.
    probe = """if True:
        import json, importlib.metadata as m, blendr, blendrctl, king, queen, provider, protos
        names = {d.metadata["Name"].lower() for d in m.distributions()}
        print(json.dumps({"files": [x.__file__ for x in (blendr, blendrctl, king, queen, provider, protos)],
                          "version": m.version("blendrchain"),
                          "dev": sorted(names & {"pytest", "ruff", "mypy", "hypothesis", "grpcio-tools"})}))"""
    run = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", probe], capture_output=True, text=True,
                         timeout=120, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    for file in found["files"]:
        assert Path(file).resolve().is_relative_to(venv.resolve()), f"{file} is not inside {venv}"
    assert found["version"] == version
    assert found["dev"] == [], f"the dev extra's tools were installed: {found['dev']}"
