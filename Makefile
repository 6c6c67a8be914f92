# Two commands do the whole set-up on a fresh machine:
#   make quick   install into .venv, then a ~2-minute training run (configs/quick.yaml, W&B offline)
#   make test    install into .venv, then the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build is local on the project's machines; on a CUDA machine set TORCH_SPEC="torch" (or keep your own).
TORCH_SPEC ?= torch==2.13.0
# Where a local copy of the corpus sits next to the checkout, use it as the download mirror (still sha256-checked).
SHARED_CSV := $(abspath ../shared/data/star_trek_transcripts_all_episodes.csv)
ifneq ($(wildcard $(SHARED_CSV)),)
export CHAREXP_CORPUS_URL ?= file://$(SHARED_CSV)
endif

.PHONY: install quick test data bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

data: install
	$(VENV)/bin/charexp data download

quick: install
	$(PY) train.py --config configs/quick.yaml

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/throughput.py

clean:
	rm -rf runs wandb artifacts/*/ .pytest_cache
