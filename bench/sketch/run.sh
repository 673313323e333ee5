#!/usr/bin/env bash
# Runs the sketch benchmarks and the Prometheus classic-histogram peers (same binary, same run)
# with 5 repetitions and prints, per benchmark, the median and min–max of CPU ns/op and wall
# ns/op across repetitions as a Markdown table.
# Usage: bench/sketch/run.sh [BUILD_DIR]   (default: build; configured if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
reps=${KPISCALE_BENCH_REPETITIONS:-5}
if [[ ! -f $build/build.ninja ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKPISCALE_BUILD_BENCH=ON >/dev/null
fi
cmake --build "$build" --target kpiscale_sketch_bench -j 2 >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$build/bench/sketch/kpiscale_sketch_bench" --benchmark_repetitions="$reps" \
  --benchmark_min_time=0.3 --benchmark_format=json --benchmark_out="$out" \
  --benchmark_out_format=json >/dev/null
python3 - "$out" "$reps" <<'PY'
import json, statistics, sys
data = json.load(open(sys.argv[1]))
runs = {}
order = []
for b in data["benchmarks"]:
    if b.get("run_type") != "iteration":
        continue
    name = b["run_name"]
    if name not in runs:
        runs[name] = []
        order.append(name)
    runs[name].append(b)
ctx = data["context"]
print(f"host: {ctx.get('host_name')}, {ctx.get('num_cpus')} CPUs @ {ctx.get('mhz_per_cpu')} MHz, "
      f"load avg {', '.join(f'{x:.2f}' for x in ctx.get('load_avg', []))}, "
      f"{sys.argv[2]} repetitions")
print()
print("| benchmark | CPU ns/op median | CPU min–max | wall ns/op median | wall min–max | counters |")
print("|---|---:|---:|---:|---:|---|")
for name in order:
    rs = runs[name]
    cpu = [r["cpu_time"] for r in rs]
    wall = [r["real_time"] for r in rs]
    extra = {k: v for k, v in rs[0].items() if k in ("buckets", "schema")}
    counters = " ".join(f"{k}={v:g}" for k, v in extra.items())
    print(f"| {name} | {statistics.median(cpu):.1f} | {min(cpu):.1f}–{max(cpu):.1f} | "
          f"{statistics.median(wall):.1f} | {min(wall):.1f}–{max(wall):.1f} | {counters} |")
PY
