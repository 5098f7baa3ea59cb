# Two commands for people (see README): `make demo` and `make test`. Both set up their virtualenvs first.
# `make test` runs the suite on every Spark line visitseg supports (LINES); `make test LINES=4` on one.
LINES ?= 4 3.5
OUT ?= out/demo
# Two workers, a test file each at a time (module fixtures are built once): on a 2-core machine they
# overlap each other's JVM starts and subprocess waits, 1,105 s against 1,334-1,478 s for the Spark 4 line.
PYTEST_WORKERS ?= -n 2 --dist loadfile

.PHONY: setup demo test clean

setup:
	@$(foreach line,$(LINES),LINE=$(line) scripts/setup.sh &&) true

demo:
	@LINE=4 scripts/setup.sh
	.venv/bin/visitseg demo --output $(OUT)

test:
	@LINES="$(LINES)" PYTEST_WORKERS="$(PYTEST_WORKERS)" scripts/test_lines.sh

clean:
	rm -rf out .pytest_cache spark-warehouse
