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
DEPCFLAGS = $(shell pkg-config --cflags libcurl libcjson)
DEPLIBS   = $(shell pkg-config --libs libcurl libcjson) -lm
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
# (asan, valgrind, fuzz, check-all go here)


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

