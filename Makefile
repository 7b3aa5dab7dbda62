# Two commands set up everything on a fresh machine (Docker engine + Python 3.11 + root for apt):
#   make demo   - build what is missing, bring the local testbed up, run site.yml against it
#   make test   - the whole test suite (what CI runs)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# molecule and ansible-lint call ansible-* by name: the venv must come first on PATH.
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_CACHE_PLUGIN_CONNECTION := $(CURDIR)/.cache/ansible-facts
export ANSIBLE_FORCE_COLOR ?= 0
INVENTORY ?= inventories/local
PYTEST_ARGS ?=
# Each suite's own temp root, inside the checkout: pytest's default /tmp/pytest-of-<user> is shared
# with every other pytest run on the machine, and each new run deletes all but the newest three, so a
# long integration run could lose its testbed's inventory and secrets mid-way.
PYTEST_BASETEMP := $(CURDIR)/.cache/pytest
# make bench BENCHMARKS=htcondor runs one of them.
BENCHMARKS ?= converge htcondor xrootd dask hub

.PHONY: help demo demo-image demo-up demo-site demo-analysis demo-next-steps demo-down image images-lock hub-lock lint test test-unit test-molecule test-integration bench venv host-deps lock clean

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# uv installs the pinned environment several times faster than pip (parallel downloads and
# installs: README, "Performance"); pip stays in the venv for the images' wheelhouse
# (images/python-env/wheelhouse.py) and for `make lock`.
UV_VERSION := 0.13.9
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.txt
	touch $@

venv: $(VENV)/.installed ## Create .venv from requirements.txt (done automatically)

host-deps: ## Install host packages the testbed needs (debootstrap), as root
	@command -v debootstrap >/dev/null || { \
	  echo "Installing debootstrap (builds the node base image)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }

image: venv host-deps ## Build the node base image if its recipe changed
	ansible-playbook -i $(INVENTORY) playbooks/testbed_image.yml

demo: venv host-deps ## Bring the local testbed up, converge it, run the Z-peak analysis; ends with what to do next
	$(BIN)/python tests/support/stages.py demo-image demo-up demo-site demo-analysis demo-next-steps

demo-image: image
demo-up: venv ## The demo's containers only (testbed playbook)
	ansible-playbook -i $(INVENTORY) playbooks/testbed.yml

demo-site: venv ## Converge the demo testbed with site.yml (again: a no-op that changes nothing)
	ansible-playbook -i $(INVENTORY) site.yml

DEMO_USER ?= alice
demo-analysis: venv ## The Z-peak analysis on the demo testbed as DEMO_USER (default alice)
	ansible-playbook -i $(INVENTORY) playbooks/demo_analysis.yml -e demo_user=$(DEMO_USER)

demo-next-steps: venv ## Where the hub is, how to reach it, where the passwords and the site CA are
	ansible-playbook -i $(INVENTORY) playbooks/demo_next_steps.yml

demo-down: venv ## Tear the local testbed down
	ansible-playbook -i $(INVENTORY) playbooks/testbed_down.yml

lint: venv ## yamllint, ansible-lint (production profile), ruff
	yamllint --strict .
	ansible-lint --offline
	ruff check .
	ruff format --check .

test-unit: venv ## Unit tests and inventory validation (no containers)
	mkdir -p $(PYTEST_BASETEMP)
	pytest tests/unit tests/inventory --basetemp=$(PYTEST_BASETEMP)/unit $(PYTEST_ARGS)

# Each scenario as `molecule test` runs it (destroy, create, converge, idempotence, verify, destroy),
# with converge and idempotence under Mitogen and molecule's own create/destroy playbooks under stock
# Ansible (their async docker_container jobs never report back under Mitogen: molecule.yml). The
# containers are destroyed whatever happened; the first failing scenario stops the loop.
MOLECULE_SCENARIOS ?= $(notdir $(wildcard molecule/*))
MOLECULE_STRATEGY ?= mitogen_linear
test-molecule: venv image ## Molecule scenarios (converge, idempotence, verify)
	for scenario in $(MOLECULE_SCENARIOS); do \
	  ANSIBLE_STRATEGY=linear molecule destroy -s $$scenario; \
	  status=0; \
	  { ANSIBLE_STRATEGY=linear molecule create -s $$scenario \
	    && ANSIBLE_STRATEGY=$(MOLECULE_STRATEGY) molecule converge -s $$scenario \
	    && ANSIBLE_STRATEGY=$(MOLECULE_STRATEGY) molecule idempotence -s $$scenario \
	    && molecule verify -s $$scenario; } || status=$$?; \
	  ANSIBLE_STRATEGY=linear molecule destroy -s $$scenario; \
	  if [ $$status -ne 0 ]; then echo "molecule scenario $$scenario failed (exit $$status)"; exit $$status; fi; \
	done

test-integration: venv image ## Site-level tests on a throwaway testbed
	mkdir -p $(PYTEST_BASETEMP)
	pytest tests/integration --basetemp=$(PYTEST_BASETEMP)/integration --durations=0 $(PYTEST_ARGS)

test: venv ## The whole suite (CI runs this); ends with a table of stage durations
	$(BIN)/python tests/support/stages.py lint test-unit test-molecule test-integration

bench: venv image ## Benchmarks: print a table, write JSON under tests/benchmarks/results/
	for name in $(BENCHMARKS); do $(BIN)/python tests/benchmarks/bench_$$name.py; done

lock: ## Re-pin requirements.txt: resolve the direct pins (top block) afresh, freeze everything
	rm -rf build/lock-venv && mkdir -p build
	$(PYTHON) -m venv build/lock-venv
	sed -n '/^# Transitive/q;/^[A-Za-z]/p' requirements.txt > build/direct.txt
	build/lock-venv/bin/pip install --quiet -r build/direct.txt
	{ sed -n '/^# Transitive/q;p' requirements.txt; echo "# Transitive"; \
	  build/lock-venv/bin/pip freeze | grep -viE "^($$(sed 's/\[.*//;s/==.*//' build/direct.txt | paste -sd'|'))==" ; } > build/requirements.txt
	mv build/requirements.txt requirements.txt && rm -rf build/lock-venv build/direct.txt

images-lock: venv ## Re-lock the facility images' Python environment (images/python-env/*.in)
	$(BIN)/python images/python-env/wheelhouse.py lock

hub-lock: venv ## Re-lock JupyterHub's environment (roles/jupyterhub/files/hub.in), shared versions as the images'
	$(BIN)/python images/python-env/wheelhouse.py lock-with roles/jupyterhub/files/hub.in roles/jupyterhub/files/hub.lock

clean: ## Remove the venv and caches (not the site credentials)
	rm -rf $(VENV) .cache build
