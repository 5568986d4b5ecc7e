# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
VENV := .venv
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test system setup lint typecheck pytest bench clean

## Install everything and serve the dashboard with demo data (SQLite, local storage).
demo: setup
	$(VENV)/bin/talkturo serve --demo

## Every test, lint and type check (after installing or checking the system packages they need).
test: system
	$(MAKE) setup lint typecheck pytest

## Debian packages and PostgreSQL for the tests: installed as root with apt, otherwise checked.
system:
	@bash .ci/setup-system

setup: $(VENV)/.synced static/vendor/.copied

$(VENV)/.synced: pyproject.toml uv.lock
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --user --quiet uv
	$(UV) sync --frozen
	@touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

static/vendor/.copied: node_modules/.package-lock.json
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
	@touch $@

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy

pytest:
	$(VENV)/bin/pytest

bench: setup
	for b in bench/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) node_modules static/vendor
