#!/usr/bin/env bash
# Proxy overhead in one run: the same nginx upstream reached directly, through kpiscale-sidecar,
# through nginx (reverse proxy, upstream keepalive) and through HAProxy (http mode), each with one
# worker/thread. For every target and run:
#   * max throughput: wrk -t2 -c64 -d${DURATION}s (keep-alive)
#   * fixed rate: kpiscale_rate_load at ${RATE} req/s over ${CONNS} keep-alive connections
#     (open loop, latency from the due time), p50/p99; CPU seconds of the proxy processes per 1,000
#     requests during that phase; RSS of the proxy processes after it.
# The sidecar is measured three times: alone (`sidecar`); closing a window every second and pushing
# it to a kpiscale-adapter --local (`sidecar+push`, plain HTTP on loopback); and pushing over HTTPS
# as in a cluster (`sidecar+push-tls`: TLS to an nginx that terminates it in front of the adapter's
# ingest, the sidecar verifying it with --adapter-ca-file), so OpenSSL's share of RSS is counted.
# CPU is the sum of the first field of /proc/PID/task/*/schedstat (nanoseconds on CPU), not the
# 10 ms ticks of /proc/PID/stat, which at 1,000 req/s for 5 s resolve only ~3%.
# A sixth target, `haproxy-tcp` (HAProxy `mode tcp`, one thread), relays bytes without reading
# HTTP at all: its CPU per request is the loopback syscall floor of any relay on this machine, the
# reference for what the sidecar's parsing and measurement add on top.
# Prints medians over ${RUNS} runs with min-max, and the added latency versus direct.
# Usage: BUILD=build RUNS=5 DURATION=10 bench/proxy/run.sh
set -euo pipefail
BUILD=${BUILD:-build}
RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
RATE=${RATE:-1000}
CONNS=${CONNS:-64}
SIDECAR=${SIDECAR:-$BUILD/sidecar/kpiscale-sidecar}
ADAPTER=${ADAPTER:-$BUILD/adapter/kpiscale-adapter}
LOAD=${LOAD:-$BUILD/bench/proxy/kpiscale_rate_load}
for bin in "$SIDECAR" "$ADAPTER" "$LOAD" nginx haproxy wrk python3 openssl; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "$bin" ] || { echo "missing: $bin" >&2; exit 2; }
done
WORK=$(mktemp -d)
chmod 755 "$WORK"  # nginx workers run as nobody
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "port $1 never opened" >&2
  exit 1
}

UP=$(free_port); NG=$(free_port); HA=$(free_port); HT=$(free_port); SC=$(free_port); SCM=$(free_port)
SP=$(free_port); SPM=$(free_port); ST=$(free_port); STM=$(free_port); TLS=$(free_port); AD_SECURE=$(free_port); AD_INGEST=$(free_port); AD_METRICS=$(free_port)
mkdir -p "$WORK/up" "$WORK/ng" "$WORK/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -keyout "$WORK/tls/ingest.key" -out "$WORK/tls/ingest.crt" -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
head -c 1024 /dev/zero | tr '\0' 'k' > "$WORK/up/index.html"
# The start every nginx here shares: one worker, foreground, files in its own directory, no access
# log; the caller's lines follow inside http { }.
nginx_preamble() {
  printf 'worker_processes 1;\ndaemon off;\npid %s/nginx.pid;\nerror_log %s/error.log;\n' "$1" "$1"
  printf 'events { worker_connections 4096; }\nhttp {\n  access_log off;\n'
}
{ nginx_preamble "$WORK/up"; cat; } > "$WORK/up/nginx.conf" <<NGINX
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP; root $WORK/up; location / { } }
}
NGINX
{ nginx_preamble "$WORK/ng"; cat; } > "$WORK/ng/nginx.conf" <<NGINX
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$NG;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
NGINX
{ nginx_preamble "$WORK/tls"; cat; } > "$WORK/tls/nginx.conf" <<NGINX
  server {
    listen 127.0.0.1:$TLS ssl;
    ssl_certificate $WORK/tls/ingest.crt;
    ssl_certificate_key $WORK/tls/ingest.key;
    location / {
      proxy_pass http://127.0.0.1:$AD_INGEST;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
cat > "$WORK/haproxy.cfg" <<HAP
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  option forwardfor
frontend fe
  bind 127.0.0.1:$HA
  default_backend app
backend app
  http-reuse always
  server app 127.0.0.1:$UP
HAP
cat > "$WORK/haproxy-tcp.cfg" <<HAP
global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:$HT
  default_backend app
backend app
  server app 127.0.0.1:$UP
HAP

nginx -p "$WORK/up" -c "$WORK/up/nginx.conf" & PIDS+=($!); UP_PID=$!
nginx -p "$WORK/ng" -c "$WORK/ng/nginx.conf" & PIDS+=($!); NG_PID=$!
haproxy -db -f "$WORK/haproxy.cfg" & PIDS+=($!); HA_PID=$!
haproxy -db -f "$WORK/haproxy-tcp.cfg" & PIDS+=($!); HT_PID=$!
"$SIDECAR" --listen=127.0.0.1:$SC --upstream=127.0.0.1:$UP --metrics-listen=127.0.0.1:$SCM \
  --log-level=warn >"$WORK/sidecar.out" 2>"$WORK/sidecar.err" & PIDS+=($!); SC_PID=$!
"$ADAPTER" --local --secure-port="$AD_SECURE" --ingest-port="$AD_INGEST" --metrics-port="$AD_METRICS" \
  --cert-dir="$WORK/adapter-certs" >"$WORK/adapter.out" 2>"$WORK/adapter.err" & PIDS+=($!)
POD_NAME=bench-0 POD_NAMESPACE=bench POD_UID=bench-uid "$SIDECAR" --listen=127.0.0.1:$SP \
  --upstream=127.0.0.1:$UP --metrics-listen=127.0.0.1:$SPM --workload=deployment/bench \
  --adapter-url="http://127.0.0.1:$AD_INGEST" --log-level=warn \
  >"$WORK/sidecar-push.out" 2>"$WORK/sidecar-push.err" & PIDS+=($!); SP_PID=$!
nginx -p "$WORK/tls" -c "$WORK/tls/nginx.conf" & PIDS+=($!)
POD_NAME=bench-1 POD_NAMESPACE=bench POD_UID=bench-uid-1 "$SIDECAR" --listen=127.0.0.1:$ST \
  --upstream=127.0.0.1:$UP --metrics-listen=127.0.0.1:$STM --workload=deployment/bench \
  --adapter-url="https://127.0.0.1:$TLS" --adapter-ca-file="$WORK/tls/ingest.crt" --log-level=warn \
  >"$WORK/sidecar-tls.out" 2>"$WORK/sidecar-tls.err" & PIDS+=($!); ST_PID=$!
for p in $UP $NG $HA $HT $SC $SP $ST $TLS $AD_INGEST; do wait_port "$p"; done

# The processes whose CPU and RSS count for a target (nginx: master and worker).
procs() {
  case $1 in
    direct) echo "" ;;
    sidecar) echo "$SC_PID" ;;
    sidecar+push) echo "$SP_PID" ;;
    sidecar+push-tls) echo "$ST_PID" ;;
    nginx) echo "$NG_PID $(pgrep -P "$NG_PID" | tr '\n' ' ')" ;;
    haproxy) echo "$HA_PID" ;;
    haproxy-tcp) echo "$HT_PID" ;;
  esac
}
port_of() { case $1 in direct) echo $UP ;; sidecar) echo $SC ;; sidecar+push) echo $SP ;; sidecar+push-tls) echo $ST ;; nginx) echo $NG ;; haproxy) echo $HA ;; haproxy-tcp) echo $HT ;; esac; }
cpu_ns() {  # nanoseconds on CPU of every thread of the given processes
  local total=0 t ns
  for p in $1; do
    for t in /proc/"$p"/task/*/schedstat; do
      read -r ns _ <"$t" && total=$((total + ns))
    done
  done
  echo $total
}
rss_kb() {  # $1 pids, $2 VmRSS or RssAnon
  local total=0
  for p in $1; do total=$((total + $(awk "/$2/ {print \$2}" "/proc/$p/status"))); done
  echo $total
}
RESULTS="$WORK/results.txt"
: > "$RESULTS"
for run in $(seq 1 "$RUNS"); do
  for target in direct sidecar sidecar+push sidecar+push-tls nginx haproxy haproxy-tcp; do
    port=$(port_of $target)
    rps=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
    pids=$(procs $target)
    before=$(cpu_ns "$pids")
    line=$("$LOAD" 127.0.0.1 "$port" / "$RATE" "$DURATION" "$CONNS")
    after=$(cpu_ns "$pids")
    rss=$(rss_kb "$pids" VmRSS)
    anon=$(rss_kb "$pids" RssAnon)
    echo "run=$run target=$target rps=$rps cpu_ns=$((after - before)) rss_kb=$rss anon_kb=$anon $line" | tee -a "$RESULTS"
  done
done

# The pushing targets must really have pushed (a failing push would cost less).
for pair in "sidecar+push $SPM" "sidecar+push-tls $STM"; do
  set -- $pair
  python3 - "$1" "$2" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[2]}/metrics").read().decode()
def value(name):
    return next((l.split()[1] for l in body.splitlines() if l.startswith(name + " ")), "absent")
print(f"{sys.argv[1]}: windows pushed={value('kpiscale_sidecar_windows_pushed_total')} "
      f"push failures={value('kpiscale_sidecar_push_failures_total')}")
PY
done

python3 - "$RESULTS" "$RATE" "$DURATION" <<'PY'
import re, statistics, sys
path, rate, duration = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rows = [dict(kv.split("=") for kv in line.split()) for line in open(path) if line.strip()]
targets = ["direct", "sidecar", "sidecar+push", "sidecar+push-tls", "nginx", "haproxy", "haproxy-tcp"]
def series(t, key, f=float):
    return [f(r[key]) for r in rows if r["target"] == t]
def fmt(vals, unit="", digits=1):
    m = statistics.median(vals)
    return f"{m:.{digits}f}{unit} ({min(vals):.{digits}f}–{max(vals):.{digits}f})"
runs = {t: [r for r in rows if r["target"] == t] for t in targets}
print(f"\n| target | max req/s (wrk -c64) | p50 µs @{rate:.0f}/s | p99 µs @{rate:.0f}/s | added p50 µs | added p99 µs | CPU s / 1k req | RSS MB | of which anon MB |")
print("|---|---|---|---|---|---|---|---|---|")
for t in targets:
    rps = series(t, "rps")
    p50 = series(t, "p50_us"); p99 = series(t, "p99_us")
    # Added latency is computed per run against the direct run of the same round.
    add50 = [float(a["p50_us"]) - float(d["p50_us"]) for a, d in zip(runs[t], runs["direct"])]
    add99 = [float(a["p99_us"]) - float(d["p99_us"]) for a, d in zip(runs[t], runs["direct"])]
    reqs = rate * duration
    cpu = [float(r["cpu_ns"]) / 1e9 / (reqs / 1000.0) for r in runs[t]]
    rss = [float(r["rss_kb"]) / 1024.0 for r in runs[t]]
    anon = [float(r["anon_kb"]) / 1024.0 for r in runs[t]]
    if t == "direct":
        print(f"| {t} | {fmt(rps,'',0)} | {fmt(p50)} | {fmt(p99)} | – | – | – | – | – |")
    else:
        print(f"| {t} | {fmt(rps,'',0)} | {fmt(p50)} | {fmt(p99)} | {fmt(add50)} | {fmt(add99)} | {fmt(cpu,'',4)} | {fmt(rss,'',1)} | {fmt(anon,'',1)} |")
PY
