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
# MOLECULE_ROLES=a,b runs only those roles' scenarios, MOLECULE_SKIP=a,b all but those (CI's two streams split them).
comma := ,
MOLECULE_ROLES ?=
MOLECULE_SKIP ?=
ALL_ROLE_SCENARIOS := $(sort $(wildcard roles/*/molecule/*/molecule.yml))
ROLE_SCENARIOS := $(filter-out $(foreach r,$(subst $(comma), ,$(MOLECULE_SKIP)),roles/$(r)/%),\
  $(if $(MOLECULE_ROLES),$(filter $(foreach r,$(subst $(comma), ,$(MOLECULE_ROLES)),roles/$(r)/%),$(ALL_ROLE_SCENARIOS)),$(ALL_ROLE_SCENARIOS)))
FLEET_SCENARIOS := $(sort $(wildcard molecule/*/molecule.yml))

.PHONY: help system-deps venv locks images test unit lint sanity molecule molecule-roles molecule-fleet lab-check clean

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

system-deps: ## Install podman, debootstrap, nats-server, redis ... (apt; sudo when not root)
	@scripts/system-deps.sh

venv: $(STAMP) ## Create .venv from the hash-locked requirements (pip --no-deps --require-hashes), then pip check
# requirements.txt is complete (make locks): pip installs exactly it and resolves nothing. A changed lock
# (or pip pin, or cli/pyproject.toml) reinstalls; the stamp records the sha256 of the lock it was built from.
$(STAMP): requirements.txt requirements-pip.txt cli/pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps --require-hashes -r requirements-pip.txt
	$(VENV)/bin/python -m pip install -q --no-deps --require-hashes -r requirements.txt
	$(VENV)/bin/python -m pip install -q --no-deps --no-build-isolation -e ./cli
	$(VENV)/bin/python -m pip check
	@sha256sum requirements.txt requirements-pip.txt >$@

locks: ## Regenerate every hash-locked requirements file (scripts/lock.sh; UPGRADE=1: newest allowed versions)
	@scripts/lock.sh $(if $(UPGRADE),--upgrade)

images: system-deps ## Build the molecule/lab base image once (cached by recipe hash)
	@tests/images/build.sh

unit: venv images ## Unit and integration tests (pytest; the container tests need the base image; not the lab's)
	pytest -q -m "not lab"

lint: venv ## ruff and ansible-lint --profile production
	ruff check .
	ansible-lint --profile production

sanity: venv ## ansible-test sanity (all tests on 3.11; compile+import on node Pythons 3.8, 3.13; needs shellcheck)
	scripts/ansible-test-sanity.sh

molecule: molecule-roles molecule-fleet ## Every molecule scenario: create, converge, idempotence, check, verify, destroy

molecule-roles: venv images ## Each role's own molecule scenario (roles/*/molecule/*)
	@set -e; for s in $(ROLE_SCENARIOS); do \
	  role_dir=$${s%%/molecule/*}; scenario=$$(basename $$(dirname $$s)); \
	  echo "=== molecule $$role_dir -s $$scenario"; start=$$(date +%s); \
	  (cd $$role_dir && molecule test -s $$scenario); \
	  echo "=== molecule $$role_dir -s $$scenario passed in $$(( $$(date +%s) - start )) s"; \
	done

molecule-fleet: venv images ## The fleet-wide molecule scenarios (molecule/*: site.yml on several containers)
	@set -e; for s in $(FLEET_SCENARIOS); do \
	  scenario=$$(basename $$(dirname $$s)); \
	  echo "=== molecule fleet -s $$scenario"; start=$$(date +%s); \
	  molecule test -s $$scenario; \
	  echo "=== molecule fleet -s $$scenario passed in $$(( $$(date +%s) - start )) s"; \
	done

test: system-deps venv images ## Everything CI runs: unit + integration tests, lint, sanity, molecule, the lab
	@scripts/ci-test.sh

# The users' fleet is the acceptance: lab-check converges the pmoves seed fleet (seed 000, 8 hosts;
# tests/integration/test_lab_seed.py) from scratch, checks it (every model by name and alias, 401s, services,
# hub, subjects, a stopped replica routed around), reruns it (changed=0) and removes it; plus lab-up/lab-down of
# the project's own 4-node lab. LAB_SEED=<fleet> picks another seed fleet (empty: none); LAB_FULL=1 adds the
# project's own lab converged end to end (tests/integration/test_lab_full.py).
LAB_SEED ?= pmoves
LAB_FULL ?=
lab-check: venv images ## The main job end to end: the pmoves seed lab from scratch, checks, rerun changed=0, lab-down (LAB_SEED=<fleet>, LAB_FULL=1)
	@start=$$(date +%s); \
	PMOVES_LAB_FULL=$(LAB_FULL) PMOVES_LAB_SEED=$(LAB_SEED) pytest -q -p no:cacheprovider -m lab tests/integration && \
	echo "=== lab-check passed in $$(( $$(date +%s) - start )) s"

clean: ## Remove .venv, caches and artifacts
	rm -rf $(VENV) .cache artifacts .pytest_cache .ruff_cache

include mk/lab.mk
