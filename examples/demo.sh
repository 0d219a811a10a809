#!/bin/sh
# examples/demo.sh: start the fake Admin API with examples/sample-state.json, run
# examples/demo.lua against it, stop the fake. Run by `make demo` after the build.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT INT TERM
build/atladmin-fake --state examples/sample-state.json --port 0 --port-file "$tmp/port" --quiet > "$tmp/out" &
pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "the fake server did not start" >&2; exit 1; }
  sleep 0.05
done
url="http://127.0.0.1:$(cat "$tmp/port")"
echo "fake Admin API at $url"
ATLASSIAN_ADMIN_TOKEN=demo-admin-key \
LUA_PATH_5_4="$top/lua/?.lua;$top/lua/?/init.lua;;" LUA_CPATH_5_4="$top/build/5.4/?.so;;" \
  lua5.4 examples/demo.lua "$url" \
    557057:4f9acfd2-6155-419b-8de5-5b5cf27a59a0 \
    557057:9b1d2c3e-4f50-4a6b-8c7d-8e9f0a1b2c3d \
    5e5f6a63157ed50cd2b9eaca \
    557057:not-a-managed-account
