# `make demo` and `make test` work from a fresh clone with only Python 3.11 installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo lint test test-all clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# The CPU wheel first: a plain `torch` requirement would otherwise pull a multi-GB CUDA build.
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf demo-out
	$(BIN)/thresher run examples/youtube/thresher.yaml --db demo-out/thresher.duckdb --out demo-out/export
	$(BIN)/python examples/train_worker.py demo-out/export --eval-db demo-out/thresher.duckdb --eval-split test
	$(BIN)/python examples/train_worker.py demo-out/export --eval-db demo-out/thresher.duckdb --eval-split test --ignore-weights
	$(BIN)/thresher sql "select split, count(*) as n from items group by split order by split" --db demo-out/thresher.duckdb
	$(BIN)/thresher report examples/youtube/thresher.yaml --db demo-out/thresher.duckdb --out demo-out/report.html

# Pyflakes-level errors everywhere; types on the ground floor and the stage contracts (see CONTRIBUTING.md).
TYPED := core reweighting/detect/base.py reweighting/detect/registry.py reweighting/select/base.py \
	reweighting/select/registry.py labeling/lf/base.py labeling/llm/backend.py labeling/llm/factory.py pipeline/runner.py \
	pipeline/starter.py thresher/plots.py thresher/testing/contracts.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy $(TYPED)

# The fast tier: every unmarked test (no slow, quality, prefect or gpu marker), a few minutes on 2 cores.
FAST := not slow and not quality and not prefect and not gpu

test: lint
	$(BIN)/python -m pytest -q -m "$(FAST)"

# Every test: the fast tier, then the slow, quality, Prefect and GPU tiers (CI runs this).
test-all: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo-out .pytest_cache
