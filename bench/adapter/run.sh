#!/usr/bin/env bash
# Adapter benchmark against a real Prometheus holding the same per-pod data, in one run.
# Usage: bench/adapter/run.sh [BUILD_DIR]   (RUNS=5 QUERIES=200 PROM_QUERIES=50 by default)
# Writes raw JSON lines to $OUT (default bench/results/adapter-raw.jsonl) and prints a summary
# (medians of RUNS runs with min-max) as Markdown.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
BIN=$BUILD/bench/adapter/adapter_bench
RUNS=${RUNS:-5}
QUERIES=${QUERIES:-200}
PROM_QUERIES=${PROM_QUERIES:-50}
OUT=${OUT:-bench/results/adapter-raw.jsonl}
[[ -x $BIN ]] || { echo "build $BIN first: cmake --build $BUILD --target adapter_bench" >&2; exit 1; }
WORK=$(mktemp -d)
PROM_PID=
cleanup() { [[ -n $PROM_PID ]] && kill "$PROM_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
: > "$OUT"

echo "== adapter: ingest (1,000 pods x 30 windows, one thread), $RUNS runs" >&2
for _ in $(seq "$RUNS"); do taskset -c 0 "$BIN" ingest 1000 30 >> "$OUT"; done
for pods in 1000 10000; do
  echo "== adapter: queries over $pods pods, $RUNS runs" >&2
  for _ in $(seq "$RUNS"); do "$BIN" query "$pods" "$QUERIES" >> "$OUT"; done
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_s=$(( $(date +%s) - 300 ))
for pods in 1000 10000; do
  echo "== prometheus: same data for $pods pods" >&2
  BENCH_START_S=$start_s "$BIN" export "$pods" "$WORK/om-$pods.txt"
  t0=$(date +%s.%N)
  promtool tsdb create-blocks-from openmetrics "$WORK/om-$pods.txt" "$WORK/tsdb-$pods" > "$WORK/promtool.log" 2>&1
  t1=$(date +%s.%N)
  samples=$(( pods * 15 * 31 ))
  python3 -c "import json;print(json.dumps({'bench':'ingest','peer':'prometheus','pods':$pods,'samples':$samples,'seconds':$t1-$t0,'samples_per_second':$samples/($t1-$t0)}))" >> "$OUT"
  cat > "$WORK/prom.yml" <<YML
global:
  scrape_interval: 1h
scrape_configs: []
YML
  port=$(free_port)
  prometheus --config.file="$WORK/prom.yml" --storage.tsdb.path="$WORK/tsdb-$pods" \
    --storage.tsdb.retention.time=30d --web.listen-address=127.0.0.1:$port > "$WORK/prom.log" 2>&1 &
  PROM_PID=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break; sleep 0.1; done
  kill -0 "$PROM_PID"
  for _ in $(seq "$RUNS"); do
    python3 bench/adapter/prom_query.py --port "$port" --time $(( start_s + 30 )) --queries "$PROM_QUERIES" --pods "$pods" >> "$OUT"
  done
  rss=$(awk '/VmRSS/ {print $2 * 1024}' /proc/$PROM_PID/status)
  echo "{\"bench\":\"memory\",\"peer\":\"prometheus\",\"pods\":$pods,\"rss_bytes\":$rss}" >> "$OUT"
  kill "$PROM_PID"; wait "$PROM_PID" 2>/dev/null || true; PROM_PID=
done

python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def agg(rows, key):
    v = [r[key] for r in rows]
    return statistics.median(v), min(v), max(v)
def fmt(m, lo, hi, unit="", digits=3):
    return f"{m:.{digits}f}{unit} ({lo:.{digits}f}–{hi:.{digits}f})"
print("| figure | kpiscale-adapter | Prometheus (same data) |")
print("|---|---|---|")
ing = [r for r in rows if r["bench"] == "ingest" and "peer" not in r]
m, lo, hi = agg(ing, "windows_per_second")
pi = [r for r in rows if r["bench"] == "ingest" and r.get("peer")]
ptxt = "; ".join(f"{r['pods']} pods: promtool import {r['samples_per_second']:.0f} samples/s" for r in pi)
print(f"| ingest, windows/s on one core | {m:.0f} ({lo:.0f}–{hi:.0f}) | n/a (scrape-based; {ptxt}) |")
for pods in (1000, 10000):
    for name, label in (("pods_selector_p99", "pods/* + selector, p99 metric"),
                        ("pods_selector_rps", "pods/* + selector, rps metric"),
                        ("workload_p99", "workload p99")):
        a = [r for r in rows if r["bench"] == name and r["pods"] == pods and "peer" not in r]
        p = [r for r in rows if r["bench"] == name and r["pods"] == pods and r.get("peer")]
        if not a or not p:
            continue
        cell = lambda rs: (f"p50 {fmt(*agg(rs,'p50_ms'),' ms')}; p99 {fmt(*agg(rs,'p99_ms'),' ms')}")
        print(f"| {label}, {pods} pods | {cell(a)} | {cell(p)} |")
    mem = [r for r in rows if r["bench"] == "memory" and r["pods"] == pods and "peer" not in r]
    pm = [r for r in rows if r["bench"] == "memory" and r["pods"] == pods and r.get("peer")]
    if mem:
        m, lo, hi = agg(mem, "bytes_per_pod")
        ptxt = f"{pm[0]['rss_bytes']/1e6:.0f} MB process RSS" if pm else "n/a"
        print(f"| memory at {pods} pods (30 windows each) | {m/1024:.1f} KB/pod ({lo/1024:.1f}–{hi/1024:.1f}) | {ptxt} |")
PY
