-- wrk script matching tests/load/k6/failures.js: GET /api/v1/failures on keep-alive
-- connections without think time. wrk counts responses with status >= 400 as errors
-- (summary.errors.status); done() prints one JSON line with what the k6 thresholds look at,
-- so run-wrk.sh can apply the same pass/fail rules: p99 < 200 ms and failed rate < 0.1%.
wrk.method = "GET"
wrk.path = "/api/v1/failures"
wrk.headers["Accept"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  local failed = e.status + socket_errors
  local total = summary.requests + e.connect
  local rate = 0
  if total > 0 then rate = failed / total end
  io.write(string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"failed":%d,"status_errors":%d,' ..
    '"socket_errors":%d,"failed_rate":%.6f,"p50_ms":%.3f,"p90_ms":%.3f,"p95_ms":%.3f,' ..
    '"p99_ms":%.3f,"max_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    failed, e.status, socket_errors, rate,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
