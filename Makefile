# One entry point: every target creates or updates .venv by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium
CADDY ?= /usr/bin/caddy

.PHONY: venv fmt lint test test-fast demo bench browser caddy clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,client-tests]'
	touch $(STAMP)

venv: $(STAMP)

fmt: $(STAMP)  ## rewrite files in place
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

lint: $(STAMP)  ## the CI gate; changes nothing
	$(BIN)/ruff format --check . && $(BIN)/ruff check . && $(BIN)/mypy && $(BIN)/lint-imports

browser:  ## make sure Debian's chromium is there for the browser tests
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core; \
	else \
		echo "The browser tests need Debian's chromium at $(CHROMIUM)."; \
		echo "Install it with:  sudo apt-get install chromium"; \
		echo "(or set CHROMIUM=/path/to/chromium); they are skipped until then, except in CI."; \
	fi

caddy:  ## make sure Debian's caddy is there for the buffering-proxy test (C42)
	@if [ -x "$(CADDY)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's caddy for the buffering-proxy test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq caddy; \
	else \
		echo "The buffering-proxy test needs Debian's caddy at $(CADDY)."; \
		echo "Install it with:  sudo apt-get install caddy"; \
		echo "(or set CADDY=/path/to/caddy); it is skipped until then, except in CI."; \
	fi

test: $(STAMP) browser caddy  ## the whole suite
	PORTAL_CHROMIUM=$(CHROMIUM) $(BIN)/pytest

test-fast: $(STAMP)  ## the suite without the browser
	$(BIN)/pytest -m "not browser and not slow"

demo: $(STAMP)  ## the emulator and the portal on embedded defaults
	$(BIN)/consent-portal demo

bench: $(STAMP)  ## performance ratios; writes docs/performance.md
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
