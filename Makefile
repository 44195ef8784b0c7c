# The two commands README starts with: `make demo` and `make test`. Both install what they need.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)

.PHONY: deps configure build test demo bench clean

deps:
	@tools/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j 2

demo: build
	@tools/demo.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
