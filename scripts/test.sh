#!/usr/bin/env bash
# The whole kpiscale test suite: installs what is missing, builds with warnings as errors, checks
# formatting, runs every ctest test (unit, integration with real Redis/PostgreSQL/Prometheus/
# nginx/HAProxy/wrk/kubectl on loopback, artifact validation), then rebuilds with ASan+UBSan and
# runs the unit tests under it. Exits non-zero if any stage fails. Safe to run twice.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

./scripts/install-deps.sh || exit 1

jobs=$(nproc)
failed=()
stage() { echo; echo "=== $* ==="; }

stage "format (clang-format --dry-run --Werror)"
if ! git ls-files -z -- '*.cc' '*.h' | xargs -0 -r clang-format --dry-run --Werror; then
  failed+=(clang-format)
fi

stage "build (warnings as errors)"
# Unity batches compile the heavy third-party headers (cpp-httplib, fmt, CLI11, gtest) once per
# batch of sources instead of once per file, which is most of a clean build's time. The sources
# also build one by one (CMAKE_UNITY_BUILD=OFF), which is what an editing session wants.
cmake -S . -B build -G Ninja -DKPISCALE_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_UNITY_BUILD=ON >/dev/null &&
  cmake --build build -j "$jobs" || { echo "build failed"; exit 1; }

stage "ctest (all tests)"
ctest --test-dir build --output-on-failure --timeout 600 -j "$jobs" 2>&1 | tee build/ctest.log
[[ ${PIPESTATUS[0]} -eq 0 ]] || failed+=(ctest)

stage "ASan+UBSan build, unit tests"
# Only the binaries behind unit-labelled tests are built again under the sanitizers (the list
# comes from the main build's ctest), which halves this stage.
unit_targets=$(ctest --test-dir build -L unit --show-only=json-v1 | /usr/bin/python3 -c '
import json, os, sys
names = {os.path.basename(t["command"][0]) for t in json.load(sys.stdin)["tests"] if t.get("command")}
print(" ".join(sorted(names)))')
if [[ -z $unit_targets ]]; then
  failed+=(asan-no-unit-tests)
elif cmake -S . -B build-asan -G Ninja -DKPISCALE_SANITIZE=ON -DKPISCALE_BUILD_BENCH=OFF \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_UNITY_BUILD=ON >/dev/null && cmake --build build-asan -j "$jobs" --target $unit_targets; then
  ASAN_OPTIONS=detect_odr_violation=2:detect_leaks=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -L unit --output-on-failure --timeout 600 -j "$jobs" \
    2>&1 | tee build-asan/ctest.log
  [[ ${PIPESTATUS[0]} -eq 0 ]] || failed+=(asan-unit)
else
  failed+=(asan-build)
fi

echo
echo "=== summary ==="
echo "sanitized unit tests: $(grep -E 'tests passed' build-asan/ctest.log 2>/dev/null || echo none)"
if ((${#failed[@]} > 0)); then
  echo "failed stages: ${failed[*]}"
fi
# ctest's summary of the full suite closes the run.
grep -E 'tests passed|tests failed' build/ctest.log | tail -1
((${#failed[@]} == 0))
