#!/bin/bash
# .ci/steps/60-cli-demo.sh: make demo (the README's quick start) must run to its end on a fresh
# machine: the fake with 300 sample accounts, examples/demo.lua, and the atladmin command's
# dry run, revoke and second audit.
set -u
cd "$(dirname "$0")/../.." || exit 2
mkdir -p build
if make demo > build/cli-demo.log 2>&1 && grep -q "tokens of .* accounts, .* revoked" build/cli-demo.log \
   && grep -q "^\$ atladmin tokens" build/cli-demo.log; then
  echo "make demo: ok"
  echo "1 0" >> build/ci-counts
  exit 0
fi
cat build/cli-demo.log
echo "make demo: FAILED"
echo "0 1" >> build/ci-counts
exit 1
