# argyro: two entry points. `make demo` sets up and runs the main job; `make test` runs all tests.
# Both are idempotent: the virtual environment is created once and reused.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.argyro-installed

.PHONY: install demo test fireworks-suite bench clean-demo

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch pinned: the CPU build that lies on local disk (never a bare `torch`)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	# FireWorks' own rlaunch/lpad in this venv get argyro's race-free id counters
	$(VENV)/bin/argyro install-hook
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/argyro demo --dir demo-output

test: $(STAMP)
	$(PY) -m pytest -q --durations=30

fireworks-suite: $(STAMP)
	$(PY) tests/fireworks_suite.py

bench: $(STAMP)
	$(PY) bench/fireworks_throughput.py

clean-demo:
	-$(VENV)/bin/argyro db stop --path demo-output/db
	rm -rf demo-output
