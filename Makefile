# aerec: `make run` runs the whole nightly job on generated sample data; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# Where a CPU-only host finds the CPU build of torch when no local wheel provides it.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
RUN_DIR ?= run
SYNTH ?= --users 2000 --items 1500 --ratings 150000 --seed 7

.PHONY: run test lint bench clean

$(BIN)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@# torch first, so the train extra's `torch>=` requirement is already met and pulls nothing.
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		echo "NVIDIA GPU found: installing the CUDA build of torch $(TORCH_VERSION)"; \
		$(BIN)/pip install -q "torch==$(TORCH_VERSION)"; \
	else \
		echo "no NVIDIA GPU: installing the CPU build of torch $(TORCH_VERSION)"; \
		$(BIN)/pip install -q "torch==$(TORCH_VERSION)+cpu" 2>/dev/null \
		|| $(BIN)/pip install -q "torch==$(TORCH_VERSION)+cpu" --extra-index-url $(TORCH_CPU_INDEX); \
	fi
	$(BIN)/pip install -q -e '.[train,dev,ray]'
	touch $@

run: $(BIN)/.installed
	mkdir -p $(RUN_DIR)/data
	$(BIN)/aerec synth $(SYNTH) --out $(RUN_DIR)/data/ratings.csv
	$(BIN)/train-model --ratings $(RUN_DIR)/data/ratings.csv --out $(RUN_DIR)/checkpoint --split user-temporal:0.2
	$(BIN)/export-onnx --checkpoint $(RUN_DIR)/checkpoint --out $(RUN_DIR)/model.onnx --k 10
	$(BIN)/score-all --model $(RUN_DIR)/model.onnx --ratings $(RUN_DIR)/data/ratings.csv --out $(RUN_DIR)/recs.parquet
	$(BIN)/aerec show-recs --recs $(RUN_DIR)/recs.parquet --movies $(RUN_DIR)/data/movies.csv --users 3

test: lint
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check aerec tests bench
	$(BIN)/ruff format --check aerec tests bench
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python bench/data_pipeline.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/score.py

clean:
	rm -rf $(RUN_DIR) $(VENV)
