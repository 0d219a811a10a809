#!/bin/sh
# bench/run.sh: run the benchmarks (bench/bench.lua) under Lua 5.4 with this tree's build.
# Usage: sh bench/run.sh [--smoke]      (make bench / make bench-smoke build what it needs first)
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
export ATLADMIN_TOP="$top" ATLADMIN_LUA="${ATLADMIN_LUA:-lua5.4}"
export LUA_PATH_5_4="$top/lua/?.lua;$top/lua/?/init.lua;;"
export LUA_CPATH_5_4="$top/build/5.4/?.so;;"
exec lua5.4 bench/bench.lua "$@"
