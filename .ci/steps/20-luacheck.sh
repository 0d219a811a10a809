#!/bin/bash
# luacheck (Debian lua-check) over the Lua code, specs and examples; config in .luacheckrc.
# Appends "passed failed" (files clean, files with findings) to build/ci-counts.
set -u
cd "$(dirname "$0")/../.." || exit 2
mkdir -p build
targets=(lua spec)
for f in examples/*.lua lua/bin/*; do [ -f "$f" ] && targets+=("$f"); done
out=$(luacheck --no-color --formatter plain --codes "${targets[@]}" 2>&1)
rc=$?
[ -n "$out" ] && printf '%s\n' "$out"
total=$(find "${targets[@]}" -type f \( -name '*.lua' -o -path 'lua/bin/*' \) | sort -u | wc -l)
bad=$(printf '%s\n' "$out" | grep -E '^[^ ]+:[0-9]+:[0-9]+:' | cut -d: -f1 | sort -u | wc -l)
if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
echo "$((total - bad)) $bad" >> build/ci-counts
echo "luacheck: $((total - bad)) files clean, $bad with findings"
[ "$rc" -eq 0 ]
