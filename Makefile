# The two commands: `make run` (the whole portal, embedded) and `make test` (the suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
export PORT

.PHONY: install setup sandbox-tools run test test-fast lint format bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Terraform's sandbox: bubblewrap and slirp4netns (apt-get when root and missing).
sandbox-tools:
	scripts/sandbox_tools.sh

# Database, Terraform (binary only when none is on PATH), the sample infrastructure repository.
setup: install sandbox-tools
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py install_terraform
	$(BIN)/python manage.py init_infra_repo

run: setup
	$(BIN)/python manage.py seed_demo --stacks
	exec scripts/run.sh

# Tests keep their data apart from the local run's (var/test unless DATA_DIR is set).
TEST_ENV := DATA_DIR="$${DATA_DIR:-$(CURDIR)/var/test}"

test: install sandbox-tools
	$(BIN)/python manage.py install_terraform
	$(TEST_ENV) $(BIN)/python -m pytest $(PYTEST_ARGS)

# Everything but the real-component tests (terraform, worker, browser).
test-fast: install
	$(TEST_ENV) $(BIN)/python -m pytest -m "not terraform and not worker and not browser" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy changecontrol deployments notifications
	$(BIN)/lint-imports
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every performance figure of issue 12 beside its baseline, from one run (benchmarks/):
# BENCH_ARGS=--quick for fewer tickets, BENCH_ARGS="--only pages" for one module.
bench: install sandbox-tools
	$(BIN)/python manage.py install_terraform
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
