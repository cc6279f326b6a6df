# Switchboard — one non-recursive GNU Makefile.
#
#   make            build ./switchboard
#   make test       install deps, build, run the suite, then run it again under ASan+UBSan
#   make demo       the offline demo (console adapter, demo agent)
#   make bench      benchmarks (print numbers, never fail on speed)
#   make deps       install the Debian packages and the pinned agent CLIs (no-op when present)
#   make compat     the real-CLI tests against the newest published Claude Code and Codex
#   make fuzz       libFuzzer targets (clang) into build/fuzz; not part of make test
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
             python3 python3-aiohttp openssl curl valgrind nodejs

.PHONY: all test test-only test-asan unit demo bench deps deps-cli deps-fuzz clean install fuzz compat
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

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@$(MAKE) --no-print-directory deps-cli

# The real Claude Code and Codex CLIs the end-to-end tests run, at the versions
# pinned in tests/package.json (+ lockfile), into the ignored tests/node_modules.
# npm ci only when an installed version differs from the pin.
CLI_PINS := @anthropic-ai/claude-code @openai/codex
deps-cli:
	@command -v npm >/dev/null || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm)
	@for p in $(CLI_PINS); do \
	  want=$$(node -p "require('./tests/package.json').dependencies['$$p']"); \
	  have=$$(node -p "try{require('./tests/node_modules/$$p/package.json').version}catch(e){''}" 2>/dev/null); \
	  if [ "$$want" != "$$have" ]; then \
	    echo "deps: npm ci in tests/ ($$p $$want, have '$$have')"; \
	    (cd tests && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
	    break; \
	  fi; \
	done

# The real-CLI scenarios against the newest published versions, installed
# into tests/node_modules-latest (ignored); prints which pass.  Not part of
# make test: it tells whether a new CLI release breaks us.
compat: all
	@mkdir -p tests/node_modules-latest
	@cd tests/node_modules-latest && [ -f package.json ] || echo '{"private":true}' > package.json
	@cd tests/node_modules-latest && npm install --no-audit --no-fund --loglevel=error \
	  @anthropic-ai/claude-code@latest @openai/codex@latest >/dev/null
	@echo "compat: claude $$(tests/node_modules-latest/node_modules/.bin/claude --version)," \
	  "codex $$(tests/node_modules-latest/node_modules/.bin/codex --version)" \
	  "(tests pin $$(node -p "Object.entries(require('./tests/package.json').dependencies).map(e=>e.join('@')).join(', ')"))"
	@SB_CLI_BIN=$$PWD/tests/node_modules-latest/node_modules/.bin \
	  SWITCHBOARD_BIN=$$PWD/switchboard /usr/bin/python3 tests/e2e/test_real_cli.py; \
	  rc=$$?; [ $$rc -eq 0 ] && echo "compat: all scenarios pass" || echo "compat: some scenarios FAIL"; exit $$rc

# Fuzz targets: the stream parsers and the MCP server, linked with every object
# but main.o, built by clang with -fsanitize=fuzzer into build/fuzz.  Run one:
#   build/fuzz/fuzz-claude -max_total_time=60
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz-*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
FUZZ_FLAGS:= -g -O1 -std=c11 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LIBSRC := $(filter-out bot/main.c,$(SRCS))

fuzz: deps-fuzz $(FUZZ_BINS)

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
