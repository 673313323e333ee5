#!/usr/bin/python3
"""Prometheus configuration, rules and dashboards, checked with promtool and a real Prometheus.

One Prometheus per process: it runs on a backfilled TSDB of known history (every dashboard panel
is evaluated against it) and scrapes two loopback exporters through the shipped scrape
configuration, with kubernetes_sd replaced by file_sd targets that carry the Kubernetes meta
labels, so the real relabeling decides what is kept and how it is labelled.
"""

import copy
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import yaml

import artifacts_paths as paths
import dashboard_eval
import dashboard_lint
import prom_harness

SIDECAR_EXPOSITION = """\
# TYPE kpiscale_sidecar_http_requests_total counter
kpiscale_sidecar_http_requests_total{code="2xx"} 1200
kpiscale_sidecar_http_requests_total{code="5xx"} 3
# TYPE kpiscale_sidecar_http_errors_total counter
kpiscale_sidecar_http_errors_total 3
# TYPE kpiscale_sidecar_http_slow_requests_total counter
kpiscale_sidecar_http_slow_requests_total{threshold="0.2"} 7
# TYPE kpiscale_sidecar_http_request_duration_seconds histogram
kpiscale_sidecar_http_request_duration_seconds_bucket{le="0.1"} 1100
kpiscale_sidecar_http_request_duration_seconds_bucket{le="0.2"} 1196
kpiscale_sidecar_http_request_duration_seconds_bucket{le="+Inf"} 1203
kpiscale_sidecar_http_request_duration_seconds_sum 60.5
kpiscale_sidecar_http_request_duration_seconds_count 1203
# TYPE kpiscale_sidecar_http_time_to_first_byte_seconds histogram
kpiscale_sidecar_http_time_to_first_byte_seconds_bucket{le="0.2"} 1200
kpiscale_sidecar_http_time_to_first_byte_seconds_bucket{le="+Inf"} 1203
kpiscale_sidecar_http_time_to_first_byte_seconds_sum 30.1
kpiscale_sidecar_http_time_to_first_byte_seconds_count 1203
# TYPE kpiscale_sidecar_http_requests_in_flight gauge
kpiscale_sidecar_http_requests_in_flight 2
# TYPE kpiscale_sidecar_http_upstream_failures_total counter
kpiscale_sidecar_http_upstream_failures_total{reason="connect"} 1
# TYPE kpiscale_sidecar_cache_hits_total counter
kpiscale_sidecar_cache_hits_total 900
# TYPE kpiscale_sidecar_cache_misses_total counter
kpiscale_sidecar_cache_misses_total 300
# TYPE kpiscale_sidecar_db_query_duration_seconds histogram
kpiscale_sidecar_db_query_duration_seconds_bucket{le="0.1"} 299
kpiscale_sidecar_db_query_duration_seconds_bucket{le="+Inf"} 300
kpiscale_sidecar_db_query_duration_seconds_sum 9.1
kpiscale_sidecar_db_query_duration_seconds_count 300
# TYPE kpiscale_sidecar_windows_pushed_total counter
kpiscale_sidecar_windows_pushed_total 240
# TYPE kpiscale_sidecar_windows_retried_total counter
kpiscale_sidecar_windows_retried_total 2
# TYPE kpiscale_sidecar_windows_dropped_total counter
kpiscale_sidecar_windows_dropped_total 0
# TYPE kpiscale_sidecar_push_failures_total counter
kpiscale_sidecar_push_failures_total 2
# TYPE kpiscale_sidecar_push_queue_windows gauge
kpiscale_sidecar_push_queue_windows 0
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 7340032
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 0.05
"""

ADAPTER_EXPOSITION = """\
# TYPE kpiscale_adapter_requests_total counter
kpiscale_adapter_requests_total{group="custom.metrics.k8s.io",version="v1beta2",verb="get",code="200"} 40
# TYPE kpiscale_adapter_request_duration_seconds histogram
kpiscale_adapter_request_duration_seconds_bucket{group="custom.metrics.k8s.io",le="0.005"} 40
kpiscale_adapter_request_duration_seconds_bucket{group="custom.metrics.k8s.io",le="+Inf"} 40
kpiscale_adapter_request_duration_seconds_sum{group="custom.metrics.k8s.io"} 0.02
kpiscale_adapter_request_duration_seconds_count{group="custom.metrics.k8s.io"} 40
# TYPE kpiscale_adapter_ingest_windows_total counter
kpiscale_adapter_ingest_windows_total{result="accepted",reason=""} 480
# TYPE kpiscale_adapter_pods_stored gauge
kpiscale_adapter_pods_stored 2
# TYPE kpiscale_adapter_series_stored gauge
kpiscale_adapter_series_stored 40
# TYPE kpiscale_adapter_answer_freshness_seconds histogram
kpiscale_adapter_answer_freshness_seconds_bucket{le="2"} 40
kpiscale_adapter_answer_freshness_seconds_bucket{le="+Inf"} 40
kpiscale_adapter_answer_freshness_seconds_sum 30
kpiscale_adapter_answer_freshness_seconds_count 40
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 31457280
"""

# Meta labels each Kubernetes SD role provides (Prometheus documentation, kubernetes_sd_config).
_NS = r"__meta_kubernetes_namespace"
_POD = (r"__meta_kubernetes_pod_(name|ip|uid|phase|ready|node_name|host_ip|controller_kind|"
        r"controller_name|container_(init|name|id|image|port_name|port_number|port_protocol)|"
        r"(label|labelpresent|annotation|annotationpresent)_\w+)")
_SVC = (r"__meta_kubernetes_service_(name|cluster_ip|external_name|type|loadbalancer_ip|"
        r"port_name|port_number|port_protocol|(label|labelpresent|annotation|"
        r"annotationpresent)_\w+)")
_EP = (r"__meta_kubernetes_endpoints?_(name|hostname|node_name|ready|port_name|port_protocol|"
       r"address_target_kind|address_target_name|(label|labelpresent|annotation|"
       r"annotationpresent)_\w+)")
ROLE_META = {
    "pod": re.compile(rf"^({_NS}|{_POD})$"),
    "endpoints": re.compile(rf"^({_NS}|{_POD}|{_SVC}|{_EP})$"),
    "service": re.compile(rf"^({_NS}|{_SVC})$"),
}
K8S_SD_KEYS = {"role", "namespaces", "selectors", "api_server", "kubeconfig_file",
               "attach_metadata", "basic_auth", "authorization", "oauth2", "tls_config",
               "proxy_url", "follow_redirects", "enable_http2"}

# Simulated service-discovery results: (job, meta labels, should be kept).
SIDECAR_POD = "ci-failure-agent-6c9f7d-zz9"
ADAPTER_POD = "kpiscale-adapter-7b5c9-x1"


def sd_targets(sidecar_port, adapter_port):
    ep = {"__meta_kubernetes_namespace": "production",
          "__meta_kubernetes_service_name": "ci-failure-agent",
          "__meta_kubernetes_endpoint_port_name": "metrics",
          "__meta_kubernetes_pod_name": SIDECAR_POD,
          "__meta_kubernetes_pod_node_name": "node-a",
          "__meta_kubernetes_pod_label_app_kubernetes_io_name": "ci-failure-agent"}
    pod = {"__meta_kubernetes_namespace": "kpiscale-system",
           "__meta_kubernetes_pod_name": ADAPTER_POD,
           "__meta_kubernetes_pod_phase": "Running",
           "__meta_kubernetes_pod_label_app_kubernetes_io_name": "kpiscale-adapter",
           "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
           "__meta_kubernetes_pod_annotation_prometheus_io_port": str(adapter_port),
           "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics"}
    wl_pod = {**pod, "__meta_kubernetes_namespace": "production",
              "__meta_kubernetes_pod_name": SIDECAR_POD,
              "__meta_kubernetes_pod_label_app_kubernetes_io_name": "ci-failure-agent",
              "__meta_kubernetes_pod_annotation_prometheus_io_port": str(sidecar_port)}
    return {
        "ci-failure-agent": [
            (f"127.0.0.1:{sidecar_port}", ep, True),
            # The Service's http port and another Service's endpoints are not scraped.
            (f"127.0.0.1:{sidecar_port}", {**ep, "__meta_kubernetes_endpoint_port_name": "http"},
             False),
            (f"127.0.0.1:{sidecar_port}", {**ep, "__meta_kubernetes_service_name": "redis"}, False),
        ],
        "kubernetes-pods": [
            # The pod's address carries the container port; the annotation's port replaces it.
            ("127.0.0.1:6443", pod, True),
            # Already scraped by the ci-failure-agent job: dropped, or every sum would double.
            ("127.0.0.1:8080", wl_pod, False),
            ("127.0.0.1:6443", {**pod, "__meta_kubernetes_pod_annotation_prometheus_io_scrape":
                                "false"}, False),
            ("127.0.0.1:6443", {**pod, "__meta_kubernetes_pod_phase": "Pending"}, False),
        ],
    }


def write_rule_exprs(path, exprs):
    rules = [{"record": f"panel:expr_{i}", "expr": e} for i, e in enumerate(exprs)]
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard-panels", "rules": rules}]}, f)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


class PrometheusAndDashboards(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="kpiscale-artifacts-")
        with open(os.path.join(paths.PROMETHEUS, "prometheus.yml"), encoding="utf-8") as f:
            cls.config = yaml.safe_load(f)
        with open(os.path.join(paths.DASHBOARDS, "tests", "history.yaml"), encoding="utf-8") as f:
            cls.history = yaml.safe_load(f)
        with open(os.path.join(paths.DASHBOARDS, "tests", "expected.yaml"), encoding="utf-8") as f:
            cls.expected = yaml.safe_load(f)
        cls.dashboards = {}
        for path in sorted(glob.glob(os.path.join(paths.DASHBOARDS, "*.json"))):
            with open(path, encoding="utf-8") as f:
                cls.dashboards[os.path.basename(path)] = json.load(f)

        # History ends well before now, inside the default lookback of nothing live.
        step = prom_harness.parse_duration(cls.history["step"])
        cls.start = (int(time.time()) // step) * step - 3 * 3600
        cls.eval_at = cls.start + prom_harness.parse_duration(cls.history["eval_offset"])
        tsdb = os.path.join(cls.work, "tsdb")
        prom_harness.backfill(prom_harness.history_openmetrics(cls.history, cls.start), cls.work,
                              tsdb)

        cls.sidecar = prom_harness.Exporter(SIDECAR_EXPOSITION)
        cls.adapter = prom_harness.Exporter(ADAPTER_EXPOSITION)
        cls.targets = sd_targets(cls.sidecar.port, cls.adapter.port)
        cls.test_config = os.path.join(cls.work, "prometheus.yml")
        cls._write_test_config()
        cls.prom = prom_harness.Prometheus(cls.test_config, tsdb,
                                           os.path.join(cls.work, "prometheus.log"))

    @classmethod
    def _write_test_config(cls):
        """The shipped config with file_sd in place of kubernetes_sd and 1 s scrapes."""
        cfg = copy.deepcopy(cls.config)
        for job in cfg["scrape_configs"]:
            name = job["job_name"]
            sd_file = os.path.join(cls.work, f"sd-{name}.json")
            with open(sd_file, "w", encoding="utf-8") as f:
                json.dump([{"targets": [addr], "labels": meta}
                           for addr, meta, _ in cls.targets.get(name, [])], f)
            del job["kubernetes_sd_configs"]
            job["file_sd_configs"] = [{"files": [sd_file]}]
            job["scrape_interval"] = "1s"
            job["scrape_timeout"] = "1s"
        shutil.copytree(os.path.join(paths.PROMETHEUS, "rules"), os.path.join(cls.work, "rules"))
        with open(cls.test_config, "w", encoding="utf-8") as f:
            yaml.safe_dump(cfg, f)

    @classmethod
    def tearDownClass(cls):
        for closer in ("prom", "sidecar", "adapter"):
            if hasattr(cls, closer):
                getattr(cls, closer).close()
        shutil.rmtree(cls.work, ignore_errors=True)

    # --- scrape configuration ---------------------------------------------------------------

    def test_scrape_config_has_the_required_jobs(self):
        jobs = {j["job_name"]: j for j in self.config["scrape_configs"]}
        self.assertEqual(set(jobs), {"ci-failure-agent", "kubernetes-pods"})
        self.assertEqual(jobs["ci-failure-agent"]["scrape_interval"], "15s")
        self.assertEqual(jobs["ci-failure-agent"]["scrape_timeout"], "10s")
        keep = [r for r in jobs["kubernetes-pods"]["relabel_configs"] if r.get("action") == "keep"]
        self.assertEqual(keep, [{"source_labels":
                                 ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                                 "regex": "true", "action": "keep"}])

    def test_kubernetes_sd_blocks_and_meta_labels_are_valid(self):
        # Debian's promtool is built without Kubernetes SD, so these blocks are checked here:
        # known keys and role, and every __meta_ label one that the role really provides (a
        # misspelt meta label silently drops every target).
        for job in self.config["scrape_configs"]:
            for sd in job["kubernetes_sd_configs"]:
                self.assertLessEqual(set(sd), K8S_SD_KEYS, job["job_name"])
                self.assertIn(sd["role"], ROLE_META, job["job_name"])
                used = {lbl for r in job.get("relabel_configs", [])
                        for lbl in r.get("source_labels", []) if lbl.startswith("__meta_")}
                for lbl in used:
                    self.assertRegex(lbl, ROLE_META[sd["role"]],
                                     f"{job['job_name']}: role {sd['role']} has no {lbl}")

    def test_promtool_check_config(self):
        proc = run(["promtool", "check", "config", self.test_config])
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("SUCCESS: 2 rule files found", proc.stdout)

    def test_relabeling_keeps_exactly_the_right_targets(self):
        def both_up():
            active = self.prom.api("targets", state="active")["activeTargets"]
            return active if len(active) == 2 and all(t["health"] == "up"
                                                       for t in active) else None
        active = self.prom.poll(both_up, 60, "both scrape targets up")
        by_job = {t["labels"]["job"]: t["labels"] for t in active}
        self.assertEqual(by_job["ci-failure-agent"],
                         {"job": "ci-failure-agent", "instance": f"127.0.0.1:{self.sidecar.port}",
                          "namespace": "production", "pod": SIDECAR_POD, "node": "node-a",
                          "app": "ci-failure-agent"})
        self.assertEqual(by_job["kubernetes-pods"],
                         {"job": "kubernetes-pods", "instance": f"127.0.0.1:{self.adapter.port}",
                          "namespace": "kpiscale-system", "pod": ADAPTER_POD,
                          "app": "kpiscale-adapter"})
        dropped = self.prom.api("targets", state="dropped")["droppedTargets"]
        want_dropped = sum(1 for ts in self.targets.values() for _, _, keep in ts if not keep)
        self.assertEqual(len(dropped), want_dropped)

    def test_scraped_names_cover_every_sidecar_metric_the_artifacts_use(self):
        def names():
            got = self.prom.query('count by (__name__) ({job="ci-failure-agent"})', time.time())
            return {lbl["__name__"] for lbl, _ in got} if len(got) > 5 else None
        scraped = self.prom.poll(names, 60, "sidecar series scraped")
        used = set()
        texts = [t["expr"] for d in self.dashboards.values() for _, t in dashboard_lint.targets(d)]
        for path in glob.glob(os.path.join(paths.PROMETHEUS, "rules", "*.yml")):
            with open(path, encoding="utf-8") as f:
                texts.append(f.read())
        for text in texts:
            used |= set(re.findall(r"\bkpiscale_sidecar_\w+", text))
        used = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
        exported = {re.sub(r"_(bucket|sum|count)$", "", n) for n in scraped}
        self.assertTrue(used, "no sidecar metric found in dashboards and rules")
        self.assertLessEqual(used, exported, "names not in the agreed sidecar exposition")

    def test_rules_load_in_prometheus(self):
        groups = self.prom.api("rules")["groups"]
        names = {g["name"]: len(g["rules"]) for g in groups}
        self.assertEqual(names, {"kpiscale-kpis": 8, "kpiscale-health": 3, "kpiscale-slo": 20})
        for g in groups:
            for r in g["rules"]:
                self.assertNotEqual(r.get("health"), "err", f"{r['name']}: {r.get('lastError')}")

    # --- rules -------------------------------------------------------------------------------

    def test_promtool_check_rules(self):
        files = sorted(glob.glob(os.path.join(paths.PROMETHEUS, "rules", "*.yml")))
        self.assertEqual(len(files), 2)
        proc = run(["promtool", "check", "rules", "--lint=all", "--lint-fatal", *files])
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def test_promtool_test_rules(self):
        tests = sorted(glob.glob(os.path.join(paths.PROMETHEUS, "tests", "*.test.yml")))
        self.assertGreaterEqual(len(tests), 2)
        proc = run(["promtool", "test", "rules", *tests])
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(proc.stdout.count("SUCCESS"), len(tests), proc.stdout)

    def test_promtool_test_rules_catches_a_wrong_burn_rate(self):
        # The rule tests must be able to fail: with the page factors raised tenfold (144x and
        # 60x) the page alert no longer fires on 10% errors, and promtool test rules says so.
        broken = os.path.join(self.work, "broken-rules")
        shutil.copytree(paths.PROMETHEUS, broken)
        alerts = os.path.join(broken, "rules", "kpiscale-slo.rules.yml")
        with open(alerts, encoding="utf-8") as f:
            text = f.read()
        with open(alerts, "w", encoding="utf-8") as f:
            f.write(text.replace("(14.4 * 0.001)", "(144 * 0.001)").replace("(6 * 0.001)",
                                                                             "(60 * 0.001)"))
        proc = run(["promtool", "test", "rules", "tests/slo-alerts.test.yml"], cwd=broken)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("KpiscaleAvailabilityBudgetBurn", proc.stdout + proc.stderr)

    # --- dashboards --------------------------------------------------------------------------

    def test_dashboards_validate_against_the_schema(self):
        validator = dashboard_lint.make_validator(paths.GRAFANA_SCHEMA)
        self.assertEqual(set(self.dashboards), {"kpiscale-kpis.json",
                                                "kpiscale-adapter-sidecars.json"})
        for name, d in self.dashboards.items():
            self.assertEqual(dashboard_lint.schema_errors(validator, d), [], name)

    def test_dashboards_lint_clean(self):
        for name, d in self.dashboards.items():
            self.assertEqual(dashboard_lint.lint(d), [], name)

    def test_every_panel_query_parses_with_promtool(self):
        exprs = [dashboard_lint.expand(t["expr"], self.expected["variables"])
                 for d in self.dashboards.values() for _, t in dashboard_lint.targets(d)]
        self.assertGreater(len(exprs), 30)
        path = os.path.join(self.work, "panels.rules.yml")
        write_rule_exprs(path, exprs)
        proc = run(["promtool", "check", "rules", path])
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def test_every_panel_shows_the_number_it_should(self):
        for name, d in self.dashboards.items():
            errors = dashboard_eval.evaluate(self.prom, d, self.expected["dashboards"][name],
                                             self.expected["variables"], self.eval_at)
            self.assertEqual(errors, [], name)

    def test_variables_resolve_to_the_expected_values(self):
        for name, d in self.dashboards.items():
            for var, selector, label in dashboard_eval.variable_queries(d):
                self.assertIsNotNone(selector, f"{name}: {var} is not a label_values() query")
                expr = f"group by ({label}) ({dashboard_lint.expand(selector, self.expected['variables'])})"
                got = {lbl.get(label) for lbl, _ in self.prom.query(expr, self.eval_at)}
                self.assertIn(self.expected["variables"][var], got, f"{name}: ${var}")

    def test_evaluation_detects_a_wrong_panel(self):
        # The evaluator must be able to fail: a misspelt metric (no series) and a ratio
        # inverted (a different number) are both reported.
        d = copy.deepcopy(self.dashboards["kpiscale-kpis.json"])
        for p, _ in dashboard_lint.walk_panels(d):
            for t in p.get("targets", []) or []:
                if p["title"] == "Request rate":
                    t["expr"] = t["expr"].replace("http_requests_total", "http_request_total")
                if p["title"] == "Cache-hit ratio":
                    t["expr"] = t["expr"].replace("cache_hits_total{", "cache_misses_total{", 1)
        errors = dashboard_eval.evaluate(self.prom, d, self.expected["dashboards"][
            "kpiscale-kpis.json"], self.expected["variables"], self.eval_at)
        self.assertEqual(len(errors), 2, errors)
        self.assertIn("Request rate / A: want one series = 10, got []", errors[0])
        self.assertIn("Cache-hit ratio / A: want 0.75, got 0.25", errors[1])

    def test_broken_dashboard_fixture_reports_every_seeded_fault(self):
        with open(os.path.join(paths.FIXTURES, "broken-dashboard.json"), encoding="utf-8") as f:
            broken = json.load(f)
        with open(os.path.join(paths.FIXTURES, "broken-dashboard.expected"),
                  encoding="utf-8") as f:
            want = [line.strip() for line in f if line.strip() and not line.startswith("#")]
        validator = dashboard_lint.make_validator(paths.GRAFANA_SCHEMA)
        findings = dashboard_lint.schema_errors(validator, broken) + dashboard_lint.lint(broken)
        for fragment in want:
            self.assertTrue(any(fragment in f for f in findings),
                            f"{fragment!r} not reported; findings: {findings}")
        self.assertEqual(len(findings), len(want), findings)


if __name__ == "__main__":
    unittest.main(verbosity=2)
