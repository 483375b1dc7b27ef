# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Helm's engine (helm-sdkpy, helm-python-sdk) declares Python 3.12+; it lives in a venv of its own.
HELM_VENV ?= .venv-helm
HELM_PYTHON := $(abspath $(HELM_VENV))/bin/python

.PHONY: demo test lint bench clean

$(BIN)/svcbot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/svcbot

$(HELM_PYTHON):
	$(PYTHON) -m venv $(HELM_VENV)
	$(HELM_VENV)/bin/pip install --quiet --upgrade pip
	$(HELM_VENV)/bin/pip install --quiet --ignore-requires-python 'helm-sdkpy>=0.1.32,<0.2' 'helm-python-sdk>=0.2.2,<0.3'

demo: $(BIN)/svcbot
	$(BIN)/svcbot demo

lint: $(BIN)/svcbot
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint $(HELM_PYTHON)
	$(HELM_PYTHON) scripts/lint-chart.py lint helm/svcbot
	SVCBOT_HELM_PYTHON=$(HELM_PYTHON) $(BIN)/pytest

bench: $(BIN)/svcbot
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(HELM_VENV) build *.egg-info
