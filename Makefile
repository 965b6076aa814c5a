# attractor_nb: the whole set-up is `make demo` (run a quick experiment end to end) and `make test`.
# VENV defaults to .venv; CI points ATTRACTOR_NB_VENV at a cached venv outside its clone.
VENV ?= $(or $(ATTRACTOR_NB_VENV),.venv)
PY := $(VENV)/bin/python
# pytest workers: notebooks run in parallel; torch uses one thread per worker then
PYTEST_WORKERS ?= 2
# `make serve-docs DOCS_PORT=8001` for another port
DOCS_PORT ?= 8000

.PHONY: install demo test test-fast export clean-nbs check-sync gpu-wheels docs serve-docs

install:
	@bash tools/ensure_venv.sh $(VENV)
	@bash tools/ensure_system_data.sh

demo: install
	$(VENV)/bin/attractor-nb demo --no-progress

test: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests

test-fast: install
	$(PY) -m pytest -m "not notebook" tests

export: install
	$(VENV)/bin/nbdev-export
	$(PY) tools/make_readme.py

clean-nbs: install
	$(VENV)/bin/nbdev-clean

gpu-wheels:
	bash tools/gpu_wheels.sh

# the documentation site, offline (no Quarto): export, process the notebooks, convert, mkdocs build --strict -> _docs/
docs: export
	$(PY) tools/docs.py build

serve-docs: docs
	$(PY) tools/docs.py serve --port $(DOCS_PORT)
