# lstm-optuna: every target installs the virtualenv first when it is missing or stale.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

CONFIG      ?= configs/default.yaml
SPACE       ?= search_spaces/default.yaml
STORAGE     ?= sqlite:///studies.db
STUDY       ?= default
WORKERS     ?= 2
CLUSTER     ?=
N_TRIALS    ?=
TRIAL       ?=
EXPORT_DIR  ?= exports/$(STUDY)
PYTEST_ARGS ?=

N_TRIALS_ARG := $(if $(N_TRIALS),--n-trials $(N_TRIALS),)
TRIAL_ARG    := $(if $(TRIAL),--trial $(TRIAL),)
CLUSTER_ARG  := $(if $(CLUSTER),--cluster $(CLUSTER),)

.PHONY: install optimize worker dashboard export verify report test test-all bench lint clean

install: $(STAMP)

# torch is installed first and pinned: the CPU wheel of 2.13.0 is what every other
# package then sees, so nothing pulls a CUDA build in behind our back.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

optimize: install
	$(PY) -m optimize run --config $(CONFIG) --space $(SPACE) --storage $(STORAGE) \
		--study-name $(STUDY) --workers $(WORKERS) $(N_TRIALS_ARG) $(CLUSTER_ARG)

worker: install
	$(PY) -m optimize worker --config $(CONFIG) --space $(SPACE) --storage $(STORAGE) \
		--study-name $(STUDY) $(N_TRIALS_ARG)

dashboard: install
	$(VENV)/bin/optuna-dashboard $(STORAGE)

export: install
	$(PY) -m optimize export --storage $(STORAGE) --study-name $(STUDY) $(TRIAL_ARG) --out $(EXPORT_DIR)

verify: install
	$(PY) -m optimize verify --export $(EXPORT_DIR) $(VERIFY_ARGS)

report: install
	$(PY) -m optimize report --storage $(STORAGE) --study-name $(STUDY)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: install
	$(PY) -m pytest -m "" $(PYTEST_ARGS)

bench: install
	$(PY) -m benchmarks

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf .cache .pytest_cache lightning_logs logs
