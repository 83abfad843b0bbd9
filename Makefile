# Every target creates or reuses the virtual environment in .venv, so a fresh
# clone needs nothing but Python >= 3.10 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup table docs test clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[test,docs]"
	touch $(STAMP)

table: $(STAMP)
	$(BIN)/inception-zoo table

docs: $(STAMP)
	$(BIN)/inception-zoo docs

test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist worksteal  # one worker per core (tests/conftest.py: one torch thread each)

clean:
	rm -rf $(VENV) build *.egg-info
