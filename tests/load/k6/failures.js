// k6 load test of the reference workload (ci-failure-agent): 100 virtual users for 5 minutes
// against GET /api/v1/failures, each user looping without think time over one keep-alive
// connection. The run fails (non-zero exit) when p99 latency reaches 200 ms or more than 0.1%
// of requests fail, which are the service-level targets the HPA and the SLO alerts use.
//
//   TARGET_URL=http://ci-failure-agent.production.svc k6 run tests/load/k6/failures.js
//
// The equivalent run with wrk (k6 does not run on the CI machines) is tests/load/run-wrk.sh;
// docs/load-testing.md explains how the two correspond.
import http from 'k6/http';
import { check } from 'k6';

const TARGET_URL = (__ENV.TARGET_URL || '').replace(/\/+$/, '');
if (!TARGET_URL) {
  throw new Error('set TARGET_URL, e.g. TARGET_URL=http://ci-failure-agent.production.svc');
}
const PATH = '/api/v1/failures';
const SLO_MS = 200;

export const options = {
  vus: 100,
  duration: '5m',
  thresholds: {
    http_req_duration: ['p(99)<200'],
    http_req_failed: ['rate<0.001'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

export default function () {
  const res = http.get(`${TARGET_URL}${PATH}`, {
    headers: { Accept: 'application/json' },
    tags: { name: PATH },
  });
  check(res, {
    'status is 200': (r) => r.status === 200,
    'duration < 200ms': (r) => r.timings.duration < SLO_MS,
  });
}
