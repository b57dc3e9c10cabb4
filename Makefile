# Two commands do everything on a fresh machine:
#   make demo   - set up, start the local ARM emulator and run the maintenance playbook on it
#   make test   - set up and run every test: unit, end-to-end, sanity, lint, docs, changelog
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell scripts/find-python 3.12)
PYTHON_OLDEST ?= $(shell scripts/find-python 3.10 3.12)
VENV := .venv
VENV_OLDEST := .venv-oldest
VENV_SANITY := $(CURDIR)/.venv-sanity
VENV_PEER := .venv-peer
# The peer of the benchmark: azure.azcollection's azure_rm_resource, from the ansible package.
PEER_ANSIBLE := ansible==14.5.0
BUILD := .build
COLLECTIONS := $(CURDIR)/$(BUILD)/collections
SRC_TREE := $(BUILD)/src/ansible_collections/azure_hpc/cache
SANITY_TREE := $(BUILD)/sanity/ansible_collections/azure_hpc/cache
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL := $(BUILD)/dist/azure_hpc-cache-$(VERSION).tar.gz
PIP_QUIET := --quiet --disable-pip-version-check
# The emulator is the repository's own tooling: a .pth file makes its package importable in a
# venv (as an editable install would), so no test or script edits sys.path to reach it.
TOOLING_PTH := import pathlib, sys, sysconfig; \
    pathlib.Path(sysconfig.get_path("purelib"), "azure_hpc_cache_tooling.pth").write_text(sys.argv[1] + "\n")
# End-to-end cases run in parallel, each worker with its own emulators; cases wait on the emulator more
# than they compute, so more workers than cores.
E2E_WORKERS ?= 4
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_NOCOLOR := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help demo test test-suites bench test-units test-units-oldest test-e2e test-e2e-oldest typecheck sanity lint docs changelog \
    collection clean

help:
	@echo "make demo  - run the maintenance playbook against the local emulator"
	@echo "make test  - run every test"
	@echo "make bench - measure speed and memory on the emulator (bench-report.md)"

$(VENV)/.ready: tests/requirements-newest.txt tests/constraints-newest.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_QUIET) -r tests/requirements-newest.txt -c tests/constraints-newest.txt
	$(VENV)/bin/python -c '$(TOOLING_PTH)' $(CURDIR)/emulator
	touch $@

$(VENV_OLDEST)/.ready: tests/requirements-oldest.txt tests/constraints-oldest.txt
	rm -rf $(VENV_OLDEST)
	$(PYTHON_OLDEST) -m venv $(VENV_OLDEST)
	$(VENV_OLDEST)/bin/pip install $(PIP_QUIET) -r tests/requirements-oldest.txt -c tests/constraints-oldest.txt
	$(VENV_OLDEST)/bin/python -c '$(TOOLING_PTH)' $(CURDIR)/emulator
	touch $@

# The collection as users get it: built with build_ignore, then installed.
collection: $(VENV)/.ready
	rm -rf $(BUILD)/dist $(COLLECTIONS)
	$(VENV)/bin/ansible-galaxy collection build --force --output-path $(BUILD)/dist . >/dev/null
	$(VENV)/bin/ansible-galaxy collection install --force -p $(COLLECTIONS) $(TARBALL) >/dev/null
	@echo "installed $(TARBALL) into $(COLLECTIONS)"

# The source tree under an ansible_collections/ path, for unit tests of the source itself.
$(SRC_TREE):
	mkdir -p $(dir $@)
	ln -sfn $(CURDIR) $@

demo: collection
	$(VENV)/bin/python scripts/with_emulator.py emulator/scenarios/demo.yml -- scripts/demo $(VENV)

# First what the suites need (the venvs, side by side; the collection as users get it, once), then every suite,
# TEST_JOBS at a time, the end-to-end suites first: they take longest, and make starts a suite whose prerequisites
# are still being built only after the suites listed after it. A suite that waits on the emulator leaves a core
# to another; each suite's output is printed whole when it ends.
TEST_JOBS ?= 2
# what a suite that runs the installed collection needs first; empty once `make test` has installed it
INSTALLED ?= collection
test:
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) $(VENV)/.ready $(VENV_OLDEST)/.ready $(VENV_SANITY)/.ready $(SRC_TREE)
	@$(MAKE) --no-print-directory collection
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target test-suites INSTALLED=
	@echo "make test: all suites passed"

test-suites: test-e2e test-e2e-oldest test-units test-units-oldest typecheck test-simulation integration sanity lint docs changelog

test-units: $(VENV)/.ready $(SRC_TREE)
	PYTHONPATH=$(CURDIR)/$(BUILD)/src $(VENV)/bin/python -m pytest -q tests/unit

test-units-oldest: $(VENV_OLDEST)/.ready $(SRC_TREE)
	PYTHONPATH=$(CURDIR)/$(BUILD)/src $(VENV_OLDEST)/bin/python -m pytest -q tests/unit

# The deterministic simulator of backend maintenance (tests/simulation): SIM_SCHEDULES seeded schedules of the
# newest driver against its invariants, in chunks spread over the cores.
SIM_SCHEDULES ?= 2000
.PHONY: test-simulation simulate-050
test-simulation: $(VENV)/.ready
	SIM_SCHEDULES=$(SIM_SCHEDULES) $(VENV)/bin/python -m pytest -q -p no:cacheprovider -n 2 tests/simulation

# The same simulator against 0.5.0's rules (commit 73ea42a): it must find the seeds that break them.
SIM050_TREE := $(BUILD)/sim050
simulate-050: $(VENV)/.ready
	rm -rf $(SIM050_TREE) && mkdir -p $(SIM050_TREE)/ansible_collections/azure_hpc/cache
	git archive 73ea42a plugins | tar -x -C $(SIM050_TREE)/ansible_collections/azure_hpc/cache
	$(VENV)/bin/python -m tests.simulation.findings --schedules $(SIM_SCHEDULES) --seed 1 --tree $(SIM050_TREE)

test-e2e: $(INSTALLED) $(VENV)/.ready
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/python -m pytest -q -n $(E2E_WORKERS) --durations=15 tests/e2e

# The oldest stack runs what ansible-core takes part in; a test marked stack_independent (the emulator's behaviour,
# or the collection's own Python: HTTP faults, the record's protocol) runs on the newest stack only.
test-e2e-oldest: $(INSTALLED) $(VENV)/.ready $(VENV_OLDEST)/.ready
	PATH=$(CURDIR)/$(VENV_OLDEST)/bin:$$PATH $(VENV_OLDEST)/bin/python -m pytest -q -n $(E2E_WORKERS) --durations=10 \
	    -m "not stack_independent" tests/e2e

# ansible-test's own runner on tests/integration/targets/azure_hpc_cache_flush: a playbook against the
# emulator the target starts on 127.0.0.1 (the e2e suite is the main engine). ansible-test needs the
# collection at .../ansible_collections/NAMESPACE/NAME in a repository of its own: a copy of the files git
# knows, as scripts/copy-collection makes one, under $(BUILD). Bounded by INTEGRATION_TIMEOUT seconds.
INTEGRATION_TREE := $(BUILD)/integration/ansible_collections/azure_hpc/cache
INTEGRATION_TIMEOUT ?= 900
.PHONY: integration
integration: $(VENV)/.ready
	rm -rf $(BUILD)/integration && mkdir -p $(INTEGRATION_TREE)
	git ls-files -co --exclude-standard -z | xargs -0 tar --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C $(INTEGRATION_TREE)
	cd $(INTEGRATION_TREE) && git init -q && git add -A
	cd $(INTEGRATION_TREE) && env -u ANSIBLE_COLLECTIONS_PATH PATH=$(CURDIR)/$(VENV)/bin:$$PATH timeout $(INTEGRATION_TIMEOUT) \
	    $(CURDIR)/$(VENV)/bin/ansible-test integration --local --python-interpreter $(CURDIR)/$(VENV)/bin/python \
	    azure_hpc_cache_flush

# mypy, strict, on all of plugins/: modules, module_utils, inventory, action, filter and plugin_utils (tests/mypy.ini).
typecheck: $(VENV)/.ready $(SRC_TREE)
	cd $(BUILD)/src && $(CURDIR)/$(VENV)/bin/mypy --config-file $(CURDIR)/tests/mypy.ini \
	    -p ansible_collections.azure_hpc.cache.plugins

# ansible-test installs its own pinned sanity tools (--requirements) into a venv of their own.
$(VENV_SANITY)/.ready: tests/constraints-newest.txt
	rm -rf $(VENV_SANITY)
	$(PYTHON) -m venv $(VENV_SANITY)
	$(VENV_SANITY)/bin/pip install $(PIP_QUIET) -c tests/constraints-newest.txt ansible-core
	touch $@

# ansible-test needs the collection at .../ansible_collections/NAMESPACE/NAME: scripts/sanity copies it there.
sanity: $(VENV_SANITY)/.ready
	scripts/sanity $(VENV_SANITY)
	scripts/sanity-canary $(VENV_SANITY)

# The whole repository, as Galaxy's importer and contributors lint it (.ansible-lint: production profile).
lint: $(INSTALLED) $(VENV)/.ready
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/ansible-lint

# Every plugin and role must render; ansible-doc exits non-zero when one does not.
# ansible-doc exits 0 for a filter or role it cannot find: its JSON is then empty.
DOC_FOUND := $(VENV)/bin/python -c 'import json, sys; sys.exit(0 if json.load(sys.stdin) else "ansible-doc found no documentation")'
docs: $(INSTALLED) $(VENV)/.ready
	for plugin in $$(ls plugins/modules/*.py | xargs -n1 basename | sed 's/\.py$$//'); do \
	    $(VENV)/bin/ansible-doc -t module azure_hpc.cache.$$plugin >/dev/null; echo "ansible-doc module azure_hpc.cache.$$plugin: ok"; \
	done
	for plugin in $$(ls plugins/inventory/*.py | xargs -n1 basename | sed 's/\.py$$//'); do \
	    $(VENV)/bin/ansible-doc -t inventory azure_hpc.cache.$$plugin >/dev/null; echo "ansible-doc inventory azure_hpc.cache.$$plugin: ok"; \
	done
	for plugin in $$(ls plugins/filter/*.yml | xargs -n1 basename | sed 's/\.yml$$//'); do \
	    $(VENV)/bin/ansible-doc --json -t filter azure_hpc.cache.$$plugin | $(DOC_FOUND); echo "ansible-doc filter azure_hpc.cache.$$plugin: ok"; \
	done
	for role in $$(ls roles); do \
	    $(VENV)/bin/ansible-doc --json -t role azure_hpc.cache.$$role | $(DOC_FOUND); echo "ansible-doc role azure_hpc.cache.$$role: ok"; \
	done
	scripts/docs-site $(VENV)

changelog: $(VENV)/.ready
	$(VENV)/bin/antsibull-changelog lint
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/antsibull-changelog generate --output $(BUILD)/CHANGELOG.rst
	diff -u CHANGELOG.rst $(BUILD)/CHANGELOG.rst  # CHANGELOG.rst is generated from changelogs/, never edited

# The peer in a benchmark-only venv: the ansible package and the SDKs azure.azcollection imports.
$(VENV_PEER)/.ready:
	rm -rf $(VENV_PEER)
	$(PYTHON) -m venv $(VENV_PEER)
	$(VENV_PEER)/bin/pip install $(PIP_QUIET) $(PEER_ANSIBLE)
	$(VENV_PEER)/bin/pip install $(PIP_QUIET) -r $$($(VENV_PEER)/bin/python -c \
	    'import ansible_collections.azure.azcollection as c, os; print(os.path.join(list(c.__path__)[0], "requirements.txt"))')
	touch $@

# A measurement, not a test: speed and memory on the emulator, written to bench-report.md.
bench: collection $(SRC_TREE) $(VENV_PEER)/.ready
	$(VENV)/bin/python benchmarks/bench.py --peer-python $(CURDIR)/$(VENV_PEER)/bin/python $(BENCH_ARGS)

# A measurement, not a test: what a maintenance run costs (wall time, storage-target outage, module processes,
# ARM requests), 0.5.1 (565c2a8) against the working tree, in one run: bench-report-maintenance.md.
.PHONY: bench-maintenance
bench-maintenance: collection
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/python benchmarks/maintenance.py $(BENCH_MAINTENANCE_ARGS)

clean:
	rm -rf $(BUILD) $(VENV) $(VENV_OLDEST) $(VENV_SANITY) $(VENV_PEER) tests/output
