# The project's verbs. Every target sets up .venv first (again only when pyproject.toml changes).
PYTHON := .venv/bin/python

.PHONY: run test test-adaptive test-integration benchmark-trading build-adaptive lint test-tools \
	validate-deployment k8s-manifests

.venv/.installed: pyproject.toml
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && touch $@

run: .venv/.installed
	$(PYTHON) manage.py run_exchange

test: .venv/.installed test-tools
	$(PYTHON) -m pytest -q

# promtool and amtool, which the tests run on deploy/prometheus and deploy/alertmanager, Chromium, which the
# browser tests of the control screens drive (tests/browser), and podman with what it needs to build and run the
# image here (tests/containers, scripts/build-image.sh): Debian's packages,
# installed once when this runs as root (apt's lists are refreshed only if the first try fails). kubectl, whose
# built-in kustomize renders k8s/ in the tests, comes with these machines; Debian's kubernetes-client is older
# than the kustomize features k8s/ uses, so a machine without kubectl needs it from Kubernetes' own packages.
test-tools:
	@command -v promtool >/dev/null && command -v amtool >/dev/null && command -v chromium >/dev/null && \
	  command -v podman >/dev/null && command -v mmdebstrap >/dev/null && command -v runc >/dev/null || { \
	  [ "$$(id -u)" = 0 ] && { $(APT_INSTALL) || { apt-get update -q >/dev/null && $(APT_INSTALL); }; }; } || \
	  echo "missing: install Debian's prometheus, prometheus-alertmanager, chromium, podman, runc, mmdebstrap"
	@command -v kubectl >/dev/null || echo "kubectl missing: the tests of k8s/ need kubectl 1.27 or newer"

APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus \
	prometheus-alertmanager chromium podman runc iptables catatonit mmdebstrap >/dev/null

test-adaptive: .venv/.installed
	$(PYTHON) -m pytest -q tests/matching -k adaptive

# Exit code 5 means "no tests collected": the folder may hold none yet.
test-integration: .venv/.installed
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/integration || [ $$? -eq 5 ]

# `make benchmark-trading SECTION=http` runs one section (engine, pipeline, migration, http).
benchmark-trading: .venv/.installed
	$(PYTHON) -m benchmarks.trading $(if $(SECTION),--section $(SECTION))

# The guide's success criteria against a running instance (`make run` in another shell, or EXCHANGE_URL and
# EXCHANGE_TOKEN for a deployment), e.g. `make validate-deployment ARGS="--rate=500 --min-throughput=500"`.
validate-deployment: .venv/.installed test-tools
	$(PYTHON) manage.py validate_deployment $(ARGS)

# The image of every role (Dockerfile): the engine compile-checked first, then `docker build` where a Docker
# daemon answers; elsewhere podman, from a base image made of Debian's packages (scripts/build-image.sh).
IMAGE ?= adaptive-trading:$(shell git describe --always --dirty 2>/dev/null || echo dev)
build-adaptive: .venv/.installed
	$(PYTHON) -m compileall -q matching && $(PYTHON) -c "import matching.adaptive_book"
	@if command -v docker >/dev/null && docker info >/dev/null 2>&1; then docker build -t $(IMAGE) .; \
	  else scripts/build-image.sh --tag=localhost/$(IMAGE); fi

lint: .venv/.installed
	.venv/bin/ruff check .
	.venv/bin/mypy

# The web Deployment's variants, rendered from k8s/web/<variant> into the files the deployment guide applies
# (tests/test_k8s.py checks they are up to date). Needs kubectl (its built-in kustomize).
K8S_VARIANTS := production/adaptive-trading-service blue/adaptive-trading-service green/adaptive-trading-service \
	canary/adaptive-trading-canary
k8s-manifests:
	@for target in $(K8S_VARIANTS); do variant=$${target%%/*}; mkdir -p k8s/$$variant; \
	  { echo "# Rendered from k8s/web/$$variant by \`make k8s-manifests\`: edit there, not here."; \
	    kubectl kustomize k8s/web/$$variant; } > k8s/$$target.yaml || exit 1; echo "k8s/$$target.yaml"; done
