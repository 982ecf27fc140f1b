# The project's verbs. Every target sets up .venv first (again only when pyproject.toml changes).
PYTHON := .venv/bin/python

.PHONY: run test test-adaptive test-integration benchmark-trading build-adaptive lint monitoring-tools \
	validate-deployment

.venv/.installed: pyproject.toml
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && touch $@

run: .venv/.installed
	$(PYTHON) manage.py run_exchange

test: .venv/.installed monitoring-tools
	$(PYTHON) -m pytest -q

# promtool and amtool, which the tests run on deploy/prometheus and deploy/alertmanager: Debian's packages,
# installed once when this runs as root (apt's lists are refreshed only if the first try fails).
monitoring-tools:
	@command -v promtool >/dev/null && command -v amtool >/dev/null || { \
	  [ "$$(id -u)" = 0 ] && { $(APT_INSTALL) || { apt-get update -q >/dev/null && $(APT_INSTALL); }; }; } || \
	  echo "promtool and amtool missing: install Debian's prometheus and prometheus-alertmanager"

APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus \
	prometheus-alertmanager >/dev/null

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
validate-deployment: .venv/.installed monitoring-tools
	$(PYTHON) manage.py validate_deployment $(ARGS)

build-adaptive: .venv/.installed
	$(PYTHON) -m compileall -q matching && $(PYTHON) -c "import matching.adaptive_book"

lint: .venv/.installed
	.venv/bin/ruff check .
