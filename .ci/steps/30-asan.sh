#!/bin/bash
# .ci/steps/30-asan.sh: the whole spec suite on an ASan/UBSan build with LeakSanitizer on
# (make asan, allocation-failure driver included). A sanitizer report fails the step even when
# every spec passed.
set -u
cd "$(dirname "$0")/../.." || exit 2
make --no-print-directory asan && exit 0
n=$(grep -c "ERROR: [A-Za-z]*Sanitizer\|runtime error:" build/hardening/asan.txt 2>/dev/null)
[ "${n:-0}" -gt 0 ] && echo "0 $n" >> build/ci-counts
exit 1
