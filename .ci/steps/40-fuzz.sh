#!/bin/bash
# .ci/steps/40-fuzz.sh: a short libFuzzer run (ASan/UBSan, FUZZ_SECONDS=30 split 20 + 10 + 11 s)
# over JSON decoding and error bodies, the token-list decoder against cJSON (differential) and
# request building, starting from the committed seeds and regression crashers.
set -u
cd "$(dirname "$0")/../.." || exit 2
mkdir -p build
if make --no-print-directory fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-30}"; then
  echo "1 0" >> build/ci-counts
  exit 0
fi
echo "0 1" >> build/ci-counts
exit 1
