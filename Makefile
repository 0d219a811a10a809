# atladmin: build the C core per Lua ABI, the fake Admin API server, run the specs.
#
#   make                 build for Lua 5.4 (build/5.4/atladmin/core.so) and the fake server
#   make LUA=5.1         build for another ABI: 5.4, 5.3, 5.1, luajit
#   make test            install what is missing, build every ABI, run every spec under each
#   make test LUA=5.1    the same for one Lua only
#   make demo            install what is missing, run examples/demo.lua against the fake

LUA      ?= 5.4
PREFIX   ?= /usr/local
BUILD    := build
CC       ?= cc

ifeq ($(LUA),luajit)
  LUA_PC  := luajit
  LUA_BIN := luajit
  LUA_ABI := 5.1
else
  LUA_PC  := lua$(LUA)
  LUA_BIN := lua$(LUA)
  LUA_ABI := $(LUA)
endif

OUT      := $(BUILD)/$(LUA)
MODULE   := $(OUT)/atladmin/core.so
FAKE     := $(BUILD)/atladmin-fake

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Werror=implicit-function-declaration -Wformat=2 -Wno-unused-parameter
OPT      ?= -O2 -g
DEPCFLAGS = $(shell pkg-config --cflags libcurl libcjson openssl)
DEPLIBS   = $(shell pkg-config --libs libcurl libcjson openssl) -lm
LUA_CFLAGS = $(shell pkg-config --cflags $(LUA_PC))
CFLAGS_ALL = -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden $(WARN) $(OPT) \
             $(LUA_CFLAGS) $(DEPCFLAGS) $(EXTRA_CFLAGS) $(CFLAGS)

CORE_SRC := $(wildcard csrc/*.c)
CORE_OBJ := $(patsubst csrc/%.c,$(OUT)/obj/%.o,$(CORE_SRC))
CORE_HDR := $(wildcard csrc/*.h)

FAKE_SRC := $(wildcard csrc/fake/*.c)
FAKE_HDR := $(wildcard csrc/fake/*.h)
FAKE_CFLAGS = -std=c99 -D_GNU_SOURCE $(WARN) $(OPT) \
              $(shell pkg-config --cflags libmicrohttpd libcjson) $(EXTRA_CFLAGS) $(CFLAGS)
FAKE_LIBS   = $(shell pkg-config --libs libmicrohttpd libcjson) -lpthread -lm

.PHONY: all module fake test demo deps clean install lint

all: module fake

module: $(MODULE)

fake: $(FAKE)

$(OUT)/obj/%.o: csrc/%.c $(CORE_HDR) | $(OUT)/obj
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(MODULE): $(CORE_OBJ) | $(OUT)/atladmin
	$(CC) -shared $(EXTRA_LDFLAGS) $(LDFLAGS) -o $@ $(CORE_OBJ) $(DEPLIBS)

$(FAKE): $(FAKE_SRC) $(FAKE_HDR) | $(BUILD)
	$(CC) $(FAKE_CFLAGS) -o $@ $(FAKE_SRC) $(EXTRA_LDFLAGS) $(LDFLAGS) $(FAKE_LIBS)

$(OUT)/obj $(OUT)/atladmin $(BUILD):
	mkdir -p $@

deps:
	@sh .ci/deps

test: deps all test-modules
	@sh spec/run $(TEST_LUAS)

demo: deps all
	@sh examples/demo.sh

clean:
	rm -rf $(BUILD)

# ---- portability: other Lua ABIs, install, LuaRocks ----------------------------------------
# `make test` covers every ABI unless LUA was given on the command line.
ALL_LUAS := 5.4 5.3 5.1 luajit
ifeq ($(origin LUA),command line)
  TEST_LUAS := $(LUA)
else
  TEST_LUAS := $(ALL_LUAS)
endif

.PHONY: modules test-modules rock

modules:
	@for v in $(ALL_LUAS); do $(MAKE) --no-print-directory module LUA=$$v || exit 1; done

test-modules:
	@for v in $(TEST_LUAS); do $(MAKE) --no-print-directory module LUA=$$v || exit 1; done

# make install [LUA=5.4] [PREFIX=/usr/local] [DESTDIR=]: the module where that Lua looks for it
# by default, plus the fake server. A LUA=luajit build goes to lib/lua/5.1 like any 5.1 module
# but needs LuaJIT (it uses LuaJIT's luaL_setfuncs); LUA=5.1 builds one for both.
LUA_LIBDIR_INST = $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_ABI)
LUA_SHAREDIR_INST = $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)
install: module fake
	install -d $(LUA_LIBDIR_INST)/atladmin $(LUA_SHAREDIR_INST)/atladmin $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(MODULE) $(LUA_LIBDIR_INST)/atladmin/core.so
	install -m 644 lua/atladmin/*.lua $(LUA_SHAREDIR_INST)/atladmin/
	install -m 755 $(FAKE) $(DESTDIR)$(PREFIX)/bin/atladmin-fake

# `luarocks make` runs this (rockspec/atladmin-scm-1.rockspec, build.type = "make") with
# LUA_INCDIR of the Lua it builds for; the rockspec then installs build/rock/atladmin/core.so.
# Objects go to one folder per include dir, so a 5.4 build never feeds a 5.1 rock.
ROCK_ABI = rock-$(notdir $(LUA_INCDIR))
rock:
	@test -n "$(LUA_INCDIR)" || { echo "make rock: give LUA_INCDIR (luarocks does)" >&2; exit 2; }
	$(MAKE) --no-print-directory module fake LUA=$(ROCK_ABI) LUA_CFLAGS=-I$(LUA_INCDIR)
	mkdir -p $(BUILD)/rock/atladmin
	cp $(BUILD)/$(ROCK_ABI)/atladmin/core.so $(BUILD)/rock/atladmin/core.so

lint:
	luacheck lua spec $(wildcard examples/*.lua) $(wildcard lua/bin/*)


# ---- hardening: sanitizers, valgrind, fuzzing ----------------------------------------------
#   make asan        module + Lua host built with ASan/UBSan (build/asan/5.4), whole suite, LSan on
#   make alloc-check every allocation of the conversion and request paths failed in turn (ASan)
#   make valgrind    whole suite under valgrind (definite leaks and errors fail)
#   make gcstress    whole suite with generational GC, then with a collector that never pauses
#   make fuzz        libFuzzer, ASan/UBSan, FUZZ_SECONDS (60) split: decoding/error bodies (two
#                    thirds), the token-list decoder against cJSON (a third), request building
#                    (a third)
#   make check-all   test + all of the above, one after another (no -j: the suite runs share
#                    build/spec-5.4.tap); logs and figures land in build/hardening/
ASAN_BUILD   := $(BUILD)/asan
ASAN_OUT     := $(ASAN_BUILD)/5.4
SAN_FLAGS    := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_CC       ?= clang
FUZZ_SECONDS ?= 60
HARD_OUT     := $(BUILD)/hardening
TOOL_CFLAGS   = -std=c99 -D_POSIX_C_SOURCE=200809L -g -O1 $(SAN_FLAGS) $(WARN) \
                $(shell pkg-config --cflags lua5.4 libcurl libcjson openssl)
TOOL_LIBS     = $(shell pkg-config --libs lua5.4 libcurl libcjson openssl) -lm
SAN_ENV       = ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp

.PHONY: asan asan-build alloc-check valgrind gcstress fuzz fuzz-build check-all

asan-build: $(ASAN_OUT)/lua_host $(ASAN_OUT)/alloc_fail
	@$(MAKE) --no-print-directory module BUILD=$(ASAN_BUILD) LUA=5.4 CC=$(SAN_CC) OPT="-O1 -g" \
	  EXTRA_CFLAGS="$(SAN_FLAGS)" EXTRA_LDFLAGS="$(SAN_FLAGS)"

$(ASAN_OUT)/lua_host: fuzz/lua_host.c | $(HARD_OUT)
	mkdir -p $(ASAN_OUT)
	$(SAN_CC) $(TOOL_CFLAGS) -o $@ $< $(TOOL_LIBS)

$(ASAN_OUT)/alloc_fail: fuzz/alloc_fail.c $(CORE_SRC) $(CORE_HDR) | $(HARD_OUT)
	mkdir -p $(ASAN_OUT)
	$(SAN_CC) $(TOOL_CFLAGS) -o $@ fuzz/alloc_fail.c $(CORE_SRC) $(TOOL_LIBS)

$(HARD_OUT):
	mkdir -p $@

asan: deps fake asan-build
	@ATLADMIN_SPEC_WRAPPER="sh spec/support/asan-wrap $(ASAN_OUT)" ATLADMIN_ALLOC_FAIL=$(ASAN_OUT)/alloc_fail \
	  sh spec/run 5.4 > $(HARD_OUT)/asan.txt 2>&1; st=$$?; tail -n 1 $(HARD_OUT)/asan.txt; \
	  n=$$(grep -c "ERROR: [A-Za-z]*Sanitizer\|runtime error:" $(HARD_OUT)/asan.txt); \
	  echo "asan: $$n sanitizer reports (log: $(HARD_OUT)/asan.txt)"; [ $$st -eq 0 ] && [ $$n -eq 0 ]

alloc-check: deps fake asan-build
	@ATLADMIN_ALLOC_FAIL=$(ASAN_OUT)/alloc_fail ATLADMIN_SPEC_WRAPPER="sh spec/support/asan-wrap $(ASAN_OUT)" \
	  sh spec/run 5.4 -- spec/alloc_spec.lua

valgrind: deps all | $(HARD_OUT)
	@ATLADMIN_SPEC_WRAPPER="valgrind --leak-check=full --keep-debuginfo=yes --errors-for-leak-kinds=definite \
	  --error-exitcode=99 --suppressions=$(CURDIR)/fuzz/valgrind.supp" \
	  sh spec/run 5.4 > $(HARD_OUT)/valgrind.txt 2>&1; st=$$?; tail -n 1 $(HARD_OUT)/valgrind.txt; \
	  grep -a -E "ERROR SUMMARY|definitely lost" $(HARD_OUT)/valgrind.txt | sort | uniq -c; exit $$st

gcstress: deps all | $(HARD_OUT)
	@LUA_INIT_5_4="collectgarbage('generational')" sh spec/run 5.4 2>&1 | tee $(HARD_OUT)/gcstress-generational.txt | tail -1
	@LUA_INIT_5_4="collectgarbage('incremental', 1, 400)" sh spec/run 5.4 2>&1 | tee $(HARD_OUT)/gcstress-nopause.txt | tail -1
	@tail -1 $(HARD_OUT)/gcstress-generational.txt | grep -q ", 0 failed" && tail -1 $(HARD_OUT)/gcstress-nopause.txt | grep -q ", 0 failed"

fuzz-build: $(BUILD)/fuzz/fuzz_decode $(BUILD)/fuzz/fuzz_request $(BUILD)/fuzz/fuzz_jsonlua

$(BUILD)/fuzz/%: fuzz/%.c $(CORE_SRC) $(CORE_HDR)
	mkdir -p $(BUILD)/fuzz
	clang $(TOOL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(CORE_SRC) $(TOOL_LIBS)

# Three targets: decoding and error bodies get two thirds of FUZZ_SECONDS, the differential
# token-list decoder (jsonlua.c against cJSON) a third, request building a third and a second
# (as before): 40 + 20 + 21 s by default, the same total as when decoding had all 60.
# The committed seeds (fuzz/corpus*, crashers kept in fuzz/regressions*) are read, never
# written: new finds go to fuzz/corpus-work/.
FUZZ_RUN = $(SAN_ENV) $(BUILD)/fuzz/fuzz_$(1) -max_total_time=$(2) -max_len=65536 -timeout=10 \
	  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/$(1)- \
	  fuzz/corpus-work/$(1) $(3) > $(HARD_OUT)/fuzz-$(1).txt 2>&1

fuzz: deps fuzz-build | $(HARD_OUT)
	@mkdir -p fuzz/corpus-work/decode fuzz/corpus-work/request fuzz/corpus-work/jsonlua
	@$(call FUZZ_RUN,decode,$$(( $(FUZZ_SECONDS) >= 2 ? $(FUZZ_SECONDS) * 2 / 3 : 1 )),fuzz/corpus fuzz/regressions); st=$$?; \
	  $(call FUZZ_RUN,jsonlua,$$(( $(FUZZ_SECONDS) >= 3 ? $(FUZZ_SECONDS) / 3 : 1 )),-dict=fuzz/jsonlua.dict fuzz/corpus-jsonlua fuzz/regressions-jsonlua); \
	  st3=$$?; \
	  $(call FUZZ_RUN,request,$$(( $(FUZZ_SECONDS) / 3 + 1 )),fuzz/corpus-request fuzz/regressions-request); \
	  st2=$$?; for t in decode jsonlua request; do echo "fuzz_$$t:"; \
	  grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss|SUMMARY)|ERROR|disagree" $(HARD_OUT)/fuzz-$$t.txt; done; \
	  [ $$st -eq 0 ] && [ $$st2 -eq 0 ] && [ $$st3 -eq 0 ]

check-all: test asan valgrind gcstress fuzz
	@echo "check-all: every hardening run passed; figures in $(HARD_OUT)/"


# ---- scale: benchmarks ---------------------------------------------------------------------
# make bench         every benchmark side by side with its reference; ratios on stdout
# make bench-smoke   the same with small counts (~10 s): checks that the bench still runs
BENCH_LOOP := $(BUILD)/bench/curl_loop

.PHONY: bench bench-smoke

$(BENCH_LOOP): bench/curl_loop.c | $(BUILD)
	mkdir -p $(BUILD)/bench
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L $(WARN) -O2 $(DEPCFLAGS) -o $@ $< $(shell pkg-config --libs libcurl)

bench: deps
	@$(MAKE) -s LUA=5.4 module fake $(BENCH_LOOP)
	@sh bench/run.sh

bench-smoke: deps
	@$(MAKE) -s LUA=5.4 module fake $(BENCH_LOOP)
	@sh bench/run.sh --smoke


# ---- command line: the atladmin command -------------------------------------------------------
#   make install-cli     the atladmin launcher (and atladmin-fake, for `atladmin fake`) into
#                        $(DESTDIR)$(PREFIX)/bin; `make install` does it too. The launcher runs
#                        under lua$(LUA) (luajit for LUA=luajit).
#   make cli-demo        the same as make demo

BINDIR ?= $(PREFIX)/bin

.PHONY: install-cli uninstall-cli cli-demo

install: install-cli

install-cli: $(FAKE)
	install -d $(DESTDIR)$(BINDIR)
	sed '1s|^#!.*|#!/usr/bin/env $(LUA_BIN)|' lua/bin/atladmin > $(DESTDIR)$(BINDIR)/atladmin.tmp
	chmod 755 $(DESTDIR)$(BINDIR)/atladmin.tmp
	mv -f $(DESTDIR)$(BINDIR)/atladmin.tmp $(DESTDIR)$(BINDIR)/atladmin
	install -m 755 $(FAKE) $(DESTDIR)$(BINDIR)/atladmin-fake

uninstall-cli:
	rm -f $(DESTDIR)$(BINDIR)/atladmin $(DESTDIR)$(BINDIR)/atladmin-fake

cli-demo: demo

