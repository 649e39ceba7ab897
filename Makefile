# Two commands on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0

.PHONY: setup serve serve-tiny test test-unit lint format loadtest bench bench-engine soak clean

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

serve: setup
	@echo ">> starting the CPU profile: http://127.0.0.1:8000  (API docs: http://127.0.0.1:8000/docs; port set in serve_config.cpu.yaml)"
	$(BIN)/serve run serve_config.cpu.yaml

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

test: setup lint
	$(BIN)/python -m pytest -q -ra tests

# The inner loop: unit tests only, no Ray cluster, no lint.
test-unit: setup
	$(BIN)/python -m pytest -q -ra -m "not integration" tests

# Performance (not tests): each starts what it measures and stops it again. See BENCHMARKS.md.
DURATION ?= 60
loadtest: setup
	$(BIN)/python scripts/loadtest.py --duration $(DURATION)

bench: setup
	$(BIN)/python scripts/bench_service.py

bench-engine: setup models/bench
	$(BIN)/python scripts/bench_engine.py --model models/bench --batch-sizes 1 8 32 --continuous

soak: setup
	$(BIN)/python scripts/soak.py --duration $(if $(filter command line,$(origin DURATION)),$(DURATION),1200)

clean:
	rm -rf $(VENV) data models/tiny models/bench loadtests/results bench_results
