# make train: set up .venv and run the main job; make test: set up and run the default tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: train test test-unit test-integration test-slurm test-slow clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

train: $(STAMP)
	$(PY) -m edc.train

test: $(STAMP)  # the layer contracts (pyproject.toml), then the default suite
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

test-unit: $(STAMP)
	$(PY) -m pytest -q -m "unit and not slow and not slurm"

test-integration: $(STAMP)
	$(PY) -m pytest -q -m "integration and not slow and not slurm"

test-slurm: $(STAMP)  # starts a single-node SLURM (root, Debian packages): scripts/slurm/start.sh
	$(PY) -m pytest -q -m slurm

test-slow: $(STAMP)  # DDP on the CPU, the package installed from its wheel
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) .pytest_cache
