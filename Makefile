# wirelab: every target bootstraps what it needs on a fresh Debian machine.
#   make tour   set up, then run the tour (the main job)
#   make test   set up, then ruff, mypy --strict on src/, and pytest
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.wirelab-installed

.PHONY: setup system tour test lint typecheck pytest bench clean

setup: $(STAMP) system

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# System daemons the lab uses (memcached), installed through apt-get when missing and root.
system:
	@sh scripts/install-system-deps.sh

tour: setup
	$(BIN)/wirelab tour

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: setup
	$(BIN)/mypy --strict src

# In our own suite a lab service that cannot start is a failure, not a skip. The suite runs on
# every core (JOBS=0 runs it in one process); tests/conftest.py keeps some groups on one worker.
# The suite starts `python -m wirelab` hundreds of times: compile the sources once first, since
# with PYTHONDONTWRITEBYTECODE set, each would compile them all again (import wirelab.cli: 0.74
# CPU-s without the .pyc files, 0.49 with them).
JOBS ?= auto
pytest: setup
	$(BIN)/python -m compileall -q src
	WIRELAB_REQUIRE_SERVICES=1 $(BIN)/pytest -q -n $(JOBS) --dist loadgroup

test: lint typecheck pytest

# Every benchmark, one after another; each writes bench/results/<name>.{json,png}.
BENCHES := bench/geo_bench.py bench/tcp_deadlock.py bench/tls_bench.py bench/cache_bench.py \
           bench/queue_bench.py bench/zen/run.py bench/rpc_bench.py \
           bench/ftp_bench.py bench/smtp_bench.py bench/http_bench.py bench/ssh_bench.py

bench: setup
	@for script in $(BENCHES); do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .hypothesis
