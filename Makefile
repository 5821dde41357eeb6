# Rumor: one Makefile for the firmware, the host tools and their tests.
# On a fresh machine `make test` (or `make demo`) does all the set-up itself.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.rumor-installed
FW_SRC := $(shell find firmware -name '*.py' -not -path '*/__pycache__/*')
MPY_ARCH ?= xtensawin

.PHONY: setup test test-all firmware typecheck lint bench bench-core bench-sim demo fuzz clean resilience fairness

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# Everything CI checks: the firmware compiles for the board, type-checks
# against the ESP32 stubs, lints, and all tests pass (firmware tests under
# both MicroPython and CPython, host tests under CPython).
test: setup firmware typecheck lint
	$(BIN)/pytest -v -m "not slow and not hardware"

test-all: setup
	$(BIN)/pytest

# mpy-cross every firmware file into build/firmware/ (ESP32 arch by default).
firmware: setup
	@rm -rf build/firmware
	@for f in $(FW_SRC); do \
		out=build/$${f%.py}.mpy; mkdir -p $$(dirname $$out); \
		$(BIN)/mpy-cross -march=$(MPY_ARCH) -o $$out $$f || exit 1; \
	done
	@echo "firmware: $(words $(FW_SRC)) files compiled to build/firmware/ ($(MPY_ARCH))"

# firmware/ against the ESP32 port's stubs (only APIs the board has);
# host_tools/ against ordinary CPython.
typecheck: setup
	$(BIN)/pyright --pythonpath $(PY) --project firmware/pyrightconfig.json \
		--typeshedpath "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
	$(BIN)/mypy host_tools

lint: setup
	$(BIN)/ruff check firmware host_tools tests

bench-core: setup
	$(PY) -m rumor_host.bench_core --out bench/core.json

# The simulator's standard matrix (20-40 minutes): bench/sim.json, sim.md, plots.
bench-sim: setup
	$(PY) -m rumor_host.sim.bench --out bench

bench: bench-core bench-sim

# The simulator under faults and attacks (about 15 s): 200 nodes x 10 seeds,
# loss, reboots, a partition, a replayer and a forger; bench/resilience.json.
resilience: setup
	$(PY) -m rumor_host.sim.resilience --out bench/resilience.json

# One node floods 1000 msg/s while ten publish normally, fairness on vs off
# (about a minute, 5 seeds): bench/fairness.json.
fairness: setup
	$(PY) -m rumor_host.sim.fairness --out bench/fairness.json

# 1 000 000 fuzzed frames through Gossip.receive under CPython (atheris,
# state invariants after every frame), then 100 000 under the MicroPython unix
# port with the heap locked around every receive() and tick() of the keyless
# engines (one engine of each run has a network key: hashing allocates, so its
# frames run unlocked).  A short run of the same checks is
# tests/firmware/test_fuzz.py, part of `make test`.
fuzz: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[fuzz]'
	@mkdir -p build
	cd tests/fuzz && $(abspath $(PY)) fuzz_receive.py -runs=1000000 -max_len=400 -artifact_prefix=$(abspath build)/fuzz-
	cd tests/fuzz && MICROPYPATH=.frozen:$(abspath firmware):$(abspath tests/firmware) \
		$(abspath $(BIN))/micropython -X heapsize=8M fuzz_mp.py 100000

# A mesh of virtual boards (unix-port processes on ptys, a UDP radio medium):
# inject messages, collect every board's log, print the delivery report.
demo: setup
	$(PY) -m rumor_host.cli demo --nodes 12 --messages 20 --json demo.json

clean:
	rm -rf build .pytest_cache .ruff_cache .mypy_cache demo.json demo-run.jsonl
