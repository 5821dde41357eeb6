# Rumor: one Makefile for the firmware, the host tools and their tests.
# On a fresh machine `make test` (or `make demo`) does all the set-up itself.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.rumor-installed
FW_SRC := $(shell find firmware -name '*.py' -not -path '*/__pycache__/*' -not -name manifest.py)
MPY_ARCH ?= xtensawin

.PHONY: setup system-deps mp32 test test-all firmware typecheck lint bench bench-core bench-sim bench-sim-speed bench-matrix bench-idle demo fuzz clean resilience fairness

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# Debian packages the build and the tests need (others append to the list).
# system-deps installs the missing ones with apt-get (root, or through sudo),
# running `apt-get update` first, and only when something is missing.
DEB_PACKAGES := gcc-multilib mosquitto

system-deps:
	@command -v dpkg-query >/dev/null || { echo "system-deps: no dpkg here; make sure these are installed: $(DEB_PACKAGES)"; exit 0; }; \
	missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	echo "system-deps: installing$$missing"; \
	$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null \
		|| { echo "system-deps: could not install$$missing (apt-get failed; as root: apt-get install$$missing)"; exit 1; }

# MicroPython as an ESP32 runs it, built here once and kept (`make mp32`):
#   build/mp32/micropython         the unix port at 32 bits (MICROPY_FORCE_32BIT=1):
#                                  4-byte pointers, small ints end at 2**30-1,
#                                  ticks_ms wraps at 2**30
#   build/mp32-frozen/micropython  the same with firmware/rumor frozen in through
#                                  firmware/manifest.py (it runs from the image)
# From the MicroPython $(MP_VERSION) source in ../shared/micropython/ (MP_TARBALL),
# or from MICROPY_SRC=<a checkout of the v1.28.0 tag>.  One build at a time
# (flock on build/.micropython.lock); the log of the last is build/mp32*.log.
MP_VERSION := 1.28.0
MP_TARBALL ?= ../shared/micropython/micropython-$(MP_VERSION)-unix-src.tar.gz
MP_TARBALL_SHA256 := 6b0e2d41b09651f9fd3f384c7ac729bb1c86a4e5a1d09fab44d71bc0b1ac2499
MICROPY_SRC ?=
MP_DIR := $(if $(MICROPY_SRC),$(MICROPY_SRC),build/micropython-$(MP_VERSION))
MP32 := build/mp32/micropython
MP32_FROZEN := build/mp32-frozen/micropython
MP_LOCK := build/.micropython.lock
MP_OPTS := MICROPY_FORCE_32BIT=1 MICROPY_PY_BTREE=0 MICROPY_PY_FFI=0 MICROPY_PY_SSL=0 MICROPY_SSL_MBEDTLS=0
MP_HOWTO := put micropython-$(MP_VERSION)-unix-src.tar.gz at $(MP_TARBALL), or run git clone --depth 1 --branch v$(MP_VERSION) https://github.com/micropython/micropython and give MICROPY_SRC=<that folder>

mp32: $(MP32) $(MP32_FROZEN)

$(MP_DIR)/py/mpconfig.h:
	@if [ -n "$(MICROPY_SRC)" ]; then echo "mp32: no MicroPython source in MICROPY_SRC=$(MICROPY_SRC) (py/mpconfig.h missing): $(MP_HOWTO)"; exit 1; fi
	@test -f "$(MP_TARBALL)" || { echo "mp32: no MicroPython $(MP_VERSION) source: $(MP_HOWTO)"; exit 1; }
	@echo "$(MP_TARBALL_SHA256)  $(MP_TARBALL)" | sha256sum -c --status \
		|| { echo "mp32: $(MP_TARBALL) is not the MicroPython $(MP_VERSION) subset (sha256 differs)"; exit 1; }
	@mkdir -p build
	flock $(MP_LOCK) sh -c 'test -f $@ || tar -xzf "$(MP_TARBALL)" -C build'

# (the tarball's tree sits inside this repository: without GIT_DIR the build
# would name itself after our commit, not v$(MP_VERSION))
MP_GIT := $(if $(MICROPY_SRC),,GIT_DIR=/nonexistent)
# $(call mp_build,<folder under build/>,<frozen manifest>)
define mp_build
	@mkdir -p build/mp-lib && touch build/mp-lib/README.md
	@echo "building build/$(1)/micropython (MicroPython $(MP_VERSION), 32-bit; a minute or so the first time)"
	@$(MP_GIT) flock $(MP_LOCK) sh -c '{ $(MAKE) -s -C $(MP_DIR)/mpy-cross -j2 && $(MAKE) -s -C $(MP_DIR)/ports/unix -j2 $(MP_OPTS) \
		FROZEN_MANIFEST=$(abspath $(2)) MPY_LIB_DIR=$(abspath build/mp-lib) BUILD=$(abspath build/$(1)); \
		} >$(abspath build/$(1).log) 2>&1' || { tail -n 15 build/$(1).log; echo "mp32: building build/$(1) failed (whole log: build/$(1).log)"; exit 1; }
	@touch $@
endef

$(MP32): tests/mp32/manifest.py | $(MP_DIR)/py/mpconfig.h system-deps
	$(call mp_build,mp32,tests/mp32/manifest.py)

# (the list of modules is a file of its own: a module removed from
# firmware/rumor/ rebuilds the frozen image too)
MP_FROZEN_FILES := build/mp32-frozen.files
$(shell mkdir -p build; l="$(sort $(wildcard firmware/rumor/*.py))"; \
	[ "$$(cat $(MP_FROZEN_FILES) 2>/dev/null)" = "$$l" ] || echo "$$l" > $(MP_FROZEN_FILES))

$(MP32_FROZEN): tests/mp32/manifest_frozen.py firmware/manifest.py $(wildcard firmware/rumor/*.py) \
		$(MP_FROZEN_FILES) | $(MP_DIR)/py/mpconfig.h system-deps
	$(call mp_build,mp32-frozen,tests/mp32/manifest_frozen.py)

# Everything CI checks: the firmware compiles for the board, type-checks
# against the ESP32 stubs, lints, and all tests pass (firmware tests under
# CPython and three MicroPython unix ports: the wheel's 64-bit one, the
# 32-bit build and the frozen 32-bit build; host tests under CPython).
test: setup system-deps mp32 firmware typecheck lint
	$(BIN)/pytest -v -m "not slow and not hardware" --mp32=$(MP32) --mp32-frozen=$(MP32_FROZEN)

test-all: setup mp32
	$(BIN)/pytest --mp32=$(MP32) --mp32-frozen=$(MP32_FROZEN)

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
	$(BIN)/ruff check firmware host_tools tests examples

bench-core: setup mp32
	$(PY) -m rumor_host.bench_core --out bench/core.json

# The simulator's standard matrix (about 15 minutes on 2 cores: the runs' wall_s in
# bench/sim.json add up to 10), bench/sim.json, sim.md, plots; last, the simulator's
# own speed (10 000 nodes x 100 messages, 1-2 minutes), timed.
bench-sim: setup
	$(PY) -m rumor_host.sim.bench --out bench

# Only that speed run (1-2 minutes), merged into bench/sim.json and sim.md.
bench-sim-speed: setup
	$(PY) -m rumor_host.sim.bench --out bench --speed-only

# The public matrix (bench/matrix.toml: 14 meshes x 3 seeds x every strategy,
# on all cores, a few minutes on 2): bench/matrix.json, matrix.md and the
# Pareto plot matrix.png.  An interrupted run resumes from bench/matrix.jsonl;
# WORKERS=N for N processes, DASK=tcp://HOST:8786 to run on a Dask cluster.
# Then bench-idle (below, seconds).
bench-matrix: setup
	$(BIN)/rumor sim sweep bench/matrix.toml $(if $(WORKERS),--workers $(WORKERS)) $(if $(DASK),--dask $(DASK))
	$(MAKE) --no-print-directory bench-idle

# Idle traffic (issue 11; about 10 s): frames per node per hour with no traffic,
# rumor and flood, on rgg n100 d10, grid 7x7 and LoRa SF8 n40 d6, seeds 1-3, one
# simulated hour from boot and one after 10 messages: bench/idle.json, idle.md.
bench-idle: setup
	$(PY) -m rumor_host.sim.idle --bench --out bench

bench: bench-core bench-sim

# The simulator under faults and attacks (about 15 s): 200 nodes x 10 seeds,
# loss, reboots, a partition, a replayer and a forger; bench/resilience.json.
resilience: setup
	$(PY) -m rumor_host.sim.resilience --out bench/resilience.json

# One node floods 1000 msg/s while ten publish normally, fairness on vs off
# (about a minute, 5 seeds): bench/fairness.json.
fairness: setup
	$(PY) -m rumor_host.sim.fairness --out bench/fairness.json

FUZZ_MP_FRAMES ?= 100000
# 1 000 000 fuzzed frames through Gossip.receive under CPython (atheris,
# state invariants after every frame), then 100 000 under the MicroPython unix
# port with the heap locked around every receive() and tick() of the keyless
# engines (one engine of each run has a network key: hashing allocates, so its
# frames run unlocked).  A short run of the same checks is
# tests/firmware/test_fuzz.py, part of `make test`.
fuzz: setup mp32
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[fuzz]'
	@mkdir -p build
	cd tests/fuzz && $(abspath $(PY)) fuzz_receive.py -runs=1000000 -max_len=400 -artifact_prefix=$(abspath build)/fuzz-
	for mp in $(abspath $(BIN))/micropython $(abspath $(MP32)); do \
		echo "fuzz_mp under $$mp"; \
		(cd tests/fuzz && MICROPYPATH=.frozen:$(abspath firmware):$(abspath tests/firmware) \
			$$mp -X heapsize=8M fuzz_mp.py $(FUZZ_MP_FRAMES)) || exit 1; \
	done

# A mesh of virtual boards (unix-port processes on ptys, a UDP radio medium):
# inject messages, collect every board's log, print the delivery report.
demo: setup
	$(PY) -m rumor_host.cli demo --nodes 12 --messages 20 --json demo.json

clean:
	rm -rf build .pytest_cache .ruff_cache .mypy_cache demo.json demo-run.jsonl
