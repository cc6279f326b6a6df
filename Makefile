# Switchboard — one non-recursive GNU Makefile.
#
#   make            build ./switchboard
#   make test       install deps, build, run the suite, then run it again under ASan+UBSan
#   make demo       the offline demo (web chat + console, demo agent)
#   make bench      benchmarks (print numbers, never fail on speed)
#   make deps       install the Debian packages and the pinned agent CLIs (no-op when present)
#   make compat     the real-CLI tests against the newest published Claude Code and Codex
#   make fuzz       libFuzzer targets (clang) into build/fuzz, each run FUZZ_TIME s; not part of make test
#   make soak       kill -9 and CPU-hog soak through the fake Slack; not part of make test
#   SANITIZE=1      build into build/asan with AddressSanitizer + UBSan
#   make install    PREFIX=/usr/local DESTDIR= : binary, man pages, unit, docs
#   make uninstall  the same files (an edited /etc/switchboard is kept)

PKGS      := libuv libwebsockets libcurl jansson libgit2 libconfig sqlite3 libssl libcrypto
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

SRCS      := $(filter-out bot/agent-main.c,$(wildcard bot/*.c adapters/*.c orchestrator/*.c config/*.c))
OBJS      := $(SRCS:%.c=$(BUILD)/%.o)
# The web chat's static files, compiled in (adapters/web/embed.sh, xxd -i).
WEB_ASSETS:= $(wildcard adapters/web/*.html adapters/web/*.css adapters/web/*.js)
OBJS      += $(BUILD)/gen/web-assets.o
LIB_OBJS  := $(filter-out $(BUILD)/bot/main.o,$(OBJS))
# switchboard-agent: what agents call many times a second; libc + jansson only.
AGENT_OBJS:= $(addprefix $(BUILD)/bot/,agent-main.o agentcmd.o agentconn.o ctl-client.o util.o log.o)
TEST_SRCS := $(wildcard tests/unit/test-*.c)
TEST_BINS := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRCS:= $(wildcard bench/*.c)
BENCH_BINS:= $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

DEB_PKGS  := build-essential pkg-config git libuv1-dev libwebsockets-dev libwebsockets-evlib-uv \
             libcurl4-openssl-dev libjansson-dev libgit2-dev libconfig-dev libsqlite3-dev libssl-dev \
             python3 python3-aiohttp openssl curl valgrind nodejs bubblewrap
# service: systemd-analyze verifies the unit, mandoc lints the man pages
DEB_PKGS  += systemd mandoc
# web: assets embedded with xxd; the browser tests drive Debian's chromium
DEB_PKGS  += xxd chromium python3-websockets

.PHONY: all test test-only test-asan unit demo bench deps deps-cli deps-fuzz clean install \
        uninstall fuzz compat soak FORCE
all: switchboard switchboard-agent

# --remove-destination: a daemon still running the old binary keeps it.
switchboard: $(BUILD)/switchboard
ifneq ($(SANITIZE),1)
	cp --remove-destination $< $@
endif

switchboard-agent: $(BUILD)/switchboard-agent
ifneq ($(SANITIZE),1)
	cp --remove-destination $< $@
endif

$(BUILD)/switchboard: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/switchboard-agent: $(AGENT_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs jansson)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/gen/web-assets.c: adapters/web/embed.sh $(WEB_ASSETS)
	@mkdir -p $(dir $@)
	sh adapters/web/embed.sh $(WEB_ASSETS) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/web-assets.o: $(BUILD)/gen/web-assets.c
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

unit: $(BUILD)/switchboard $(BUILD)/switchboard-agent $(TEST_BINS)

# Runs the whole suite twice, a normal build and ASan+UBSan side by side. The runner prints the
# summary line "N passed, N failed" last and exits non-zero on any failure.
test: deps
	$(MAKE) -j2 unit
	$(MAKE) -j2 unit SANITIZE=1
	cp --remove-destination build/default/switchboard switchboard
	cp --remove-destination build/default/switchboard-agent switchboard-agent
	tests/run.sh build/default build/asan

test-only: unit
	tests/run.sh $(BUILD)

demo: deps all
	examples/demo-setup.sh
	@echo "Open the web chat at the address printed below (it carries the access token),"
	@echo "or type here: new <a task>   (then answer: t<N> Formal, or click q<id> Casual; quit to stop)"
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
FUZZ_LIBSRC := $(filter-out bot/main.c,$(SRCS)) $(BUILD)/gen/web-assets.c

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

# ---- version and install --------------------------------------------------
# The version is `git describe` of a v* tag when there is one, else VERSION
# plus the commit ("0.1.0+g0dddc7a"), else VERSION alone (a tarball).  Only
# bot/version.o is rebuilt when it changes: the stamp is rewritten only then.
VERSION_STR := $(shell v=$$(git describe --tags --dirty --match 'v[0-9]*' 2>/dev/null) \
	&& echo "$${v\#v}" || { f=$$(cat VERSION 2>/dev/null || echo 0.0.0); \
	h=$$(git rev-parse --short HEAD 2>/dev/null); echo "$$f$${h:++g$$h}"; })

$(BUILD)/version.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(VERSION_STR)' | cmp -s - $@ || echo '$(VERSION_STR)' > $@

$(BUILD)/bot/version.o: $(BUILD)/version.stamp
$(BUILD)/bot/version.o: CFLAGS += -DSB_VERSION='"$(VERSION_STR)"'

FORCE:

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/switchboard
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc

# The unit names /usr/local/bin and /etc; rewritten for other directories.
install: all
	install -D -m 0755 switchboard $(DESTDIR)$(BINDIR)/switchboard
	install -D -m 0755 switchboard-agent $(DESTDIR)$(BINDIR)/switchboard-agent
	install -D -m 0644 config/man/switchboard.1 $(DESTDIR)$(MANDIR)/man1/switchboard.1
	install -D -m 0644 config/man/switchboard.conf.5 \
	    $(DESTDIR)$(MANDIR)/man5/switchboard.conf.5
	@mkdir -p $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/local/bin/switchboard|$(BINDIR)/switchboard|g' \
	    -e 's|/etc/switchboard/|$(SYSCONFDIR)/switchboard/|g' \
	    config/switchboard.service > $(DESTDIR)$(UNITDIR)/switchboard.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/switchboard.service
	install -D -m 0644 config/switchboard.conf.example \
	    $(DESTDIR)$(DOCDIR)/switchboard.conf.example
	install -D -m 0644 config/slack-app-manifest.yml \
	    $(DESTDIR)$(DOCDIR)/slack-app-manifest.yml
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -D -m 0644 CHANGELOG.md $(DESTDIR)$(DOCDIR)/CHANGELOG.md
	install -D -m 0644 LICENSE $(DESTDIR)$(DOCDIR)/LICENSE
	@# A configuration someone edited is never overwritten.
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/switchboard/switchboard.conf ]; then \
	  echo "install: keeping $(DESTDIR)$(SYSCONFDIR)/switchboard/switchboard.conf"; \
	else \
	  mkdir -p $(DESTDIR)$(SYSCONFDIR)/switchboard && \
	  sed 's|^state_dir = .*|state_dir = "/var/lib/switchboard";|' \
	      config/switchboard.conf.example \
	      > $(DESTDIR)$(SYSCONFDIR)/switchboard/switchboard.conf && \
	  chmod 0640 $(DESTDIR)$(SYSCONFDIR)/switchboard/switchboard.conf; \
	fi

# Leaves $(SYSCONFDIR)/switchboard (your configuration and secrets) and the
# state directory alone.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/switchboard $(DESTDIR)$(BINDIR)/switchboard-agent \
	    $(DESTDIR)$(MANDIR)/man1/switchboard.1 \
	    $(DESTDIR)$(MANDIR)/man5/switchboard.conf.5 \
	    $(DESTDIR)$(UNITDIR)/switchboard.service
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build switchboard switchboard-agent

-include $(OBJS:.o=.d) $(AGENT_OBJS:.o=.d) $(TEST_BINS:=.d)
