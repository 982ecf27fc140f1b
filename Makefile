# The project's verbs. Every target sets up .venv first (again only when pyproject.toml changes).
PYTHON := .venv/bin/python

.PHONY: run test test-adaptive test-integration benchmark-trading build-adaptive lint

.venv/.installed: pyproject.toml
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && touch $@

run: .venv/.installed
	$(PYTHON) manage.py run_exchange

test: .venv/.installed
	$(PYTHON) -m pytest -q

test-adaptive: .venv/.installed
	$(PYTHON) -m pytest -q tests/matching -k adaptive

# Exit code 5 means "no tests collected": the folder may hold none yet.
test-integration: .venv/.installed
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/integration || [ $$? -eq 5 ]

# `make benchmark-trading SECTION=http` runs one section (engine, pipeline, migration, http).
benchmark-trading: .venv/.installed
	$(PYTHON) -m benchmarks.trading $(if $(SECTION),--section $(SECTION))

build-adaptive: .venv/.installed
	$(PYTHON) -m compileall -q matching && $(PYTHON) -c "import matching.adaptive_book"

lint: .venv/.installed
	.venv/bin/ruff check .
