# Two commands for people (see README): `make demo` and `make test`. Both set up .venv first.
VENV ?= .venv
OUT ?= out/demo

.PHONY: setup demo test clean

$(VENV)/.installed: setup.py constraints.txt scripts/setup.sh
	VENV=$(VENV) scripts/setup.sh

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/visitseg demo --output $(OUT)

test: setup
	$(VENV)/bin/python -m pytest

clean:
	rm -rf out .pytest_cache spark-warehouse
