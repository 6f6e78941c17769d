# Two commands for a newcomer (see README.md):
#   make demo   install, then run the whole graph as one Dagster backfill on the embedded instance
#   make test   install, then run the test suite
# Everything lives in .venv/ and .dagster_home/ inside the project. `make ui` opens the same
# instance in the Dagster UI; `make cluster` starts a local Postgres + Celery deployment.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: install chromium services demo test ui cluster bench clean-home

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# the CPU wheel first: an open torch requirement would pull a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip check
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

install: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml

demo: install
	$(PY) -m robosf_assets.cli demo --profile $(PROFILE)

# Headless Chromium and chromedriver for the browser test (robosf_assets_tests/ui), from
# Debian's packages; sudo only when not root. With ROBOSF_SKIP_BROWSER=1 the test is skipped
# and nothing is installed.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

chromium:
	@[ "$$ROBOSF_SKIP_BROWSER" = 1 ] || { command -v chromium && command -v chromedriver; } >/dev/null || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver)

# Debian's PostgreSQL and Redis for the cluster tests (robosf_assets_tests/cluster) and
# `make cluster`; sudo only when not root. ROBOSF_SKIP_SERVICES=1 installs nothing (the tests
# then skip when the servers are missing, saying why).
services:
	@[ "$$ROBOSF_SKIP_SERVICES" = 1 ] || { command -v redis-server && ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y postgresql redis-server) || \
	  echo "could not install postgresql and redis-server: the cluster tests will skip"

test: install chromium services
	$(PY) -m pytest

# the training pool's limit (one per core unless ROBOSF_TRAINING_SLOTS says), then webserver + daemon
ui: install
	$(PY) -m robosf_assets.cli pool
	$(VENV)/bin/dagster dev -w workspace.yaml

# Postgres, Redis, 2 Celery workers, daemon and webserver on localhost (deploy/, docs/deployment.md)
cluster: install services
	$(PY) deploy/local_cluster.py --dir .cluster

bench: install
	$(PY) -m robosf_assets.bench.sim
