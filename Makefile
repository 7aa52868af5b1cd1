# agogosml — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
GIT_SHA := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LOCKS := requirements/build.txt requirements/dev.txt
# The OIP clients that cannot share the dev lock (kserve), in a virtual environment of their
# own outside the clone, named by its lock's hash; tests/clients.py finds it the same way.
CLIENTS_VENV := $(HOME)/.cache/agogosml/clients-$(shell sha1sum requirements/clients.txt | cut -c1-12)
# Reinstall whenever a lock (or the project's own metadata, for `-e .`) changes.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCKS) | sha1sum | cut -c1-12)
# The locks: Linux x86_64, CPython 3.11 (the images' and CI's platform), every file hashed.
# dev.txt (everything) is resolved first; the others are constrained to its versions.
COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 \
  --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock" \
  $(if $(UPGRADE),--upgrade)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install lock clients kafka spark helm kube postgres chromium run test test-fast lint bench sizes images compose clean

help: ## show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(LOCKS)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements/build.txt -r requirements/dev.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create the virtual environment from the dev lock, then the project

lock: ## regenerate requirements/*.txt from pyproject.toml (UPGRADE=1: newest allowed)
	test -x $(BIN)/uv || $(MAKE) install
	$(COMPILE) pyproject.toml --extra dev -o requirements/dev.txt
	$(COMPILE) pyproject.toml -c requirements/dev.txt -o requirements/core.txt
	$(COMPILE) pyproject.toml --extra app -c requirements/dev.txt -o requirements/app.txt
	$(COMPILE) pyproject.toml --extra rollout -c requirements/dev.txt -o requirements/rollout.txt
	$(COMPILE) pyproject.toml --extra monitor -c requirements/dev.txt -o requirements/monitor.txt
	$(COMPILE) pyproject.toml --extra privacy -c requirements/dev.txt -o requirements/reader.txt
	$(COMPILE) pyproject.toml --extra spark -c requirements/dev.txt -o requirements/spark.txt
	$(COMPILE) requirements/build.in -c requirements/dev.txt -o requirements/build.txt
	$(COMPILE) requirements/clients.in -o requirements/clients.txt

clients: ## the OIP clients that cannot share the dev lock (kserve) in ~/.cache/agogosml/clients-<hash> (once)
	@if [ ! -f $(CLIENTS_VENV)/.complete ]; then \
	  command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }; \
	  rm -rf $(CLIENTS_VENV) && $(PYTHON) -m venv $(CLIENTS_VENV) && \
	  $(CLIENTS_VENV)/bin/pip install -q --require-hashes -r requirements/clients.txt && \
	  touch $(CLIENTS_VENV)/.complete; fi

kafka: ## fetch Apache Kafka's broker from Maven Central into ~/.cache/agogosml (once)
	@scripts/fetch-kafka.sh >/dev/null

spark: ## fetch Spark's Kafka connector from Maven Central into ~/.cache/agogosml (once)
	@scripts/fetch-spark.sh >/dev/null

helm: ## build Helm once from the Go module proxy into ~/.cache/agogosml/bin
	@scripts/fetch-helm.sh >/dev/null

kube: ## build kube-apiserver and install etcd into ~/.cache/agogosml (once; ~6-8 min cold)
	@scripts/fetch-kube.sh >/dev/null

postgres: ## make sure PostgreSQL's server binaries are here (Debian's postgresql, once; as root)
	@scripts/fetch-postgres.sh >/dev/null

chromium: ## make sure a headless Chromium is here (Debian's chromium, once; as root)
	@scripts/fetch-chromium.sh >/dev/null

run: install kafka ## the whole pipeline locally: Kafka, MLflow, demo model, 4 services, producer (DRIFT_AFTER=N: drift from event N)
	$(if $(DRIFT_AFTER),AGOGOSML_DEMO_DRIFT_AFTER=$(DRIFT_AFTER)) $(BIN)/agogosml local-stack

lint: install ## ruff and mypy --strict
	$(BIN)/ruff check agogosml tests bench
	$(BIN)/mypy

test: install kafka spark helm kube postgres chromium clients lint ## lint, then the whole suite against real Kafka and a real Kubernetes API server
	$(BIN)/pytest

test-fast: install lint ## lint, then the tests that need no broker, MLflow model, API server or processes (~1 min)
	$(BIN)/pytest -m "not kafka and not mlflow and not k8s and not slow and not postgres and not browser"

bench: install kafka spark ## pipeline vs raw Kafka, scoring rows/s, cold start, the monitor (store, drift, ingest), PII recognizers, lineage lookups, forgetting a subject with sharded training, the Spark engine against the trio
	$(BIN)/python -m bench.pipeline  # also runs bench.scoring on its model (--quick: short runs)
	$(BIN)/python -m bench.casting
	$(BIN)/python -m bench.onnx_scoring
	$(BIN)/python -m bench.hops
	$(BIN)/python -m bench.coldstart  # service start to ready, first event after idle (KEDA from zero)
	$(BIN)/python -m bench.store
	$(BIN)/python -m bench.drift
	$(BIN)/python -m bench.monitor
	$(BIN)/python -m bench.pii
	$(BIN)/python -m bench.lineage
	$(BIN)/python -m bench.forget
	$(BIN)/python -m bench.spark

sizes: install ## installed size of each service image's environment, before/after the locks
	$(BIN)/python -m bench.image_sizes

images: ## build the three service images, tagged with the version and git sha (needs Docker)
	set -o pipefail; $(PYTHON) -m agogosml.services.registry images | \
	while read -r target image; do \
	  docker build --target $$target --build-arg VERSION=$(VERSION) \
	    --build-arg GIT_SHA=$(GIT_SHA) -t agogosml/$$image:$(VERSION) . </dev/null || exit 1; done

compose: install ## the whole pipeline in containers with Prometheus and Grafana (needs Docker)
	@mkdir -p var/privacy
	@for key in keyring kek; do test -f var/privacy/$$key.yaml || { \
	  $(BIN)/agogosml gdpr keygen > var/privacy/$$key.yaml && echo "made var/privacy/$$key.yaml"; }; \
	  chmod 0644 var/privacy/$$key.yaml; done  # the containers' user (uid 10001) reads them
	AGOGOSML_PIPELINE_TOKEN=$${AGOGOSML_PIPELINE_TOKEN:-$$(openssl rand -hex 32)} \
	  AGOGOSML_VERSION=$(VERSION) AGOGOSML_GIT_SHA=$(GIT_SHA) docker compose up --build

clean: ## remove local state (var/) and the virtual environment
	rm -rf var $(VENV)
