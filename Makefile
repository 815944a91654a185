# Skillrelay — every target bootstraps its own tools: a fresh machine needs only Python 3.11+, make, git.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
RUN := $(UV) run --frozen --no-sync
PYTEST_ARGS ?=
PACKAGES := skillrelay everything_worker skillrelay_worker skillrelay_devstack skillrelay_common skillrelay_registry skillrelay_auth skillrelay_sessions skillrelay_edge

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

# uv.lock changes only through `make lock`; a fresh clone installs exactly what it pins. Bytecode is
# compiled once here: where PYTHONDONTWRITEBYTECODE is set (as on CI machines), every process would
# otherwise compile each library it imports from source (about 2.5 s of CPU per service start).
.venv/.synced: $(UV) uv.lock
	$(UV) sync --frozen --all-packages --compile-bytecode
	@touch $@

.PHONY: install
install: .venv/.synced ## create .venv with every package and tool

.PHONY: lock
lock: $(UV) ## re-resolve dependencies into uv.lock
	$(UV) lock

.PHONY: run
run: install ## start the whole stack on embedded defaults (Ctrl-C stops it)
	$(RUN) python -m skillrelay run

.PHONY: lint
lint: install ## ruff and strict mypy
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy $(foreach p,$(PACKAGES),-p $(p))
	$(RUN) mypy scripts/docs_reference.py

.PHONY: fmt
fmt: install ## format and autofix
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

.PHONY: test
test: lint ## lint, type-check, then every test against real PostgreSQL and NATS
	$(RUN) pytest $(PYTEST_ARGS)

.PHONY: test-compose
test-compose: install ## docker-compose.yml really run: own dockerd, Debian-built images, faults (root, ~15 min)
	bash tests/compose/run.sh

.PHONY: asyncapi
asyncapi: install ## write docs/asyncapi.json (AsyncAPI 3.0 of every NATS subject) from the code
	$(RUN) python -m skillrelay.asyncapi docs/asyncapi.json

.PHONY: docs
docs: install ## build the documentation site strictly into site/ (a broken link fails it)
	NO_MKDOCS_2_WARNING=1 $(RUN) mkdocs build --strict

.PHONY: bench
bench: install ## speed benchmarks (edge vs MCP Python SDK vs raw Litestar), ratios printed
	$(RUN) python -m benchmarks

bench-scale: install ## listening clients per edge replica, memory per client, fan-out, failover, 1M sessions (minutes)
	$(RUN) python -m benchmarks.scale $(BENCH_SCALE_ARGS)
	$(RUN) python -m benchmarks.scale_failover $(BENCH_FAILOVER_ARGS)
	$(RUN) python -m benchmarks.scale_sessions $(BENCH_SESSIONS_ARGS)

# ContextForge needs Python >= 3.12: the first that runs of python3.13, python3.12 (on PATH) or one under
# ~/.pyenv/versions gets its own venv in .peers/ (git-ignored). Without one, only this target is skipped.
PEER_PYTHON ?= $(shell for c in python3.13 python3.12 $(HOME)/.pyenv/versions/3.1[2-9]*/bin/python3; do \
	$$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo $$c; break; }; done)
CONTEXTFORGE_VERSION := 1.1.0
.PHONY: bench-peers
bench-peers: install ## our http ability beside IBM ContextForge's REST tool (installs it; Python >= 3.12)
	@if [ -z "$(PEER_PYTHON)" ]; then echo "bench-peers skipped: ContextForge needs Python >= 3.12 and none was found"; exit 0; fi; \
	set -e; \
	if [ ! -x .peers/contextforge/bin/mcpgateway ]; then \
		rm -rf .peers/contextforge; \
		$(PEER_PYTHON) -m venv .peers/contextforge; \
		.peers/contextforge/bin/pip install --quiet --disable-pip-version-check mcp-contextforge-gateway==$(CONTEXTFORGE_VERSION); \
	fi; \
	$(RUN) python -m benchmarks.peers --contextforge .peers/contextforge/bin/mcpgateway

.PHONY: clean
clean: ## remove the environment and tool caches (keeps .skillrelay/ state)
	rm -rf .venv $(TOOLS) .mypy_cache .ruff_cache .pytest_cache site .peers
