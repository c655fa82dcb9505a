# Studio: the two commands from the README, plus lint.
#   make up     install (if needed), build the demo model, run everything on this machine
#   make test   install (if needed), run the test suite against PostgreSQL and Redis
#
# The install step runs only when pyproject.toml is newer than its stamp in .venv, so a second
# `make up` starts in seconds. torch/torchvision come from the machine's local wheels through
# pip's own configuration (find-links + constraints), which is why this uses plain pip.

PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=
# Test processes (pytest-xdist): one per core here; each gets its own databases.
TEST_WORKERS ?= 2

# The suite's servers; override from the environment (`DATABASE_URL=... make test`).
TEST_DATABASE_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/studio)
TEST_REDIS_URL    ?= $(or $(REDIS_URL),redis://127.0.0.1:6379/13)

.PHONY: up test lint install install-dev

$(PY):
	$(PYTHON) -m venv $(VENV)

# One stamp per set of extras: `make test` after `make up` still has to add the dev tools.
$(VENV)/.installed-ml: pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[ml]'
	touch $@

$(VENV)/.installed-ml-dev: pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[ml,dev]'
	touch $@ $(VENV)/.installed-ml

install: $(VENV)/.installed-ml
install-dev: $(VENV)/.installed-ml-dev

# DEBUG defaults to on here: `make up` is the local demo (it prints the demo passwords and
# needs no SECRET_KEY). Export DEBUG=false and SECRET_KEY=... to try the production settings.
# migrate first: seed_demo writes to tables that a fresh database does not have yet.
up: install
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(PY) manage.py seed_demo
	DEBUG=$${DEBUG:-true} $(PY) manage.py up --host $(HOST) --port $(PORT)

test: install-dev
	DATABASE_URL='$(TEST_DATABASE_URL)' REDIS_URL='$(TEST_REDIS_URL)' OMP_NUM_THREADS=1 \
		$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: install-dev
	$(PY) -m ruff check .
