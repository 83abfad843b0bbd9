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
	# facenet-pytorch pins torch<2.3; its InceptionResnetV1 (the reference of the facenet tests) runs on any torch
	$(BIN)/python -m pip install --quiet --no-deps "facenet-pytorch>=2.5"
	touch $(STAMP)

table: $(STAMP)
	$(BIN)/inception-zoo table

docs: $(STAMP)
	$(BIN)/inception-zoo docs

test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist worksteal  # one worker per core (tests/conftest.py: one torch thread each)

clean:
	rm -rf $(VENV) build *.egg-info
