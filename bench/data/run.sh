#!/usr/bin/env bash
# Redis and PostgreSQL, direct vs through the kpiscale data observers, in one run:
#   redis-benchmark (GET/SET, 50 connections, no pipelining; GET over 1 connection) and
#   pgbench (-S, -M extended, 8 clients). Each pair runs RUNS times, alternating the order; the summary gives medians and
#   min–max of throughput and p99, the throughput ratio and the added p99.
# Usage: bench/data/run.sh [BUILD_DIR]   (env: RUNS=5 REDIS_REQUESTS=100000 PGBENCH_SECONDS=5)
set -euo pipefail
BUILD=${1:-build}
RUNS=${RUNS:-5}
REDIS_REQUESTS=${REDIS_REQUESTS:-100000}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-5}
HOST_BIN=$BUILD/bench/data/kpiscale_data_observers_bench
PG_BIN=/usr/lib/postgresql/15/bin
[[ -x $HOST_BIN ]] || { echo "build kpiscale_data_observers_bench first ($HOST_BIN)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/kpiscale-bench-data-XXXXXX)
chmod 755 "$WORK"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
PG_PORT=$(free_port)
HOST_PID=""
cleanup() {
  [[ -n $HOST_PID ]] && kill "$HOST_PID" 2>/dev/null || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  (cd /tmp && runuser -u postgres -- $PG_BIN/pg_ctl -D "$WORK/pg" -m immediate -w stop >/dev/null 2>&1) || true
  rm -rf "$WORK"
}
trap cleanup EXIT

redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes \
  --dir "$WORK" --logfile "$WORK/redis.log" --pidfile "$WORK/redis.pid"
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.05; done

chown postgres "$WORK"
(cd /tmp && runuser -u postgres -- $PG_BIN/initdb -D "$WORK/pg" -U postgres -A trust --no-sync \
  -E UTF8 --locale=C.UTF-8 >/dev/null)
cat > "$WORK/pg/postgresql.auto.conf" <<CONF
listen_addresses='127.0.0.1'
port=$PG_PORT
unix_socket_directories='$WORK/pg'
fsync=off
synchronous_commit=off
CONF
chown postgres "$WORK/pg/postgresql.auto.conf"
(cd /tmp && runuser -u postgres -- $PG_BIN/pg_ctl -D "$WORK/pg" -l "$WORK/pg.log" -w -t 30 start >/dev/null)

"$HOST_BIN" 127.0.0.1:0 "127.0.0.1:$REDIS_PORT" 127.0.0.1:0 "127.0.0.1:$PG_PORT" >"$WORK/host.out" 2>"$WORK/host.err" &
HOST_PID=$!
until grep -q ready "$WORK/host.out" 2>/dev/null; do sleep 0.05; done
OBS_REDIS=$(sed -n 's/.*redis=\([0-9]*\).*/\1/p' "$WORK/host.out")
OBS_PG=$(sed -n 's/.*postgres=\([0-9]*\).*/\1/p' "$WORK/host.out")

pgbench -i -q -s 5 -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres >/dev/null 2>&1

redis_run() {  # target port -> appends "target test rps p99_ms" lines
  redis-benchmark -h 127.0.0.1 -p "$2" -t set,get -n "$REDIS_REQUESTS" -c 50 -P 1 --csv 2>/dev/null |
    tr -d '"' | awk -F, -v t="$1" 'NR > 1 { print t, $1, $2, $7 }' >>"$WORK/redis.txt"
  # One connection: the per-request cost of the extra hop with the least CPU contention.
  redis-benchmark -h 127.0.0.1 -p "$2" -t get -n $((REDIS_REQUESTS / 5)) -c 1 -P 1 --csv 2>/dev/null |
    tr -d '"' | awk -F, -v t="$1" 'NR > 1 { print t, $1 "-c1", $2, $7 }' >>"$WORK/redis.txt"
}
pg_run() {  # target port
  local dir="$WORK/pglog-$1-$3"
  mkdir -p "$dir"
  (cd "$dir" && pgbench -n -S -M extended -c 8 -j 2 -T "$PGBENCH_SECONDS" -l -h 127.0.0.1 \
    -p "$2" -U postgres postgres >"$dir/out.txt" 2>&1)
  local tps p99
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$dir/out.txt" | head -1)
  p99=$(cat "$dir"/pgbench_log.* | awk '{ print $3 }' | sort -n |
        awk '{ a[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f", a[i] / 1000 }')
  echo "$1 pgbench-S $tps $p99" >>"$WORK/pg.txt"
}

for i in $(seq 1 "$RUNS"); do
  if (( i % 2 )); then order="direct observed"; else order="observed direct"; fi
  for t in $order; do
    if [[ $t == direct ]]; then redis_run direct "$REDIS_PORT"; else redis_run observed "$OBS_REDIS"; fi
  done
  for t in $order; do
    if [[ $t == direct ]]; then pg_run direct "$PG_PORT" "$i"; else pg_run observed "$OBS_PG" "$i"; fi
  done
done

kill "$HOST_PID"
wait "$HOST_PID" 2>/dev/null || true
HOST_PID=""

python3 - "$WORK/redis.txt" "$WORK/pg.txt" "$RUNS" <<'PY'
import statistics, sys
rows = []
for path in sys.argv[1:3]:
    for line in open(path):
        target, test, rps, p99 = line.split()
        rows.append((target, test, float(rps), float(p99)))
runs = sys.argv[3]
print(f"| test | target | throughput median (min–max) /s | p99 median (min–max) ms |")
print("|---|---|---|---|")
summary = []
for test in sorted({r[1] for r in rows}):
    med = {}
    for target in ("direct", "observed"):
        sel = [r for r in rows if r[0] == target and r[1] == test]
        rps = [r[2] for r in sel]
        p99 = [r[3] for r in sel]
        med[target] = (statistics.median(rps), statistics.median(p99))
        print(f"| {test} | {target} | {statistics.median(rps):.0f} ({min(rps):.0f}–{max(rps):.0f}) "
              f"| {statistics.median(p99):.3f} ({min(p99):.3f}–{max(p99):.3f}) |")
    summary.append((test, med["observed"][0] / med["direct"][0],
                    med["observed"][1] - med["direct"][1]))
print()
print(f"| test | throughput observed/direct (medians of {runs} runs) | added p99 ms |")
print("|---|---|---|")
for test, ratio, added in summary:
    print(f"| {test} | {ratio:.3f} | {added:+.3f} |")
PY
