# Firehook: the two commands are `make run` and `make test`. Both install what is missing first.
#
#   make run     build (Release) and start a broker with the development setup
#   make test    build (ASan+UBSan), run unit tests, end-to-end tests, fuzz corpus replay and a short fuzz run
#   make bench   build (Release) and run the benchmarks; BASELINE=path/to/firehook also runs an
#                earlier build side by side (before and after in the same run)
#   make fuzz    run the fuzzers for FUZZ_SECONDS (default 600) each
#   make format  clang-format every source file

SHELL := /bin/bash
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 600
CMAKE_FLAGS ?=

BUILD_RELEASE := build/release
BUILD_ASAN := build/asan
BUILD_FUZZ := build/fuzz

.PHONY: all deps run test unit e2e fuzz-smoke fuzz bench format clean \
        $(BUILD_RELEASE)/.built $(BUILD_ASAN)/.built $(BUILD_FUZZ)/.built

all: $(BUILD_RELEASE)/.built

deps:
	@sh scripts/ensure-deps

# configure once per build folder, then let ninja decide what is stale
build/%/build.ninja: | deps
	@cmake -S . -B build/$* -G Ninja $(CMAKE_FLAGS) $(CONFIG_$*) >/dev/null

CONFIG_release := -DCMAKE_BUILD_TYPE=Release
CONFIG_asan := -DCMAKE_BUILD_TYPE=Asan -DFIREHOOK_BENCH=OFF
CONFIG_fuzz := -DCMAKE_BUILD_TYPE=Asan -DFIREHOOK_FUZZ=ON -DFIREHOOK_TESTS=OFF -DFIREHOOK_BENCH=OFF -DCMAKE_CXX_COMPILER=clang++

$(BUILD_RELEASE)/.built: $(BUILD_RELEASE)/build.ninja deps
	@cmake --build $(BUILD_RELEASE) -j $(JOBS)
$(BUILD_ASAN)/.built: $(BUILD_ASAN)/build.ninja deps
	@cmake --build $(BUILD_ASAN) -j $(JOBS)
$(BUILD_FUZZ)/.built: $(BUILD_FUZZ)/build.ninja deps
	@cmake --build $(BUILD_FUZZ) -j $(JOBS)

run: $(BUILD_RELEASE)/.built
	@FIREHOOK=$(BUILD_RELEASE)/src/app/firehook scripts/dev-run

test: unit e2e fuzz-smoke

unit: $(BUILD_ASAN)/.built
	@cd $(BUILD_ASAN) && ctest --output-on-failure -j $(JOBS)

e2e: $(BUILD_ASAN)/.built
	@if ls tests/e2e/test_*.py >/dev/null 2>&1; then \
	  FIREHOOK=$(CURDIR)/$(BUILD_ASAN)/src/app/firehook /usr/bin/python3 -m pytest -q tests/e2e; \
	fi

# replays every committed corpus and crash input, then fuzzes briefly, so regressions show in CI
fuzz-smoke: $(BUILD_FUZZ)/.built
	@scripts/fuzz $(BUILD_FUZZ) 30

fuzz: $(BUILD_FUZZ)/.built
	@scripts/fuzz $(BUILD_FUZZ) $(FUZZ_SECONDS)

bench: $(BUILD_RELEASE)/.built
	@scripts/bench $(BUILD_RELEASE) $(if $(BASELINE),--baseline $(BASELINE))

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf build
