#!/usr/bin/env bash
# Installs BlendrChain into a virtual environment, then checks that the install works. The one install path of
# both images (deploy/docker/Dockerfile, deploy/docker/provider.Dockerfile); tests/deploy/test_images.py runs it
# in a clean virtual environment, so what the images install is tested where no image can be built.
#
# usage: install.sh [--provider] [--gpu] [--web] [--no-cache] VENV_DIR [SOURCE]
#   VENV_DIR    the virtual environment; created with "$PYTHON -m venv" (default python3) when missing
#   SOURCE      the source tree (default: this repository) or a built wheel (blendrchain-*.whl); installed
#               non-editable, without the dev extra
#   --provider  the provider agent's install: its modules are checked too, and that jobs' environments can be
#               made (python -m venv)
#   --gpu       adds the gpu extra (CuPy, cupy-cuda12x); implies --provider
#   --web       the King's image: the installed package must hold the dApp (king/static/, `make web` builds it)
#   --no-cache  pip keeps no cache (--no-cache-dir: the images). Without it pip uses its cache, a warm one where
#               `pip install -e .[dev]` ran before (CI).
#
# Guarantees: on success VENV_DIR/bin/blendr runs, the packages import from VENV_DIR (not from SOURCE), the
# contract artifacts and the generated gRPC modules are inside the installed package. On failure it exits non-zero
# with a line "install.sh: error: ..." saying which step failed.
set -euo pipefail

die() { echo "install.sh: error: $*" >&2; exit 1; }
usage() { sed -n '6,15s/^# \{0,1\}//p' "$0" >&2; exit 2; }

provider=0 gpu=0 cache=1 web=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --provider) provider=1 ;;
    --gpu) gpu=1 provider=1 ;;
    --web) web=1 ;;
    --no-cache) cache=0 ;;
    -h|--help) usage ;;
    --) shift; args+=("$@"); break ;;
    -*) echo "install.sh: unknown option $1" >&2; usage ;;
    *) args+=("$1") ;;
  esac
  shift
done
[ ${#args[@]} -ge 1 ] && [ ${#args[@]} -le 2 ] || usage
venv=${args[0]}
source=${args[1]:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
python=${PYTHON:-python3}

if [ -d "$source" ]; then
  [ -f "$source/pyproject.toml" ] || die "$source has no pyproject.toml: not a BlendrChain source tree"
elif [[ "$source" == *.whl ]]; then
  [ -f "$source" ] || die "no wheel at $source"
else
  die "SOURCE must be a source tree or a .whl file (got $source)"
fi

extras=""
[ $gpu -eq 1 ] && extras="[gpu]"
pip_opts=(--disable-pip-version-check --no-input --progress-bar off --quiet)
[ $cache -eq 0 ] && pip_opts+=(--no-cache-dir)

if [ ! -x "$venv/bin/python" ]; then
  command -v "$python" >/dev/null 2>&1 || die "no $python to create $venv with (set PYTHON=/path/to/python3.11+)"
  "$python" -m venv "$venv" || die "could not create the virtual environment $venv with $python (on Debian/Ubuntu: install python3-venv)"
fi
"$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$venv has Python $("$venv/bin/python" -V 2>&1); BlendrChain needs 3.11 or newer"

# The venv's pip is the one its Python bundles (so the base image decides it), unless older than 23.3: those do
# not read the cache current pips write (a warm cache in CI would be missed).
if ! "$venv/bin/python" -c 'import sys, pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (23, 3))'; then
  "$venv/bin/python" -m pip install "${pip_opts[@]}" --upgrade pip || die "could not upgrade pip in $venv"
fi
echo "installing blendrchain$extras from $source into $venv"
"$venv/bin/python" -m pip install "${pip_opts[@]}" "$source$extras" || die "pip could not install $source$extras"

# Smoke checks, run the way the image runs them: no PYTHONPATH and no working directory on sys.path (-I), so
# a source tree next to the venv cannot stand in for the installed package.
check_env=(env -u PYTHONPATH -u PYTHONHOME -u BLENDR_ARTIFACTS_DIR)
"${check_env[@]}" "$venv/bin/blendr" --help >/dev/null || die "$venv/bin/blendr --help failed"

# Each role's wiring (app), and the libraries with native code the roles import lazily (a wheel that does not
# load on this system fails here, not at a node's first request).
modules=(blendr blendrctl.cli king.app queen.app grpc web3 psycopg sha3 coincurve cryptography.hazmat.bindings._rust)
[ $provider -eq 1 ] && modules+=(provider.app provider.agent provider.jail provider.envs ray numpy pynvml)
"${check_env[@]}" "$venv/bin/python" -I - "${modules[@]}" <<'EOF' || die "the installed package failed its checks (above)"
import importlib
import pathlib
import sys

prefix = pathlib.Path(sys.prefix).resolve()
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    where = pathlib.Path(module.__file__ or "").resolve()
    if prefix not in where.parents:
        sys.exit(f"{name} imports from {where}, not from {prefix}: an editable or shadowed install")

from blendr.chain import artifacts

index = artifacts.ARTIFACTS_DIR / "index.json"
if not index.is_file():
    sys.exit(f"no contract artifacts in the installed package ({index} is missing)")
names = artifacts.contract_names()
if not names:
    sys.exit(f"{index} lists no contracts")
for chain, name in names:
    artifacts.load(chain, name)

import protos.blendr.v1 as v1

generated = sorted(p.stem for p in pathlib.Path(v1.__file__).parent.glob("*_pb2*.py"))
if not any(g.endswith("_pb2_grpc") for g in generated):
    sys.exit(f"no generated gRPC modules in {pathlib.Path(v1.__file__).parent}")
for g in generated:
    importlib.import_module(f"protos.blendr.v1.{g}")
print(f"checked: {len(sys.argv) - 1} modules, {len(names)} contract artifacts, {len(generated)} generated proto modules")
EOF

if [ $provider -eq 1 ]; then
  # Jobs that declare dependencies get a venv of their own (provider.envs: python -m venv --without-pip).
  jobenv=$(mktemp -d)
  trap 'rm -rf "$jobenv"' EXIT
  "$venv/bin/python" -m venv --without-pip "$jobenv/env" \
    || die "$venv/bin/python cannot create job environments (python -m venv; on Debian/Ubuntu: install python3-venv)"
fi
if [ $web -eq 1 ]; then
  "${check_env[@]}" "$venv/bin/python" -I -c 'import pathlib, sys, king
page = pathlib.Path(king.__file__).parent / "static" / "index.html"
sys.exit(0 if page.is_file() else f"the installed package has no dApp ({page} is missing): build it first (make web)")' \
    || die "the dApp is not in the installed package"
fi
if [ $gpu -eq 1 ]; then
  # Not imported: importing CuPy needs the CUDA libraries, which a build machine may not have.
  "${check_env[@]}" "$venv/bin/python" -I -c 'import importlib.metadata as m, importlib.util as u, sys
sys.exit(u.find_spec("cupy") is None or not m.version("cupy-cuda12x"))' \
    || die "the gpu extra did not install CuPy (cupy-cuda12x)"
fi
version=$("${check_env[@]}" "$venv/bin/python" -I -c 'import importlib.metadata as m; print(m.version("blendrchain"))')
echo "blendrchain $version installed in $venv"
