# The two commands README starts with: `make demo` and `make test`. Both install what they need.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)

.PHONY: deps configure build test demo bench clean

deps:
	@tools/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

# The binary and the tools the demo runs; `make test` builds the test suites too.
build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target emr fake_provider loadgen

test: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)
	@cd $(BUILD_DIR) && ctest --output-on-failure -j 2

demo: build
	@tools/demo.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
