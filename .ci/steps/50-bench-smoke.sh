#!/bin/bash
# .ci/steps/50-bench-smoke.sh: run every benchmark briefly (make bench-smoke, ~10 s) so the bench
# cannot rot. Passes when it runs and prints its table of ratios; the ratios themselves are not
# judged here (a CI machine's timings are noise): bench/RESULTS.md has the measured figures.
set -u
cd "$(dirname "$0")/../.." || exit 2
mkdir -p build
out=build/bench-smoke.txt
if timeout 300 make -s bench-smoke > "$out" 2>&1 && grep -q '^| sequential tokens() over HTTP' "$out" \
   && [ "$(grep -c '^| ' "$out")" -ge 8 ]; then
  cat "$out"
  echo "1 0" >> build/ci-counts
  echo "bench smoke: 1 passed, 0 failed"
else
  cat "$out"
  echo "0 1" >> build/ci-counts
  echo "bench smoke: 0 passed, 1 failed"
  exit 1
fi
