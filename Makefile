# coap-fw: the two set-up commands of the README are `make demo` and `make test`.
SWIFT ?= swift
PYTHON ?= python3

.PHONY: deps build release link-order demo test unit interop vectors bench bench-link bench-memory fuzz replay asan faults soak embedded clean

# The Python test kit (Tests/support) is the package `support`: on the path
# once for every target that runs Python (pytest's own runs also get it from
# Tests/interop/pytest.ini).
test interop faults soak bench bench-link bench-memory link-order: export PYTHONPATH := $(CURDIR)/Tests$(if $(PYTHONPATH),:$(PYTHONPATH))

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

# The build the README installs, made small for a node (issue #11; what each
# step is worth: docs/benchmarks.md "Client memory"): the Swift runtime,
# libcoap, OpenSSL and libstdc++ linked statically (only what is used is
# mapped), lld with packed relative relocations and no exported symbol
# table, and the functions an update runs laid out together
# (scripts/coap-fw-client.order, from `make link-order`). Still PIE.
STATIC_LIBS := $(CURDIR)/.build/static-libs
RELEASE_FLAGS := -c release --static-swift-stdlib -Xswiftc -use-ld=lld -Xswiftc -L$(STATIC_LIBS) \
	-Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic \
	-Xlinker --symbol-ordering-file=$(CURDIR)/scripts/coap-fw-client.order -Xlinker --no-warn-symbol-ordering
release: deps
	@scripts/static-libs.sh $(STATIC_LIBS)
	@# SwiftPM does not track the order file's contents: relink when it changed.
	@for b in coap-fw-client coap-fw-server; do [ ! scripts/coap-fw-client.order -nt .build/release/$$b ] || rm -f .build/release/$$b; done
	$(SWIFT) build $(RELEASE_FLAGS)

# Regenerates scripts/coap-fw-client.order from the release build (needs valgrind).
link-order: release
	$(PYTHON) scripts/link_order.py --bin .build/release

# Main job end to end: install, build, keygen, publish a demo release, verify it.
demo: release
	scripts/demo.sh

# The whole test suite: Swift unit tests, then interop tests against real
# processes and independent implementations (pycose, cryptography).
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(MAKE) --no-print-directory replay
	$(MAKE) --no-print-directory asan
	$(MAKE) --no-print-directory embedded-run
	$(PYTHON) -m pytest -q -n 2 Tests/interop

# The server under AddressSanitizer, for the malformed-datagram test.
asan:
	$(SWIFT) build --scratch-path .build-asan -Xswiftc -sanitize=address -Xswiftc -use-ld=lld --product coap-fw-server

# The kept fuzz corpora and crash reproducers, run once each (regressions).
FUZZ_TARGETS = manifest-view manifest-json envelope parsers blocks device resume psk-file
replay:
	@for t in $(FUZZ_TARGETS); do .build/debug/coap-fw-fuzz replay $$t Fuzz/corpus/$$t Fuzz/crashes/$$t || exit 1; done

# The device core with Embedded Swift for a Cortex-M4 (armv7em-none-none-eabi,
# -Osize, whole module): prints its size, links it into a bare-metal image that
# verifies a real HSS-LMS-signed release, and runs that under qemu (mps2-an386).
embedded: build
	scripts/embedded.sh .build/debug .build-embedded

embedded-run:
	scripts/embedded.sh .build/debug .build-embedded

# libFuzzer on every target, FUZZ_SECONDS each (default 60); grows Fuzz/corpus.
fuzz: deps
	scripts/fuzz.sh

# The full network fault matrix: loss 0/5/20 % x delay 0/100 ms, with and
# without duplication + reordering 5 %, default RFC 7252 timing (root; tens of
# minutes). `make test` runs the --quick one. FAULTS_ARGS="--jobs 3 --seed 7".
faults: build
	$(PYTHON) Tests/faults/fault_matrix.py $(FAULTS_ARGS)

# The soak test: 50 clients updating through the 5 %-loss relay, a datagram
# fuzzer and an Observe flood against one server, for SOAK_SECONDS (default
# 3600); prints a table and SOAK-JSON (docs/security.md). Not in make test.
# SOAK_ARGS="--clients 20 --observers 1100".
SOAK_SECONDS ?= 3600
soak: build
	$(PYTHON) Tests/soak/soak.py --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

unit: deps
	$(SWIFT) test

interop: build asan
	$(PYTHON) -m pytest -q -n 2 Tests/interop

# Regenerate the independent test vectors (pycose, cbor2, cryptography).
vectors: deps
	$(PYTHON) Vectors/generate.py

# Benchmarks print tables (figures go to docs/benchmarks.md); not tests.
bench: release
	$(PYTHON) bench/server_bench.py
	$(PYTHON) bench/client_bench.py
	$(PYTHON) bench/amplification.py
	$(PYTHON) bench/link_bench.py --bin .build/release
	$(PYTHON) bench/memory_bench.py --bin .build/release
	.build/release/coap-fw-bench .

# Constrained links (issue #11): the window vs lock-step vs libcoap and
# aiocoap through lowpan, lossy-lowpan and nbiot, 3 rounds (about an hour).
bench-link: release
	$(PYTHON) bench/link_bench.py --bin .build/release $(BENCH_LINK_ARGS)

# The client's memory during a 32 MiB update, by mapping, against libcoap's clients.
bench-memory: release
	$(PYTHON) bench/memory_bench.py --bin .build/release

clean:
	rm -rf .build .build-embedded demo
