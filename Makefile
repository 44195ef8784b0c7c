# The two commands README starts with: `make demo` and `make test`. Both install what they need.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
ASAN_DIR ?= build-asan
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 600
SOAK_SECONDS ?= 600

.PHONY: deps configure build test test-asan format format-check demo bench soak clean fuzz fuzz-smoke

deps:
	@tools/install-deps.sh

# Unity builds compile each of emr's libraries as one source and the tests and tools in batches
# of eight: CAF's templates are instantiated once per batch instead of once per file, which halves
# a clean build on 2 cores.
UNITY = -DCMAKE_UNITY_BUILD=ON

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(UNITY) >/dev/null

# The binary and the tools the demo runs; `make test` builds the test suites too.
build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target emr fake_provider loadgen

# The format check, the suite on the release build, the same suite under the sanitizers, then
# the fuzz smoke.
test: configure format-check
	@cmake --build $(BUILD_DIR) -j $(JOBS)
	@cd $(BUILD_DIR) && ctest --output-on-failure -j 2
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory fuzz-smoke

# Every test (unit, integration, scripts, bench smoke) built by clang with AddressSanitizer and
# UndefinedBehaviorSanitizer in its own build dir. Reports go to files named after the program, so
# that one from a server a test merely stops still fails the run.
test-asan: deps
	@cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DEMR_SANITIZE=ON $(UNITY) >/dev/null
	@cmake --build $(ASAN_DIR) -j $(JOBS)
	@rm -rf $(ASAN_DIR)/sanitizer-reports && mkdir -p $(ASAN_DIR)/sanitizer-reports
	@reports=$(CURDIR)/$(ASAN_DIR)/sanitizer-reports; rc=0; \
	  (cd $(ASAN_DIR) && ASAN_OPTIONS=log_path=$$reports/asan:log_exe_name=1:detect_leaks=1 \
	    UBSAN_OPTIONS=log_path=$$reports/ubsan:log_exe_name=1:print_stacktrace=1 \
	    ctest --output-on-failure -j 2) || rc=$$?; \
	  if [ -n "$$(ls -A $$reports)" ]; then \
	    cat $$reports/*; echo "test-asan: sanitizer reports above" >&2; rc=1; fi; \
	  exit $$rc

# Every C++ source as .clang-format has it (Debian 12's clang-format, version 14): `make format`
# rewrites, `make test` checks.
SOURCES = $(shell git ls-files '*.cpp' '*.hpp')
format: deps
	@clang-format -i $(SOURCES)
format-check: deps
	@test -n "$(SOURCES)" || { echo "format-check: needs a git checkout" >&2; exit 1; }
	@clang-format --dry-run --Werror $(SOURCES) || \
	  { echo "format-check: run 'make format'" >&2; exit 1; }

demo: build
	@tools/demo.sh $(BUILD_DIR)

# Every benchmark scenario against direct calls and the Portkey gateway, a few minutes; e.g.
# `make bench BENCH_ARGS="--only burst,sparse"` or BENCH_ARGS="--out bench-runs --charts docs".
bench: build
	@tools/bench.sh $(BUILD_DIR) $(BENCH_ARGS)

# Not in CI: SOAK_SECONDS of mixed traffic through emr against fakes that inject faults; prints a
# report with a verdict per check and fails if any check does.
soak: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target emr fake_provider soak
	@tools/soak.sh $(BUILD_DIR) --duration $(SOAK_SECONDS)

# libFuzzer (clang, own build dir) on every parser of untrusted bytes, FUZZ_SECONDS per target;
# fails on a crash and names the input that caused it.
fuzz: deps
	@tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS)

# Five seconds per fuzz target: `make test` runs it so a regression on the seeds fails CI.
fuzz-smoke: deps
	@tests/fuzz/run.sh $(FUZZ_DIR) 5

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR)
