# atladmin: build the C core per Lua ABI, the fake Admin API server, run the specs.
#
#   make                 build for Lua 5.4 (build/5.4/atladmin/core.so) and the fake server
#   make LUA=5.1         build for another ABI: 5.4, 5.3, 5.1, luajit
#   make test            install what is missing, build, run every spec
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

test: deps all
	@sh spec/run $(LUA)

demo: deps all
	@sh examples/demo.sh

clean:
	rm -rf $(BUILD)

# ---- portability: other Lua ABIs, install, LuaRocks ----------------------------------------
# (targets for several ABIs at once and `make install` go here)


# ---- hardening: sanitizers, valgrind, fuzzing ----------------------------------------------
# (asan, valgrind, fuzz, check-all go here)


# ---- scale: benchmarks ---------------------------------------------------------------------
# (bench goes here)


# ---- command line: the atladmin command -------------------------------------------------------
# (anything the CLI needs to build or install goes here)

