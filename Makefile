# Two commands for a newcomer (see README.md):
#   make demo   install, then materialise the pipeline on the embedded Dagster instance
#   make test   install, then run the test suite
# Everything lives in .venv/ and .dagster_home/ inside the project.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: install chromium demo test ui bench clean-home

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

test: install chromium
	$(PY) -m pytest

ui: install
	$(VENV)/bin/dagster dev -w workspace.yaml

bench: install
	$(PY) -m robosf_assets.bench.sim
