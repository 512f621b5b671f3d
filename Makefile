# pmoves.fleet — the two commands a newcomer types:
#   make test   set up everything (system packages, .venv), then unit tests, lint, molecule
#   make lab    bring up the local simulated fleet and converge it (see README)
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := $(CURDIR)/.venv
STAMP := $(VENV)/.installed
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PY_COLORS := 0
export ANSIBLE_NOCOLOR := 1

# Molecule scenarios: each role's own (roles/<role>/molecule/<scenario>) and fleet-wide ones (molecule/<scenario>).
ROLE_SCENARIOS := $(sort $(wildcard roles/*/molecule/*/molecule.yml))
FLEET_SCENARIOS := $(sort $(wildcard molecule/*/molecule.yml))

.PHONY: help system-deps venv images test unit lint sanity molecule clean

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

system-deps: ## Install podman, debootstrap, nats-server, redis ... (apt; sudo when not root)
	@scripts/system-deps.sh

venv: $(STAMP) ## Create .venv with the pinned Python dependencies
$(STAMP): requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	$(VENV)/bin/pip install -q -e ./cli
	@touch $@

images: system-deps ## Build the molecule/lab base image once (cached by recipe hash)
	@tests/images/build.sh

unit: venv ## Unit and integration tests (pytest)
	pytest -q

lint: venv ## ruff and ansible-lint --profile production
	ruff check .
	ansible-lint --profile production

sanity: venv ## ansible-test sanity (all tests on 3.11; compile+import on node Pythons 3.8, 3.13; needs shellcheck)
	scripts/ansible-test-sanity.sh

molecule: venv images ## Every molecule scenario: create, converge, idempotence, check, verify, destroy
	@set -e; for s in $(ROLE_SCENARIOS); do \
	  role_dir=$${s%%/molecule/*}; scenario=$$(basename $$(dirname $$s)); \
	  echo "=== molecule $$role_dir -s $$scenario"; start=$$(date +%s); \
	  (cd $$role_dir && molecule test -s $$scenario); \
	  echo "=== molecule $$role_dir -s $$scenario passed in $$(( $$(date +%s) - start )) s"; \
	done
	@set -e; for s in $(FLEET_SCENARIOS); do \
	  scenario=$$(basename $$(dirname $$s)); \
	  echo "=== molecule fleet -s $$scenario"; start=$$(date +%s); \
	  molecule test -s $$scenario; \
	  echo "=== molecule fleet -s $$scenario passed in $$(( $$(date +%s) - start )) s"; \
	done

test: system-deps venv ## Everything CI runs: unit + integration tests, lint, molecule
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory unit lint sanity molecule && \
	echo "make test: all passed in $$(( $$(date +%s) - start )) s"

clean: ## Remove .venv, caches and artifacts
	rm -rf $(VENV) .cache artifacts .pytest_cache .ruff_cache

include mk/lab.mk
