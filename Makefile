# SalsaNor Beat Machine backend. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
RUN := $(UV) run --frozen --no-sync

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

install: $(UV) ## Install the service and its dependencies (uv.lock)
	$(UV) sync --frozen --no-dev

install-dev: $(UV) ## Install with the development tools
	$(UV) sync --frozen

run: install ## Migrate and serve the API on http://127.0.0.1:8000/api (embedded set-up)
	$(RUN) beatmachine serve

migrate: install ## Upgrade the database to the newest schema
	$(RUN) beatmachine migrate

worker: install ## Run the background job worker
	$(RUN) beatmachine worker

test: install-dev ## Run the whole test suite
	$(RUN) pytest -n $${PYTEST_WORKERS:-4}

lint: install-dev ## ruff check, format check and the import contracts
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

typecheck: install-dev ## mypy --strict on the package
	$(RUN) mypy

format: install-dev ## Format the code
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

bench: install-dev ## Benchmarks against PostgreSQL + Redis (see bench/README.md)
	$(RUN) python bench/auth_profile.py

bench-events: install-dev ## Play throughput with and without event recording, one run
	$(RUN) python bench/events_overhead.py

bench-social: install-dev ## Feed, fan-out and followers at 100,000 followers and 1,000,000 activities
	$(RUN) python bench/social_scale.py

bench-analytics: install-dev ## Analytics rollup and reports at 100,000 and at 11,000,000 usage events
	$(RUN) python bench/analytics_scale.py

bench-feed-embedded: install-dev ## Feed delivery to 100,000 followers on the embedded defaults (SQLite)
	$(RUN) python bench/feed_delivery_embedded.py

bench-jobs: install-dev ## Job queue: jobs per second and enqueue-to-start latency, 2 workers
	$(RUN) python bench/jobs_throughput.py

clean: ## Remove local state (database, outbox, generated secret)
	rm -rf var

.PHONY: help install install-dev run migrate worker test lint typecheck format bench bench-events bench-social bench-analytics bench-feed-embedded bench-jobs clean
