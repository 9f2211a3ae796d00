# A Study of Attention — the commands (their contracts: ARCHITECTURE.md, "Commands").
# `make book` and `make test` do all their own set-up on a machine with Python 3.11 and make.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export STUDY_MODELS ?= offline
# `?=`: a reader fetching hub weights can override them (HF_HUB_OFFLINE=0 TRANSFORMERS_OFFLINE=0 make ...).
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1
CHAPTERS := $(wildcard chapters/*.md)

.PHONY: setup site-assets models verify-models bench-env book test test-lib test-sync test-chapters test-site execute bench lint clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

setup: $(STAMP)

## Retrain the offline zoo's shipped seeds from their recipes into the cache ($$STUDY_CACHE or
## ~/.cache/attention-study), reusing entries already there. Chapters and tests never need this:
## they load the weights shipped in lib/attention_study/data/zoo (checked against their sha256).
models: setup
	$(BIN)/python -m attention_study.zoo train

## Retrain seed 0 of each trained model from scratch (minutes) and check the recipe's bars; prints
## whether the bytes equal the shipped weights on this processor. Exit 1 if a bar is missed.
verify-models: setup
	$(BIN)/python -m attention_study.zoo verify

## The site's browser assets (MathJax), pinned by site/package-lock.json, into site/node_modules.
SITE_ASSETS := site/node_modules/.package-lock.json
$(SITE_ASSETS): site/package.json site/package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js) is needed to install the site's MathJax copy: apt-get install nodejs npm" >&2; exit 1; }
	npm ci --prefix site --no-audit --no-fund --loglevel=error
	touch $@

site-assets: $(SITE_ASSETS)

## The website, from the committed chapter outputs, into _build/html. Nothing is trained: the
## chapters' models ship with the library.
book: setup site-assets
	$(BIN)/jupyter-book build . --builder html -W -n --keep-going

test: setup lint test-lib test-sync test-chapters test-site

test-lib:
	$(BIN)/python -m pytest tests -q -p no:cacheprovider --ignore=tests/site

test-sync:
	$(BIN)/python tests/check_pairs.py $(CHAPTERS)

test-chapters:
	$(BIN)/python -m pytest --nbval chapters --nbval-sanitize-with tests/nbval_sanitize.cfg -p nbval_tolerance -p no:cacheprovider -q

## Website checks on the built site: assets, links, downloads, and every page in headless Chromium.
test-site: book
	$(BIN)/python -m pytest tests/site -q -p no:cacheprovider

## Re-execute every chapter and refresh its committed outputs.
execute: setup
	@for md in $(CHAPTERS); do \
	  echo "executing $$md"; \
	  $(BIN)/jupytext --sync "$$md" >/dev/null && \
	  $(BIN)/jupyter-execute --inplace --timeout=600 "$${md%.md}.ipynb" && \
	  $(BIN)/jupytext --sync "$$md" >/dev/null || exit 1; \
	done

## The peer tools of the benchmark (TransformerLens, nnsight) in their own environment, pinned by
## requirements.txt + benchmarks/requirements-peers.txt, so that they never reach the book's.
BENCH_STAMP := .venv-bench/.installed
$(BENCH_STAMP): requirements.txt benchmarks/requirements-peers.txt pyproject.toml
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r benchmarks/requirements-peers.txt
	.venv-bench/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

bench-env: $(BENCH_STAMP)

bench: setup bench-env site-assets
	$(BIN)/python benchmarks/run.py

## ruff on all the Python (chapters included); mypy on the library (settings in pyproject.toml).
lint: setup
	$(BIN)/ruff check lib tests benchmarks chapters site
	$(BIN)/mypy

clean:
	rm -rf _build
