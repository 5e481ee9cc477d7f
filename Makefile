# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where the environment forbids writing bytecode (this machine and its CI set PYTHONDONTWRITEBYTECODE), every
# process compiles every module it imports from source again: 0.2 s of CPU for each node the tests and the
# demo start, and 5 s for each test worker's collection. Caches go to __pycache__ (git-ignored).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test lint install clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# setup.py compiles protocol/_sigfast.c (gcc and the Python headers); setuptools' note that an editable
# install with a compiled part is one is silenced, the rest of what the build says is not.
$(STAMP): $(BIN)/python pyproject.toml setup.py protocol/_sigfast.c
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e '.[test]'
	@$(BIN)/python -c "import protocol._sigfast" 2>/dev/null || echo "note: no C compiler found, so protocol/_sigfast.c \
	was not built: Satchel works the same, its signed HTTP somewhat slower (install gcc, then: make clean install)"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Four workers on CI's two cores: the whole nodes the integration tests start spend most of their time waiting
# on each other (two workers kept the cores 57% busy), so four run the suite in about two thirds of the time two
# take; work stealing keeps one worker from ending the run alone on a queue of slow tests.
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n 4 --dist worksteal

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# The benchmarks of issue 8 (tests/bench, not part of `make test`): about 10 minutes; prints the table and
# writes tests/bench/results/latest.json. age and gpg are the baselines: installed when running as root on
# Debian, otherwise their goals are reported as skipped. Pass options with BENCH_ARGS="--only 1,5".
bench: $(STAMP)
	@if ! command -v age >/dev/null 2>&1 || ! command -v gpg >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq age gnupg; \
		else \
			echo "note: age and/or gpg are missing; their baselines will be skipped."; \
			echo "      install them with: sudo apt-get install age gnupg"; \
		fi; \
	fi
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache protocol/_sigfast*.so
