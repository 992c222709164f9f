# The two commands a newcomer needs:
#   make run    install what is missing, build, and run the round-trip demo
#   make test   install what is missing, build, and run every test
BUILD ?= build

.PHONY: all deps build run test test-unit test-integration test-fuzz test-san clean bench

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD) >/dev/null || ninja -C $(BUILD)

run: build
	@bash scripts/demo.sh $(BUILD)/smime

test: build
	@bash scripts/run-tests.sh

bench: build
	@bash bench/run.sh

clean:
	rm -rf build build-san build-fuzz
