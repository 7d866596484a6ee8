# Rhime: `make run` starts the platform locally, `make test` checks everything.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: help bootstrap bootstrap-kube bootstrap-cluster run test lint typecheck unit bench format

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

bootstrap: ## install what this machine lacks (venv, Redis, NATS, FerretDB); quick when done
	@scripts/bootstrap.sh

bootstrap-kube: ## bootstrap, plus a Kubernetes control plane built from Go modules (for tests)
	@scripts/bootstrap.sh --kube

bootstrap-cluster: ## bootstrap-kube, plus a node that runs pods (`rhime cluster up`, tests/cluster)
	@scripts/bootstrap.sh --cluster

run: bootstrap ## run the whole platform locally: gateway on http://localhost:8080
	$(VENV)/rhime up $(ARGS)

test: bootstrap-cluster lint unit ## bootstrap, lint, type-check and run every test

lint: bootstrap ## ruff, mypy (strict) and the import contracts (pyproject.toml)
	$(VENV)/ruff check services operator tests bench
	$(VENV)/ruff format --check services operator tests bench
	$(VENV)/mypy services/rhime operator/rhime_operator
	$(VENV)/lint-imports --no-cache

unit: bootstrap-cluster ## the test suite against real Redis, NATS, MongoDB-wire and Kubernetes servers
	$(VENV)/pytest $(PYTEST_ARGS)

bench: bootstrap-kube ## run the benchmarks (they print numbers)
	@for b in bench/*.py; do echo "== $$b"; PYTHONPATH=. $(VENV)/python $$b --quick || exit 1; done

format: ## format the code
	$(VENV)/ruff format services operator tests bench
	$(VENV)/ruff check --fix services operator tests bench
