#!/usr/bin/env bash
# Builds every fuzz target as a real libFuzzer binary (clang, ASan+UBSan) and runs each for
# FUZZ_SECONDS (default 60) starting from its seed corpus. The ctest suite only replays the corpus
# and deterministic mutations; this is the open-ended search. Findings land in build-fuzz/findings/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
seconds=${FUZZ_SECONDS:-60}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DKPISCALE_FUZZ=ON -DKPISCALE_SANITIZE=ON \
  -DKPISCALE_WERROR=OFF -DKPISCALE_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=$(ninja -C build-fuzz -t targets all | sed -n 's/^\([a-z0-9_]*_fuzz\): .*/\1/p' | sort -u)
[[ -n "$targets" ]] || { echo "no fuzz targets"; exit 1; }
cmake --build build-fuzz -j "$(nproc)" --target $targets
mkdir -p build-fuzz/findings
for t in $targets; do
  name=${t%_fuzz}
  bin=$(find build-fuzz -type f -name "$t" -perm -u+x | head -1)
  work=build-fuzz/corpus/$name
  mkdir -p "$work"
  cp -n tests/fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
  echo "=== $t for ${seconds}s ==="
  "$bin" "$work" -max_total_time="$seconds" -artifact_prefix=build-fuzz/findings/"$name"- \
    -print_final_stats=1 2>&1 | tail -5
done
