# Switchboard — one non-recursive GNU Makefile.
#
#   make            build ./switchboard
#   make test       install deps, build, run the suite, then run it again under ASan+UBSan
#   make demo       the offline demo (console adapter, demo agent)
#   make bench      benchmarks (print numbers, never fail on speed)
#   make deps       install the Debian packages we need (no-op when present)
#   make fuzz       libFuzzer targets (clang) into build/fuzz, each run FUZZ_TIME s; not part of make test
#   make soak       kill -9 and CPU-hog soak through the fake Slack; not part of make test
#   SANITIZE=1      build into build/asan with AddressSanitizer + UBSan

PKGS      := libuv libwebsockets libcurl jansson libgit2 libconfig sqlite3 libcrypto
CC        ?= cc
OPT       ?= -O2
CFLAGS    ?= -g $(OPT)
CFLAGS    += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
             -MMD -MP -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS    += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

ifeq ($(SANITIZE),1)
BUILD     := build/asan
CFLAGS    += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS   += -fsanitize=address,undefined
else
BUILD     := build/default
endif

SRCS      := $(wildcard bot/*.c adapters/*.c orchestrator/*.c config/*.c)
OBJS      := $(SRCS:%.c=$(BUILD)/%.o)
LIB_OBJS  := $(filter-out $(BUILD)/bot/main.o,$(OBJS))
TEST_SRCS := $(wildcard tests/unit/test-*.c)
TEST_BINS := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRCS:= $(wildcard bench/*.c)
BENCH_BINS:= $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

DEB_PKGS  := build-essential pkg-config git libuv1-dev libwebsockets-dev libwebsockets-evlib-uv \
             libcurl4-openssl-dev libjansson-dev libgit2-dev libconfig-dev libsqlite3-dev libssl-dev \
             python3 python3-aiohttp openssl curl valgrind

.PHONY: all test test-only test-asan unit demo bench deps deps-fuzz clean install fuzz soak
all: switchboard

switchboard: $(BUILD)/switchboard
ifneq ($(SANITIZE),1)
	cp $< $@
endif

$(BUILD)/switchboard: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# Tests and benches link against an archive, so a test may define its own
# version of a module's functions (e.g. the chat_* upcalls) and the linker
# then leaves that module out.
$(BUILD)/libswitchboard.a: $(LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libswitchboard.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libswitchboard.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libswitchboard.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libswitchboard.a $(LDLIBS)

unit: $(BUILD)/switchboard $(TEST_BINS)

# Runs the whole suite twice: a normal build, then ASan+UBSan. The runner prints the
# summary line "N passed, N failed" last and exits non-zero on any failure.
test: deps
	$(MAKE) -j2 unit
	$(MAKE) -j2 unit SANITIZE=1
	cp build/default/switchboard switchboard
	tests/run.sh build/default build/asan

test-only: unit
	tests/run.sh $(BUILD)

demo: deps all
	examples/demo-setup.sh
	@echo "Type: new <a task>   (then answer the question: t<N> Formal, or click q<id> Casual; quit to stop)"
	./switchboard serve -c config/demo.conf

bench: deps all $(BENCH_BINS)
	bench/run.sh $(BUILD)

# Crash-and-overload soak (not part of make test; a short one is):
# SOAK_N messages, SOAK_KILLS kill -9s at random moments, a CPU hog.
SOAK_N     ?= 1000
SOAK_KILLS ?= 20
soak: deps all
	/usr/bin/python3 tests/e2e/soak.py -n $(SOAK_N) --kills $(SOAK_KILLS) --hog

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Fuzz targets: the stream parsers and the MCP server, linked with every object
# but main.o, built by clang with -fsanitize=fuzzer into build/fuzz.  Run one:
#   build/fuzz/fuzz-claude -max_total_time=60
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz-*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
FUZZ_FLAGS:= -g -O1 -std=c11 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LIBSRC := $(filter-out bot/main.c,$(SRCS))

# make fuzz builds every target, then runs each for FUZZ_TIME seconds from its
# seed corpus (tests/fuzz/corpus/NAME, if any); new inputs go to build/fuzz/corpus.
FUZZ_TIME ?= 30
fuzz: deps-fuzz $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p build/fuzz/corpus/$$n; \
	  seeds=; [ -d tests/fuzz/corpus/$$n ] && seeds=tests/fuzz/corpus/$$n; \
	  echo "fuzz: $$n for $(FUZZ_TIME) s"; \
	  $$f -max_total_time=$(FUZZ_TIME) -print_final_stats=0 build/fuzz/corpus/$$n $$seeds \
	    >build/fuzz/$$n.log 2>&1 || { tail -n 40 build/fuzz/$$n.log; exit 1; }; done

deps-fuzz:
	@command -v clang >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang)

build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIBSRC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -o $@ $< $(FUZZ_LIBSRC) $(LDLIBS)

install: all
	install -D -m 0755 switchboard $(DESTDIR)/usr/local/bin/switchboard

clean:
	rm -rf build switchboard

-include $(OBJS:.o=.d) $(TEST_BINS:=.d)
