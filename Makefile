# Two entry points do all set-up on a fresh Debian machine with Python 3.11, gcc and make:
#   make demo   - compile -> simulate -> report -> Verilog on the built-in digits model
#   make test   - the whole pytest suite, cosimulation included
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
JOBS   ?= 2

.PHONY: demo test reports bench setup clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 2; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/atsnn demo

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q --timeout=900

reports: $(STAMP)
	$(VENV)/bin/atsnn reports --out reports

bench: $(STAMP)
	$(PY) benchmarks/bench_hwsim.py

clean:
	rm -rf build runs out .pytest_cache
