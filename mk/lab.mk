# The lab: `make lab` / `make lab-down` (included from the Makefile; see docs/lab.md).
# The Makefile's placeholder lab/lab-down targets must go when this file is included.
PMOVES_LAB_GATEWAY_PORT ?= 14000
export PMOVES_LAB_GATEWAY_PORT
# make lab LAB_INVENTORY=inventories/<fleet> [LAB_LIMIT=host]; make lab-down (contract 4b).
LAB_INVENTORY ?= inventories/lab
LAB_LIMIT ?=
export LAB_INVENTORY LAB_LIMIT

.PHONY: lab lab-down lab-all cli
LAB_SEEDS ?= pmoves gpu-mesh workstation forge homelab

cli: venv ## Install the `pmoves` command into .venv
	@$(VENV)/bin/python -c 'import pmoves_cli' 2>/dev/null || $(VENV)/bin/pip install -q --no-deps --no-build-isolation -e ./cli

lab: venv cli ## Bring up the simulated fleet in local containers, converge it with site.yml, ask the gateway
	@command -v podman >/dev/null || $(MAKE) --no-print-directory system-deps
	@tests/images/build.sh
	@scripts/lab-up.sh

lab-down: ## Remove every container, volume, network and file the lab created
	@scripts/lab-down.sh

lab-all: venv images ## The seed labs one after the other (tests/integration/test_lab_seed.py per fleet), with each one's time
	@set -e; for fleet in $(LAB_SEEDS); do start=$$(date +%s); \
	  echo "=== lab $$fleet"; \
	  PMOVES_LAB_SEED=$$fleet pytest -q -p no:cacheprovider -m lab tests/integration/test_lab_seed.py; \
	  echo "=== lab $$fleet passed in $$(( $$(date +%s) - start )) s"; \
	done
