#!/bin/bash
# .ci/steps/40-fuzz.sh: a short libFuzzer run (30 s, ASan/UBSan) over JSON decoding and error
# bodies, starting from the committed seeds and regression crashers.
set -u
cd "$(dirname "$0")/../.." || exit 2
mkdir -p build
if make --no-print-directory fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-30}"; then
  echo "1 0" >> build/ci-counts
  exit 0
fi
echo "0 1" >> build/ci-counts
exit 1
