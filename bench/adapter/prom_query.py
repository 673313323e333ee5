#!/usr/bin/env python3
"""Times PromQL queries against a real Prometheus holding the adapter benchmark's data.

Prints one JSON line per query kind with p50/p99 (ms) over N queries, the shape the adapter
benchmark prints, so run.sh can summarise both side by side.
"""
import argparse
import http.client
import json
import time
import urllib.parse

QUERIES = {
    "pods_selector_p99": 'histogram_quantile(0.99, sum by (pod, le) (rate('
                         'kpiscale_sidecar_http_request_duration_seconds_bucket{namespace="bench",app="web"}[30s])))',
    "pods_selector_rps": 'sum by (pod) (rate('
                         'kpiscale_sidecar_http_request_duration_seconds_count{namespace="bench",app="web"}[30s]))',
    "workload_p99": 'histogram_quantile(0.99, sum by (le) (rate('
                    'kpiscale_sidecar_http_request_duration_seconds_bucket{namespace="bench",deployment="web"}[30s])))',
}


def pct(values, q):
    v = sorted(values)
    return v[int(q * (len(v) - 1))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--time", type=float, required=True)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--pods", type=int, required=True)
    args = ap.parse_args()
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
    for name, promql in QUERIES.items():
        path = "/api/v1/query?" + urllib.parse.urlencode({"query": promql, "time": args.time})
        ms = []
        series = 0
        for _ in range(args.queries):
            t0 = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            ms.append((time.perf_counter() - t0) * 1000)
            data = json.loads(body)
            if resp.status != 200 or data.get("status") != "success":
                raise SystemExit(f"{name}: {resp.status} {body[:300]!r}")
            series = len(data["data"]["result"])
        print(json.dumps({"bench": name, "peer": "prometheus", "pods": args.pods,
                          "queries": args.queries, "series": series,
                          "p50_ms": round(pct(ms, 0.5), 4), "p99_ms": round(pct(ms, 0.99), 4)}))


if __name__ == "__main__":
    main()
