#!/usr/bin/env bash
# Redis and PostgreSQL, direct vs through the kpiscale data observers vs HAProxy `mode tcp` (a
# pure byte relay, no parsing: the peer), in one run:
#   redis-benchmark (GET/SET, 50 connections, no pipelining; GET over 1 connection) and
#   pgbench (-S, -M extended, 8 clients).
# Targets: direct; observed (relay, 1 thread) and haproxy (nbthread 1); with RELAY_THREADS=N > 1
# also observed-tN and haproxy-tN (matched threads). Each run measures every target back to back,
# rotating the order from run to run. Per test and target: throughput, p99 and the CPU time of
# the relay process (sum of /proc/PID/task/*/schedstat run time, ns precision) per 1,000
# commands. The summary gives medians and min–max over RUNS, the throughput ratio to direct and
# the added p99.
# Usage: bench/data/run.sh [BUILD_DIR]
#   env: RUNS=5 REDIS_REQUESTS=100000 PGBENCH_SECONDS=5 RELAY_THREADS=2 (1: no matched run)
#        RELAY_MODES="immediate spin": extra 1-thread relay targets (observed-immediate: each read
#        forwarded at once, the relay before deferred writes; observed-spin: one more
#        non-blocking poll before sleeping)
set -euo pipefail
BUILD=${1:-build}
RUNS=${RUNS:-5}
REDIS_REQUESTS=${REDIS_REQUESTS:-100000}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-5}
RELAY_THREADS=${RELAY_THREADS:-2}
RELAY_MODES=${RELAY_MODES:-}
HOST_BIN=$BUILD/bench/data/kpiscale_data_observers_bench
PG_BIN=/usr/lib/postgresql/15/bin
[[ -x $HOST_BIN ]] || { echo "build kpiscale_data_observers_bench first ($HOST_BIN)" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "haproxy not installed (apt-get install haproxy)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/kpiscale-bench-data-XXXXXX)
chmod 755 "$WORK"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
PG_PORT=$(free_port)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
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
pgbench -i -q -s 5 -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres >/dev/null 2>&1

declare -A RPORT PPORT PID
RPORT[direct]=$REDIS_PORT
PPORT[direct]=$PG_PORT
PID[direct]=""
TARGETS=(direct)

start_observed() {  # name threads [mode]
  "$HOST_BIN" 127.0.0.1:0 "127.0.0.1:$REDIS_PORT" 127.0.0.1:0 "127.0.0.1:$PG_PORT" "$2" ${3:-} \
    </dev/null >"$WORK/$1.out" 2>"$WORK/$1.err" &
  PID[$1]=$!
  PIDS+=("${PID[$1]}")
  until grep -q ready "$WORK/$1.out" 2>/dev/null; do sleep 0.05; done
  RPORT[$1]=$(sed -n 's/.*redis=\([0-9]*\).*/\1/p' "$WORK/$1.out")
  PPORT[$1]=$(sed -n 's/.*postgres=\([0-9]*\).*/\1/p' "$WORK/$1.out")
  TARGETS+=("$1")
}
start_haproxy() {  # name nbthread: the same two relays, byte for byte, no parsing
  RPORT[$1]=$(free_port)
  PPORT[$1]=$(free_port)
  cat >"$WORK/$1.cfg" <<CFG
global
  nbthread $2
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 5m
  timeout server 5m
listen redis
  bind 127.0.0.1:${RPORT[$1]}
  server redis 127.0.0.1:$REDIS_PORT
listen postgres
  bind 127.0.0.1:${PPORT[$1]}
  server postgres 127.0.0.1:$PG_PORT
CFG
  haproxy -f "$WORK/$1.cfg" -db </dev/null >"$WORK/$1.log" 2>&1 &
  PID[$1]=$!
  PIDS+=("${PID[$1]}")
  until redis-cli -p "${RPORT[$1]}" ping >/dev/null 2>&1; do sleep 0.05; done
  TARGETS+=("$1")
}
start_observed observed 1
start_haproxy haproxy 1
for mode in $RELAY_MODES; do start_observed "observed-$mode" 1 "$mode"; done
if (( RELAY_THREADS > 1 )); then
  start_observed "observed-t$RELAY_THREADS" "$RELAY_THREADS"
  start_haproxy "haproxy-t$RELAY_THREADS" "$RELAY_THREADS"
fi

cpu_ns() {  # run time of every thread of PID (schedstat field 1, ns); 0 for direct
  [[ -z $1 ]] && { echo 0; return; }
  # %.0f, not %d: mawk clamps %d to 2^31 (2.1 s of CPU).
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}
# Appends "target test rps p99_ms cpu_ms_per_1k" to $WORK/results.txt.
record() {  # target test rps p99 commands cpu0 cpu1
  local per1k
  per1k=$(awk -v a="$6" -v b="$7" -v n="$5" 'BEGIN { printf "%.4f", (b - a) / 1e6 / (n / 1000) }')
  echo "$1 $2 $3 $4 $per1k" >>"$WORK/results.txt"
}
redis_test() {  # target test redis-benchmark-args...
  local t=$1 name=$2 n c0 c1 line
  shift 2
  c0=$(cpu_ns "${PID[$t]}")
  line=$(redis-benchmark -h 127.0.0.1 -p "${RPORT[$t]}" "$@" -P 1 --csv 2>/dev/null | tr -d '"' |
         awk -F, 'NR > 1 { print $2, $7 }')
  c1=$(cpu_ns "${PID[$t]}")
  n=$(printf '%s\n' "$@" | awk 'prev == "-n" { print } { prev = $0 }')
  record "$t" "$name" $line "$n" "$c0" "$c1"
}
pg_test() {  # target run
  local t=$1 dir="$WORK/pglog-$1-$2" c0 c1 tps p99 n
  mkdir -p "$dir"
  c0=$(cpu_ns "${PID[$t]}")
  (cd "$dir" && pgbench -n -S -M extended -c 8 -j 2 -T "$PGBENCH_SECONDS" -l -h 127.0.0.1 \
    -p "${PPORT[$t]}" -U postgres postgres >"$dir/out.txt" 2>&1)
  c1=$(cpu_ns "${PID[$t]}")
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$dir/out.txt" | head -1)
  n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$dir/out.txt")
  p99=$(cat "$dir"/pgbench_log.* | awk '{ print $3 }' | sort -n |
        awk '{ a[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f", a[i] / 1000 }')
  rm -f "$dir"/pgbench_log.*
  record "$t" pgbench-S "$tps" "$p99" "$n" "$c0" "$c1"
}

count=${#TARGETS[@]}
for i in $(seq 1 "$RUNS"); do
  order=()
  for k in $(seq 0 $((count - 1))); do order+=("${TARGETS[$(( (k + i) % count ))]}"); done
  for t in "${order[@]}"; do
    redis_test "$t" SET -t set -n "$REDIS_REQUESTS" -c 50
    redis_test "$t" GET -t get -n "$REDIS_REQUESTS" -c 50
    # One connection: the per-request cost of the extra hop with the least CPU contention.
    redis_test "$t" GET-c1 -t get -n $((REDIS_REQUESTS / 5)) -c 1
  done
  for t in "${order[@]}"; do pg_test "$t" "$i"; done
done

for t in "${TARGETS[@]}"; do
  [[ -n ${PID[$t]} ]] && kill "${PID[$t]}" 2>/dev/null || true
done
for t in "${TARGETS[@]}"; do
  [[ $t == observed* ]] && { wait "${PID[$t]}" 2>/dev/null || true; echo "$t: $(tail -1 "$WORK/$t.out")"; }
done
PIDS=()

python3 - "$WORK/results.txt" "$RUNS" "${TARGETS[@]}" <<'PY'
import statistics, sys
path, runs, targets = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [line.split() for line in open(path)]
rows = [(r[0], r[1], float(r[2]), float(r[3]), float(r[4])) for r in rows]
tests = ["SET", "GET", "GET-c1", "pgbench-S"]
def mm(vals, fmt):
    return f"{statistics.median(vals):{fmt}} ({min(vals):{fmt}}–{max(vals):{fmt}})"
print("| test | target | throughput median (min–max) /s | p99 median (min–max) ms "
      "| relay CPU ms / 1,000 commands median (min–max) |")
print("|---|---|---|---|---|")
med = {}
for test in tests:
    for target in targets:
        sel = [r for r in rows if r[0] == target and r[1] == test]
        if not sel:
            continue
        rps, p99, cpu = [r[2] for r in sel], [r[3] for r in sel], [r[4] for r in sel]
        med[test, target] = (statistics.median(rps), statistics.median(p99),
                             statistics.median(cpu))
        cpu_text = "–" if target == "direct" else mm(cpu, ".3f")
        print(f"| {test} | {target} | {mm(rps, '.0f')} | {mm(p99, '.3f')} | {cpu_text} |")
print()
relays = [t for t in targets if t != "direct"]
print(f"Ratios to direct (medians of {runs} runs); added p99 in ms; relay CPU ms per 1,000 commands.")
print()
print("| test | " + " | ".join(f"{t} thr/direct | {t} +p99 | {t} CPU" for t in relays) + " |")
print("|---|" + "---|---|---|" * len(relays))
for test in tests:
    if (test, "direct") not in med:
        continue
    d = med[test, "direct"]
    cells = []
    for t in relays:
        o = med[test, t]
        cells += [f"{o[0] / d[0]:.3f}", f"{o[1] - d[1]:+.3f}", f"{o[2]:.3f}"]
    print(f"| {test} | " + " | ".join(cells) + " |")
PY
