# The two commands a newcomer needs:
#   make run    install what is missing, build, and start smimed with its defaults
#   make test   install what is missing, build, and run every test
#   make demo   the sign/encrypt/decrypt/verify round trip of the smime command line
BUILD ?= build

.PHONY: all deps build run demo test test-unit test-integration test-fuzz test-san clean bench bench-service

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD) >/dev/null || ninja -C $(BUILD)

run: build
	@bash scripts/run.sh $(BUILD)

demo: build
	@bash scripts/demo.sh $(BUILD)/smime

test: build
	@bash scripts/run-tests.sh

bench: build
	@bash bench/run.sh

bench-service: build
	@bash bench/service.sh

clean:
	rm -rf build build-san build-fuzz
