# metamedia — one command each: install, run, test, lint, bench.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := data/demo-catalog.jsonl.gz
# server processes for `make run` (0 = one per CPU core; each holds ~0.7-1.1 GB)
WORKERS ?= 2
export METAMEDIA_DATA_DIR ?= var
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install run test lint typecheck bench demo-catalog clean

ONNX_MODEL := models/all-MiniLM-L6-v2/manifest.json

WEB_LIBS := models/web-libs/manifest.json

install: $(STAMP) $(ONNX_MODEL) $(WEB_LIBS)

$(STAMP): pyproject.toml constraints.txt Makefile
	@if [ -n "$(APT_PACKAGES)" ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; fi
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned to the CPU build, so nothing pulls CUDA wheels
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[mcp,postgres,ray,dev]"
	touch $(STAMP)

# ONNX export of the packaged embedding weights (fp32, verified against its manifest); queries run on it.
$(ONNX_MODEL): $(STAMP)
	$(BIN)/python -m metamedia.embed.onnx_export

# transformers.js + the onnxruntime-web build it pins, for the offline web app (npm pack, sha256-pinned).
$(WEB_LIBS): $(STAMP) src/metamedia/web/browser_libs.py
	$(BIN)/python -m metamedia.web.browser_libs

APT_PACKAGES ?= redis-server chromium

run: install
	METAMEDIA_AUTH_DISABLED=1 $(BIN)/metamedia serve --demo $(DEMO) --workers $(WORKERS)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/pip install -q -c constraints.txt -e ".[bench]"
	$(BIN)/python bench/run_all.py

# Rebuild the bundled demo catalog and its shipped embeddings from ../shared/data (maintainers only).
demo-catalog: install
	$(BIN)/python scripts/build_demo_catalog.py ../shared/data $(DEMO)
	$(BIN)/python scripts/build_demo_vectors.py $(DEMO)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
