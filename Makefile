# `make test`  - create .venv if missing, install pinned dependencies, run the test suite.
# `make demo`  - create .venv if missing, install, run the end-to-end demo into demo_output/.
# `make bench` - run the benchmarks under Testing/benchmarks/ (ratios against the named peers).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# a fresh 3D Slicer's Python (only the packages Slicer bundles, plus slicer-core) for Testing/test_fresh_slicer.py
FRESH := .venv-fresh-slicer
FRESH_STAMP := $(FRESH)/.installed
export nnUNet_n_proc_DA ?= 2
export nnUNet_def_n_proc ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: install test demo bench clean

install: $(STAMP) $(FRESH_STAMP)

$(STAMP): pyproject.toml requirements.txt requirements-test.txt requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and alone, so nothing else chooses another build of it
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q torch==2.13.0 -r requirements.txt -r requirements-test.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

$(FRESH_STAMP): Testing/fresh_slicer/requirements.txt
	test -x $(FRESH)/bin/python || $(PYTHON) -m venv $(FRESH)
	$(FRESH)/bin/python -m pip install -q -r Testing/fresh_slicer/requirements.txt
	touch $(FRESH_STAMP)

test: $(STAMP) $(FRESH_STAMP)
	$(PY) -m pytest Testing -q --durations=15

demo: $(STAMP)
	$(PY) Scripts/demo.py --out demo_output --overwrite

bench: $(STAMP)
	for b in Testing/benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(FRESH) demo_output .pytest_cache
