#!/usr/bin/env bash
# The k6 test (k6/failures.js) with wrk, which the CI machines have: the same endpoint, the same
# concurrency (100 keep-alive connections = 100 looping virtual users), the same duration and the
# same pass/fail rules (p99 < 200 ms, failed requests < 0.1%). Prints wrk's report, then one
# JSON summary line, then PASS or FAIL; the exit status is 0 only on PASS.
#
#   TARGET_URL=http://127.0.0.1:8080 tests/load/run-wrk.sh
#   TARGET_URL=... DURATION=30s CONNECTIONS=32 THREADS=2 tests/load/run-wrk.sh   (shorter run)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${TARGET_URL:?set TARGET_URL, e.g. TARGET_URL=http://127.0.0.1:8080}"
duration=${DURATION:-5m}
connections=${CONNECTIONS:-100}
threads=${THREADS:-$(nproc)}
timeout=${TIMEOUT:-5s}
p99_limit_ms=${P99_LIMIT_MS:-200}
failed_limit=${FAILED_RATE_LIMIT:-0.001}
((threads > connections)) && threads=$connections

out=$(wrk --latency -t "$threads" -c "$connections" -d "$duration" --timeout "$timeout" \
  -s "$here/wrk/failures.lua" "${TARGET_URL%/}")
echo "$out"
summary=$(grep -E '^\{"requests"' <<<"$out" | tail -1)
[[ -n $summary ]] || { echo "FAIL: no summary from wrk"; exit 2; }
/usr/bin/python3 - "$summary" "$p99_limit_ms" "$failed_limit" <<'PY'
import json, sys
s, p99_limit, failed_limit = json.loads(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
problems = []
if s["requests"] == 0:
    problems.append("no request completed")
if not s["p99_ms"] < p99_limit:
    problems.append(f"http_req_duration p(99)={s['p99_ms']:.1f}ms, threshold p(99)<{p99_limit:g}")
if not s["failed_rate"] < failed_limit:
    problems.append(f"http_req_failed rate={s['failed_rate']:.4%}, threshold rate<{failed_limit:g}")
if problems:
    print("FAIL: " + "; ".join(problems))
    sys.exit(1)
print(f"PASS: {s['requests']} requests, {s['rps']:.0f} req/s, p99 {s['p99_ms']:.2f} ms, "
      f"failed {s['failed_rate']:.4%}")
PY
