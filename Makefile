# The two commands of the README, and a few more. Every target installs what it needs first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test check soak failover bench bootstrap services-up services-down unit clean

demo: bootstrap            ## Stream a demo tournament through the whole pipeline
	deploy/with-services.sh $(PY) -m crownstream.demo

test: bootstrap            ## The whole test suite against a real Kafka broker and PostgreSQL
	deploy/with-services.sh $(PY) -m pytest

check: bootstrap           ## Static checks: ruff (lint and format) and mypy (strict on engine, standings, notifications, schemas)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	deploy/typecheck.sh

soak: bootstrap            ## Operational soak scenario: 3 workers scaled 3->2->3, kill -9, broker restart
	deploy/with-services.sh $(PY) -m pytest -m soak -s tests/integration/test_cluster_operations.py

failover: bootstrap       ## Three brokers: leader and coordinator killed, rolling restart, 5 runs (not in `make test`)
	deploy/with-services.sh $(PY) -m pytest -m failover -s tests/integration/test_cluster_failover.py

unit: bootstrap            ## Unit tests only (no broker needed)
	$(PY) -m pytest tests/unit

bench: bootstrap           ## Benchmarks: prints a table of figures beside their baselines
	deploy/with-services.sh $(PY) -m bench

bootstrap:
	deploy/bootstrap.sh

services-up: bootstrap
	deploy/kafka.sh start && deploy/postgres.sh start

services-down:
	-deploy/kafka.sh stop
	-deploy/postgres.sh stop

clean: services-down
	rm -rf .state
