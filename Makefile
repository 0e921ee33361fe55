# Everything a person runs. The first target that needs the Python environment creates it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install install-bench demo bench up down status test test-unit test-integration chaos lint format asyncapi docs clean \
	container-engine container-api-start container-api-stop install-containers compose-up compose-down test-compose \
	test-containers-ready \
	test-cluster \
	k8s-manifests k8s-validate

help:
	@echo "make demo   - start everything, run 200 orders through the pipeline, print a summary, stop"
	@echo "make test   - lint, unit tests, then integration and end-to-end tests on the real stack"
	@echo "              (OMS_TEST_STACK=containers make test: Kafka and PostgreSQL in containers, by testcontainers)"
	@echo "make up     - start Kafka, PostgreSQL, the SMTP sink, the four services and the simulator"
	@echo "              (OMS_KAFKA_BROKERS=3 make up: Kafka as a cluster of three brokers)"
	@echo "make down   - stop all of it (data is kept; 'python -m deploy.local.stack down --purge' drops it)"
	@echo "make status - what is running"
	@echo "make bench  - measure the pipeline against this machine (~20 min; BENCH_OPTIONS=--quick for ~2 min)"
	@echo "make chaos  - 2,800 orders (800 at once) through two instances of every service while 100 faults are injected, then"
	@echo "              every invariant checked (SEED=n replays a run)"
	@echo "make compose-up     - the pipeline in containers: 3 Kafka brokers, PostgreSQL, services, Prometheus"
	@echo "                      (COMPOSE_OPTIONS='--scale allocation=3'); make compose-down stops it"
	@echo "make test-compose   - compose up, orders delivered, allocation scaled to 3, down (1-3 min, not in make test)"
	@echo "make test-cluster   - three brokers, orders flowing, the leading broker killed and back; nothing lost or"
	@echo "                      doubled, the pause measured (~2.5 min, not in make test)"
	@echo "make k8s-manifests  - write deploy/kubernetes/base/generated/ from the topic registry and the services"
	@echo "make k8s-validate   - render the Kubernetes overlay and check every object against the API and CRD schemas"

$(VENV)/.installed: pyproject.toml requirements.lock deploy/local/bootstrap.sh
	bash deploy/local/bootstrap.sh
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The benchmark's own tools (the Kafka load generator's client, the chart, the profiler), on top of the project's.
$(VENV)/.bench-installed: $(VENV)/.installed
	$(VENV)/bin/pip install --quiet -c requirements.lock -e '.[dev,bench]'
	touch $@

install-bench: $(VENV)/.bench-installed

demo: install
	$(PY) -m deploy.local.demo

# Not part of `make test`: it takes the whole machine for its measurement. Results go to docs/benchmarks/.
BENCH_OPTIONS ?=
bench: install-bench
	$(PY) -m deploy.bench $(BENCH_OPTIONS)

up: install
	$(PY) -m deploy.local.stack up
	$(PY) -m deploy.local.processes start

down:
	-$(PY) -m deploy.prometheus.local stop
	-$(PY) -m deploy.local.processes stop
	$(PY) -m deploy.local.stack down

status: install
	$(PY) -m deploy.local.stack status
	$(PY) -m deploy.local.processes status

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test-unit: install
	$(VENV)/bin/pytest tests/unit

# OMS_TEST_STACK=containers: the session's Kafka and PostgreSQL in containers started by testcontainers from the
# project's images (docs/containers.md), the engine, its API and those images made ready first (each step skipped
# when done), and the session's own tests (tests/containers) run too. Unset: the native stack, as always.
ifeq ($(OMS_TEST_STACK),containers)
export OMS_TEST_STACK
TEST_STACK_READY := test-containers-ready
TEST_STACK_TESTS := tests/containers
endif

test-integration: install $(TEST_STACK_READY)
	$(VENV)/bin/pytest tests/integration tests/e2e $(TEST_STACK_TESTS)

test: lint test-unit test-integration

# Not part of `make test`: its own stack of three brokers (docs/kafka-cluster.md); a one-broker stack running on the
# same OMS_STATE_DIR must be stopped first (`make down`).
test-cluster: install
	OMS_KAFKA_BROKERS=3 $(VENV)/bin/pytest -s tests/cluster

# The full fault-injection run (the short one is tests/e2e/test_chaos.py, part of `make test`).
chaos: install
	$(PY) -m deploy.chaos $(if $(SEED),--seed $(SEED))

# The container engine (deploy/containers/bootstrap.sh): Docker where its daemon answers, else podman from Debian
# with a base image built from Debian's packages; and podman's Docker-compatible API for the tools that need it.
container-engine:
	bash deploy/containers/bootstrap.sh install

container-api-start: container-engine
	bash deploy/containers/bootstrap.sh api-start

container-api-stop:
	bash deploy/containers/bootstrap.sh api-stop

# podman-compose and testcontainers (the containers extra), on top of the project's tools.
$(VENV)/.containers-installed: $(VENV)/.installed
	$(VENV)/bin/pip install --quiet -c requirements.lock -e '.[dev,containers]'
	touch $@

install-containers: $(VENV)/.containers-installed

test-containers-ready: install-containers container-api-start
	$(PY) -m deploy.containers.compose build kafka-1 postgres

COMPOSE_OPTIONS ?=
compose-up: install-containers container-engine
	$(PY) -m deploy.containers.compose up $(COMPOSE_OPTIONS)

compose-down:
	$(PY) -m deploy.containers.compose down $(COMPOSE_OPTIONS)

# Not part of `make test`: it builds the images and runs the whole compose stack (minutes).
test-compose: install-containers container-engine
	OMS_TEST_COMPOSE=1 $(VENV)/bin/pytest -s tests/compose

# Kubernetes (docs/kubernetes.md). The unit tests validate the manifests too (tests/unit/test_kubernetes_manifests.py);
# kustomize and the schemas are fetched in pinned versions into the cache on first use (deploy/kubernetes/tools.py).
k8s-manifests: install
	$(PY) -m deploy.kubernetes.generate

K8S_OVERLAY ?= deploy/kubernetes/overlays/production
k8s-validate: install
	$(PY) -m deploy.kubernetes.validate $(K8S_OVERLAY)

asyncapi: docs

docs: install
	$(PY) -m shared.contracts.asyncapi > docs/asyncapi.json
	$(PY) -m shared.contracts.topology docs/architecture.md
	$(PY) -m oms_kit.asyncapi > docs/kit-asyncapi.json

clean: down
	$(PY) -m deploy.local.stack down --purge
	rm -rf $(VENV)
