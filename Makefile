# Thin entry points. `make bench` and `make test` are each the only command a new user needs on
# a fresh Debian/Ubuntu machine: both install what is missing, build, then do their job.

SHELL     := /bin/bash
PY        := /usr/bin/python3
BUILD     := build
ASAN      := build-asan
FUZZ      := build-fuzz
FUZZ_SECONDS ?= 30
# Warnings are errors in CI (and wherever CI=true is set); elsewhere a newer compiler's new
# warning should not stop a user from running the benchmark.
WERROR    ?= $(if $(filter true 1,$(CI)),true,false)
EXPERIMENT ?= harness/experiments/default.toml

export HTTPBENCH_BUILD := $(abspath $(BUILD))

.PHONY: all deps configure build build-bench test unit sanitize fuzz pytest bench bench-full leitner2003 fremlin2008 sxe2010 floors floors-keepalive pools report compare \
        install-cli microbench microbench-smoke clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) -Dwerror=$(WERROR)

build: configure
	meson compile -C $(BUILD)

# What the experiments run (servers, references, registry, loadgen, microbenchmarks): the
# `bench` alias in meson.build, without the unit tests.
build-bench: configure
	meson compile -C $(BUILD) bench

## Every test: C++ unit tests, the sanitizer build, the fuzzer, all pytest suites, and every
## microbenchmark program briefly.
test: build
	$(MAKE) --no-print-directory unit sanitize fuzz pytest microbench-smoke

unit:
	meson test -C $(BUILD) --print-errorlogs

# ASan+UBSan: the unit tests, and the end-to-end suite against the sanitized sped server.
# -O0 -g: the tests run as fast as at -O1 or -O2 here (9 s and 22 s: they wait on sockets, not on
# the CPU), and the build takes 49 s instead of 122 s at -O1 (190 s at -O2) on two cores.
sanitize:
	@[ -f $(ASAN)/build.ninja ] || meson setup $(ASAN) -Dwerror=$(WERROR) \
	    -Dbuildtype=debug -Doptimization=0 -Db_sanitize=address,undefined -Db_lundef=false -Donly_backends=sped
	meson compile -C $(ASAN) servers/tests/core_tests servers/httpd-sped servers/backends.json
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    $(ASAN)/servers/tests/core_tests --gtest_brief=1
	HTTPBENCH_BUILD=$(abspath $(ASAN)) HTTPBENCH_BACKENDS=sped \
	    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1 \
	    $(PY) -m pytest -q -p no:cacheprovider $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS)) tests/e2e \
	        -k "not real_client"

# libFuzzer over the parser and connection for FUZZ_SECONDS, then every kept regression input.
fuzz:
	@[ -f $(FUZZ)/build.ninja ] || CXX=clang++ meson setup $(FUZZ) -Dfuzz=true \
	    -Db_sanitize=address,undefined -Db_lundef=false -Dcpp_args=-fsanitize=fuzzer-no-link \
	    -Dunit_tests=disabled -Dmicrobench=disabled
	meson compile -C $(FUZZ) servers/tests/fuzz/fuzz_connection
	@corpus=$$(mktemp -d) && trap 'rm -rf $$corpus' EXIT && \
	    $(FUZZ)/servers/tests/fuzz/fuzz_connection -max_total_time=$(FUZZ_SECONDS) \
	        -timeout=5 -print_final_stats=1 -artifact_prefix=$$corpus/ \
	        $$corpus servers/tests/fuzz/corpus 2>&1 | tail -n 12; \
	    status=$${PIPESTATUS[0]}; \
	    if ls $$corpus/crash-* >/dev/null 2>&1; then \
	        mkdir -p servers/tests/fuzz/regressions && cp $$corpus/crash-* servers/tests/fuzz/regressions/; \
	        echo "fuzz: crash inputs copied to servers/tests/fuzz/regressions/"; fi; \
	    exit $$status
	@if ls servers/tests/fuzz/regressions/* >/dev/null 2>&1; then \
	    $(FUZZ)/servers/tests/fuzz/fuzz_connection servers/tests/fuzz/regressions/*; fi

# Four pytest workers (pytest-xdist), a module's tests on one worker: most end-to-end tests wait
# (timeouts, grace periods, clients' runs) rather than compute, so they overlap well even on two
# cores. PYTEST_WORKERS=0 runs them one after another.
PYTEST_WORKERS ?= 4
pytest:
	$(PY) -m pytest -q -p no:cacheprovider $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadscope) \
	    tests loadgen/tests harness/tests

## The default comparison: every built backend plus the installed production servers.
bench: build-bench
	$(PY) -m harness check --steadiness 0 || true  # the run measures steadiness itself
	$(PY) -m harness run $(EXPERIMENT) --report

bench-full: build-bench
	$(PY) -m harness run harness/experiments/kerneis2009.toml --report

## The experiments of the shorter seeds (each with its report; QUICK=1 for the short form):
## von Leitner 2003 (select/poll/epoll beside idle connections), Fremlin 2008 (a dynamic page),
## the SXE posts 2010 (10,000 keep-alive connections); floors: every backend beside its
## reference server, the floor of its model, side by side (the report's page "What the HTTP core
## costs"), a new connection per request; floors-keepalive: the same with keep-alive;
## pools: prefork and threadpool at pools of 16 to 256 workers.
leitner2003 fremlin2008 sxe2010 floors floors-keepalive pools: build-bench
	$(PY) -m harness run harness/experiments/$@.toml --report $(if $(QUICK),--quick,)

## Rebuild the report of an existing run: make report RUN=results/<run-id>
report:
	@[ -n "$(RUN)" ] || { echo "usage: make report RUN=results/<run-id>" >&2; exit 2; }
	$(PY) -m harness report $(RUN)

## Did a change make servers faster? make compare A=results/<before> B=results/<after>
compare:
	@[ -n "$(A)" ] && [ -n "$(B)" ] || { echo "usage: make compare A=results/<run> B=results/<run>" >&2; exit 2; }
	$(PY) -m harness compare $(A) $(B)

## The harness as a command usable from any directory: /usr/local/bin/httpbench
install-cli:
	ln -sf $(abspath scripts/httpbench) /usr/local/bin/httpbench
	@echo "installed: /usr/local/bin/httpbench -> $(abspath scripts/httpbench)"

## Google Benchmark microbenchmarks (docs/microbench.md): the core's per-request cost, spawn,
## context switch, event notification, write side, socket/connect/accept and mmap; pinned to
## CPU 0, median of 3 repetitions. JSON per program and the combined microbench.json under
## results/microbench/ (MICROBENCH_ARGS passes e.g. --programs events_bench --min-time 0.2).
microbench: build-bench
	$(PY) -m harness.microbench --out results/microbench $(MICROBENCH_ARGS)

## Every microbenchmark program at its smallest sizes, a few iterations each (< 60 s): fails
## when a program does not run, measures nothing, or reports an unexpected error.
microbench-smoke:
	@out=$$(mktemp -d) && trap 'rm -rf $$out' EXIT && \
	    $(PY) -m harness.microbench --smoke --cpus none --out $$out > $$out/log 2>&1; \
	    status=$$?; tail -n 3 $$out/log; [ $$status -eq 0 ] || cat $$out/log; exit $$status

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)
