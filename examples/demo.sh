#!/bin/sh
# examples/demo.sh (make demo): start the fake Admin API with a sample organization of 300
# accounts, run examples/demo.lua, then the atladmin command: an audit as a dry run, the same
# audit revoking, and the audit again.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
lua=${ATLADMIN_LUA:-lua5.4}
v=${ATLADMIN_LUA_VERSION:-5.4}
fake=build/atladmin-fake
[ -x "$fake" ] && [ -f "build/$v/atladmin/core.so" ] || { echo "demo: run make first" >&2; exit 2; }

dir=$(mktemp -d)
"$fake" --sample 300 --port 0 --port-file "$dir/port" --quiet > /dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
i=0
while [ ! -s "$dir/port" ]; do
  i=$((i + 1)); [ "$i" -lt 200 ] || { echo "demo: the fake did not start" >&2; exit 1; }
  sleep 0.05
done

suffix=$(echo "_$v" | tr . _)
[ "$v" = 5.1 ] || [ "$v" = luajit ] && suffix=""
export "LUA_PATH$suffix=$top/lua/?.lua;$top/lua/?/init.lua;;"
export "LUA_CPATH$suffix=$top/build/$v/?.so;;"
export ATLASSIAN_ADMIN_TOKEN=test-admin-key
export ATLADMIN_BASE_URL="http://127.0.0.1:$(cat "$dir/port")"
atladmin() { "$lua" lua/bin/atladmin "$@"; }
show() { echo; echo "\$ atladmin $*"; }
# long tables are cut for the demo; the exit status is the command's
cut_table() { awk -v max=12 'NR <= max { print } NR == max + 1 { print "  ..." } END { if (NR > max) printf "  (%d lines in all)\n", NR }'; }

echo "== the library: examples/demo.lua"
"$lua" examples/demo.lua sample-org

echo
echo "== the command (fake at $ATLADMIN_BASE_URL, key from ATLASSIAN_ADMIN_TOKEN)"
show audit --org sample-org --unused-days 90 --never-used --dry-run
status=0
atladmin audit --org sample-org --unused-days 90 --never-used --dry-run > "$dir/out" 2> "$dir/err" || status=$?
cut_table < "$dir/out"
cat "$dir/err"
echo "(exit status $status: 2 accounts of the sample do not let this key revoke tokens)"

show audit --org sample-org --unused-days 90 --never-used --revoke --yes --csv
status=0
atladmin audit --org sample-org --unused-days 90 --never-used --revoke --yes --csv > "$dir/out" 2> "$dir/err" \
  || status=$?
cut_table < "$dir/out"
cat "$dir/err"
echo "(exit status $status)"

show audit --org sample-org --unused-days 90 --never-used
status=0
atladmin audit --org sample-org --unused-days 90 --never-used 2>&1 || status=$?
echo "(exit status $status: what is left is on the 2 accounts where this key may not revoke)"

show tokens 557057:00000000-0000-4000-8000-000000000001
atladmin tokens 557057:00000000-0000-4000-8000-000000000001
