# Two commands do the whole set-up on a fresh machine:
#   make quick   install into .venv, then a training run (configs/quick.yaml, W&B offline): 46-90 s on 2 idle CPU cores
#   make test    install into .venv, then ruff (lint + import order) and the test suite
#   make test-slurm the SLURM cluster tests (tests/sweep/test_slurm_cluster.py): needs root and Debian's packages
#   make test-min the test suite in .venv-min, on the lowest versions pyproject.toml allows (every >= floor as ==)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build is local on the project's machines; on a CUDA machine set TORCH_SPEC="torch" (or keep your own).
TORCH_SPEC ?= torch==2.13.0
VENV_MIN ?= .venv-min
PY_MIN := $(VENV_MIN)/bin/python
# pyproject.toml's dependencies and dev extra, each ">=" floor rewritten as "==": pip has no lowest-version resolution.
FLOORS := import re, sys; tomllib = __import__("tomllib" if sys.version_info >= (3, 11) else "pip._vendor.tomli", fromlist=["load"]); \
	p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	print("\n".join(re.sub(r"\s*>=\s*", "==", d) for d in p["dependencies"] + p["optional-dependencies"]["dev"]))
# Where a local copy of the corpus sits next to the checkout, use it as the download mirror (still sha256-checked).
SHARED_CSV := $(abspath ../shared/data/star_trek_transcripts_all_episodes.csv)
ifneq ($(wildcard $(SHARED_CSV)),)
export CHAREXP_CORPUS_URL ?= file://$(SHARED_CSV)
endif

.PHONY: install quick test test-slurm test-min data bench clean

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

# Two pytest-xdist workers, one test file each at a time: every test trains on one thread, and one process
# alone keeps 2 cores only about half busy (it waits on subprocesses and W&B). TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
PYTEST_ARGS := -q -n $(TEST_WORKERS) --dist loadfile

# The real-cluster SLURM tests start daemons and run sweeps (about 100 s): a step of their own, make test-slurm.
test: install
	$(PY) -m ruff check .
	CHAREXP_SLURM_CLUSTER=0 $(PY) -m pytest $(PYTEST_ARGS)

test-slurm: install
	CHAREXP_SLURM_CLUSTER=1 $(PY) -m pytest -q tests/sweep/test_slurm_cluster.py

# A fresh venv each time, so that nothing newer is left over from an earlier install.
test-min:
	rm -rf $(VENV_MIN)
	$(PYTHON) -m venv $(VENV_MIN)
	$(PY_MIN) -m pip install -q --upgrade pip
	$(PY_MIN) -c '$(FLOORS)' > $(VENV_MIN)/floors.txt
	$(PY_MIN) -m pip install -q "$(TORCH_SPEC)"
	$(PY_MIN) -m pip install -q -r $(VENV_MIN)/floors.txt
	$(PY_MIN) -m pip install -q --no-deps -e .
	$(PY_MIN) -m pip check
	$(PY_MIN) -m pip freeze > $(VENV_MIN)/freeze.txt
	$(PY_MIN) -m ruff check --no-cache .
	CHAREXP_SLURM_CLUSTER=0 $(PY_MIN) -m pytest $(PYTEST_ARGS) -p no:cacheprovider

bench: install
	$(PY) benchmarks/throughput.py

clean:
	rm -rf runs wandb artifacts/*/ .pytest_cache
