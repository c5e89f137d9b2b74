# BlendrChain — every target bootstraps what it needs (.venv) on first use.
SHELL := /bin/bash
# The first Python 3.11+ on PATH (override: make PYTHON=/path/to/python3.x).
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3.14 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTOS := $(wildcard protos/blendr/v1/*.proto)
NODE_STAMP := node_modules/.installed
# The dApp (web/, TypeScript + Vite) built into king/static/, which the King serves on king.web_listen.
WEB_SRC := $(shell find web -type f 2>/dev/null)
WEB_STAMP := king/static/index.html
# The job sandboxes (bubblewrap, gVisor's runsc, slirp4netns): system packages, checked on every run.
SANDBOX_TOOLS := bash scripts/sandbox-tools.sh
# The browser the dApp's tests (tests/web/, Playwright) and the demo's page need: Debian's chromium package.
BROWSER_TOOLS := bash scripts/browser-tools.sh
# `make demo DEMO_ARGS="--stay"`: keep the network and the dApp running after the demo's job, until Ctrl-C.
DEMO_ARGS ?=

.PHONY: install web demo test test-fast bench bench-quick lint protos contracts devnet clean help

help:
	@echo "make install  .venv with blendr, node_modules with anvil, the job sandboxes (bubblewrap, runsc); then \`. .venv/bin/activate\` puts blendr on the PATH"
	@echo "make demo    run the whole network on this machine and a renter's job through it, with a receipt"
	@echo "make test    make lint, then the whole test suite with every bench's --quick mode (creates .venv on first use)"
	@echo "make bench   run the benchmarks (bench/*.py), results in bench/results/ (bench-quick: bench/results/quick/)"
	@echo "make lint    ruff + mypy --strict"
	@echo "make web     build the dApp (web/) into king/static/, served by the King on king.web_listen"
	@echo "make protos  regenerate the gRPC code from protos/"
	@echo "make contracts  compile contracts/ with the pinned solc-js into blendr/chain/artifacts/"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: no Python 3.11+ found on PATH; install one or run make PYTHON=/path/to/python3.x"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# npm tools pinned by package-lock.json: anvil (dev chains), solc-js, OpenZeppelin Contracts.
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "error: npm not found; install Node.js 20+ (it provides npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

$(WEB_STAMP): $(NODE_STAMP) $(WEB_SRC)
	npm run -s web:build

web: $(WEB_STAMP)

install: $(STAMP) $(NODE_STAMP) $(WEB_STAMP)
	@$(SANDBOX_TOOLS)
	@echo "installed; run \`. .venv/bin/activate\` to put blendr on the PATH (or call .venv/bin/blendr)"

demo: $(STAMP) $(NODE_STAMP) $(WEB_STAMP)
	@$(SANDBOX_TOOLS)
	$(PY) -m blendrctl.demo $(DEMO_ARGS)

# Lint first: a lint failure fails `make test` (and CI). The tests include every bench's --quick mode
# (tests/bench/), which writes to a temporary folder, never over bench/results/.
test: lint $(STAMP) $(NODE_STAMP) $(WEB_STAMP)
	@$(SANDBOX_TOOLS)
	@$(BROWSER_TOOLS)
	npm run -s web:check
	npm run -s web:test
	$(PY) -m pytest -q

bench: $(STAMP) $(NODE_STAMP)
	$(PY) bench/proof.py
	$(PY) bench/pool.py
	$(PY) bench/gas.py
	$(PY) bench/relay.py
	$(PY) bench/scheduler.py
	$(PY) bench/outputs.py
	$(PY) bench/sandbox.py

bench-quick: $(STAMP) $(NODE_STAMP)
	$(PY) bench/proof.py --quick
	$(PY) bench/pool.py --quick
	$(PY) bench/gas.py --quick
	$(PY) bench/relay.py --quick
	$(PY) bench/scheduler.py --quick
	$(PY) bench/outputs.py --quick
	$(PY) bench/sandbox.py --quick

lint: $(STAMP)
	$(VENV)/bin/ruff check blendr blendrctl king queen provider tests bench
	$(VENV)/bin/mypy

protos: $(STAMP)
	$(PY) -m blendr.rpc.protogen

contracts: $(NODE_STAMP)
	node contracts/build.mjs

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
