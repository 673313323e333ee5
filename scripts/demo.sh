#!/usr/bin/env bash
# The local pipeline, on this machine, with embedded defaults: PostgreSQL and Redis (local
# processes), kpiscale-adapter --local, two "pods" of the reference workload (failure-agent) each
# behind its own kpiscale-sidecar with the Redis and PostgreSQL observers, and a short load mix.
# While the load runs it prints the KPIs as the HPA reads them from the custom-metrics API (with
# the equivalent `kubectl get --raw` lines), then stops everything it started.
#
#   ./scripts/demo.sh                 # defaults: 2 pods, 25 s of load
#   PODS=3 LOAD_SECONDS=40 ./scripts/demo.sh
#   KEEP_RUNNING=1 ./scripts/demo.sh  # leave everything up until Ctrl-C, to explore with kubectl
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

pods=${PODS:-2}
load_seconds=${LOAD_SECONDS:-25}
namespace=default
workload=failure-agent

./scripts/install-deps.sh
echo "== building (build/) =="
# Same configuration as scripts/test.sh, so the two commands share one build tree.
cmake -S . -B build -G Ninja -DKPISCALE_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_UNITY_BUILD=ON >/dev/null
cmake --build build -j "$(nproc)" --target kpiscale-adapter kpiscale-sidecar failure-agent | grep -E "error|FAILED" || true
adapter_bin=build/adapter/kpiscale-adapter
sidecar_bin=build/sidecar/kpiscale-sidecar
agent_bin=build/examples/failure-agent/failure-agent

work=$(mktemp -d /tmp/kpiscale-demo.XXXXXX)
chmod 755 "$work"
pids=()
pg_data=""
redis_port=""
cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  [[ -n $redis_port ]] && redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1
  [[ -n $pg_data ]] && runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$pg_data" \
    -m fast -w stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for() {  # wait_for DESCRIPTION SECONDS COMMAND...
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "timed out waiting for $what" >&2; exit 1; }
    sleep 0.1
  done
}

echo "== starting Redis and PostgreSQL =="
redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --daemonize yes \
  --dir "$work" --logfile "$work/redis.log" --pidfile "$work/redis.pid"
wait_for Redis 10 redis-cli -p "$redis_port" ping

pg_port=$(free_port)
pg_data=$work/pg
mkdir -p "$pg_data" && chown postgres "$pg_data" && chmod 700 "$pg_data"
runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$pg_data" -U postgres -A trust \
  --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
cat >>"$pg_data/postgresql.conf" <<EOF
listen_addresses='127.0.0.1'
port=$pg_port
unix_socket_directories='$pg_data'
fsync=off
max_connections=200
EOF
runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$pg_data" -l "$pg_data/server.log" -w -t 30 \
  start >/dev/null

echo "== starting kpiscale-adapter --local =="
secure_port=$(free_port)
ingest_port=$(free_port)
metrics_port=$(free_port)
"$adapter_bin" --local --secure-port="$secure_port" --ingest-port="$ingest_port" \
  --metrics-port="$metrics_port" --cert-dir="$work/certs" >"$work/adapter.out" 2>"$work/adapter.log" &
pids+=($!)
wait_for "the adapter" 20 curl -skf "https://127.0.0.1:$secure_port/readyz"

sidecar_ports=()
for i in $(seq 1 "$pods"); do
  pod=$workload-$i
  app_port=$(free_port)
  proxy_port=$(free_port)
  sidecar_metrics=$(free_port)
  obs_redis=$(free_port)
  obs_pg=$(free_port)
  printf 'app="%s"\npod-template-hash="demo"\n' "$workload" >"$work/$pod.labels"
  POD_NAME=$pod POD_NAMESPACE=$namespace POD_UID=demo-uid-$i NODE_NAME=$(hostname) \
    "$sidecar_bin" --listen="127.0.0.1:$proxy_port" --upstream="127.0.0.1:$app_port" \
    --metrics-listen="127.0.0.1:$sidecar_metrics" --workload="deployment/$workload" \
    --pod-labels-file="$work/$pod.labels" --adapter-url="http://127.0.0.1:$ingest_port" \
    --slo-threshold=200ms --push-interval=1s \
    --redis-listen="127.0.0.1:$obs_redis" --redis-upstream="127.0.0.1:$redis_port" \
    --postgres-listen="127.0.0.1:$obs_pg" --postgres-upstream="127.0.0.1:$pg_port" \
    >"$work/$pod-sidecar.out" 2>"$work/$pod-sidecar.log" &
  pids+=($!)
  wait_for "sidecar $pod" 20 curl -sf "http://127.0.0.1:$sidecar_metrics/healthz"
  seed=0
  ((i == 1)) && seed=5000
  "$agent_bin" --listen="127.0.0.1:$app_port" --redis="127.0.0.1:$obs_redis" \
    --database-dsn="host=127.0.0.1 port=$obs_pg user=postgres dbname=postgres sslmode=disable" \
    --seed="$seed" >"$work/$pod-agent.out" 2>"$work/$pod-agent.log" &
  pids+=($!)
  wait_for "failure-agent $pod" 60 curl -sf "http://127.0.0.1:$app_port/healthz"
  sidecar_ports+=("$proxy_port")
  echo "   pod $pod: client → sidecar :$proxy_port → failure-agent :$app_port" \
    "(Redis via :$obs_redis, PostgreSQL via :$obs_pg; sidecar /metrics :$sidecar_metrics)"
done

echo "== load: ${load_seconds}s of the k6-equivalent wrk mix against each pod's sidecar =="
load_pids=()
for i in $(seq 1 "$pods"); do
  TARGET_URL="http://127.0.0.1:${sidecar_ports[$((i - 1))]}" DURATION="${load_seconds}s" \
    CONNECTIONS=8 THREADS=1 tests/load/run-wrk.sh >"$work/load-$i.txt" 2>&1 &
  load_pids+=($!)
done
# A demo, not a test: let a few windows accumulate while the load runs.
sleep $((load_seconds * 2 / 3))

server=https://127.0.0.1:$secure_port
kubectl_raw() {
  KUBECONFIG=/dev/null kubectl get --raw "$1" --server="$server" --insecure-skip-tls-verify \
    --token=local-demo 2>&1
}
cm=/apis/custom.metrics.k8s.io/v1beta2/namespaces/$namespace
echo
echo "== KPIs as the HPA reads them (custom.metrics.k8s.io/v1beta2) =="
show() {  # show TITLE PATH
  local body
  body=$(kubectl_raw "$2")
  /usr/bin/python3 - "$1" "$body" <<'PY'
import json, re, sys
title, body = sys.argv[1], sys.argv[2]
SUFFIX = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9}
def readable(q):
    m = re.fullmatch(r"([0-9.]+)([numkMG]?)", q)
    return f"{float(m.group(1)) * SUFFIX[m.group(2)]:.6g}" if m else q
try:
    doc = json.loads(body)
except ValueError:
    print(f"  {title:40s} (no answer: {body.strip()[:120]})")
    sys.exit(0)
if doc.get("kind") == "Status":
    print(f"  {title:40s} absent ({doc.get('message', '')[:100]})")
    sys.exit(0)
for item in doc.get("items", []):
    obj = item.get("describedObject")
    who = f"{obj['kind']}/{obj['name']}" if obj else f"external {item['metricName']}"
    window = f"window {item['windowSeconds']}s, " if "windowSeconds" in item else ""
    print(f"  {title:40s} {who:26s} {readable(item['value']):>10s}  ({item['value']}, "
          f"{window}at {item['timestamp']})")
if not doc.get("items"):
    print(f"  {title:40s} (no fresh pods)")
PY
}
show "requests/s per pod" "$cm/pods/*/http_requests_per_second?labelSelector=app%3D$workload"
show "p99 latency per pod" "$cm/pods/*/http_request_duration_p99_seconds?labelSelector=app%3D$workload"
show "requests/s (workload)" "$cm/deployments.apps/$workload/http_requests_per_second"
show "p99 latency, merged (target < 200ms)" "$cm/deployments.apps/$workload/http_request_duration_p99_seconds"
show "p50 latency, merged" "$cm/deployments.apps/$workload/http_request_duration_p50_seconds"
show "SLO violations > 200ms (ratio)" "$cm/deployments.apps/$workload/http_slo_violations_ratio"
show "error ratio (target < 0.1%)" "$cm/deployments.apps/$workload/http_errors_ratio"
show "cache-hit ratio (target > 80%)" "$cm/deployments.apps/$workload/cache_hit_ratio"
show "cache commands/s" "$cm/deployments.apps/$workload/cache_requests_per_second"
show "DB p95 latency (target < 100ms)" \
  "$cm/deployments.apps/$workload/db_query_duration_seconds?metricLabelSelector=quantile%3D0.95"
show "DB queries/s" "$cm/deployments.apps/$workload/db_queries_per_second"
show "external: p99 (workload=$workload)" \
  "/apis/external.metrics.k8s.io/v1beta1/namespaces/$namespace/http_request_duration_p99_seconds?labelSelector=workload%3D$workload"

echo
echo "== the same with kubectl =="
echo "  kubectl get --raw '$cm/deployments.apps/$workload/http_request_duration_p99_seconds' \\"
echo "    --server=$server --insecure-skip-tls-verify --token=local-demo"
echo "  kubectl get --raw '$cm/pods/*/http_requests_per_second?labelSelector=app%3D$workload' ..."

for pid in "${load_pids[@]}"; do wait "$pid" || true; done
echo
echo "== load results (k6 thresholds: p99 < 200 ms, failed < 0.1%) =="
for i in $(seq 1 "$pods"); do
  echo "  pod $workload-$i: $(grep -E '^(PASS|FAIL)' "$work/load-$i.txt" || echo 'no result')"
done

if [[ -n ${KEEP_RUNNING:-} ]]; then
  echo
  echo "Everything is still running (adapter: $server). Ctrl-C stops it."
  wait "${pids[0]}"
fi
echo
echo "stopped everything the demo started"
