"""A real Prometheus for tests: synthetic history, a fixed-exposition exporter, and the HTTP API.

- history_openmetrics(): the series of dashboards/tests/history.yaml as OpenMetrics text;
- backfill(): `promtool tsdb create-blocks-from openmetrics` into a TSDB directory;
- Exporter: a loopback HTTP server (ephemeral port) serving a fixed Prometheus exposition;
- Prometheus: `prometheus` on 127.0.0.1 with a free port, a temp TSDB, readiness polled with a
  deadline (never a fixed sleep), the process checked alive, and stopped on close().
"""

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request


def parse_duration(text):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", str(text))
    if not m:
        raise ValueError(f"bad duration {text!r}")
    return int(m.group(1)) * units[m.group(2)]


def _labels_text(labels):
    def esc(v):
        return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in sorted(labels.items())) + "}"


def expand_history(history):
    """(name, labels, kind, per-pod value or rate) for every series of the history spec."""
    out = []
    for group in history["groups"]:
        pods = group.get("pods") or [None]
        for s in group["series"]:
            for i, pod in enumerate(pods):
                base = dict(group.get("labels", {}))
                if pod is not None:
                    base["pod"] = pod
                base.update(s.get("labels", {}))
                if "buckets" in s:
                    top = max(s["buckets"].values())
                    for le, rate in s["buckets"].items():
                        out.append((s["name"] + "_bucket", {**base, "le": le}, "rate", rate))
                    out.append((s["name"] + "_bucket", {**base, "le": "+Inf"}, "rate", top))
                    out.append((s["name"] + "_count", base, "rate", top))
                    out.append((s["name"] + "_sum", base, "rate", top * 0.05))
                elif "rate" in s:
                    out.append((s["name"], base, "rate", s["rate"]))
                elif "values" in s:
                    out.append((s["name"], base, "gauge", s["values"][i]))
                else:
                    out.append((s["name"], base, "gauge", s["value"]))
    return out


def history_openmetrics(history, start):
    """OpenMetrics text (families contiguous, timestamps in seconds) from `start`."""
    step = parse_duration(history["step"])
    n = int(parse_duration(history["duration"]) // step) + 1
    by_name = {}
    for name, labels, kind, v in expand_history(history):
        by_name.setdefault(name, []).append((labels, kind, v))
    lines = []
    for name in sorted(by_name):
        for labels, kind, v in by_name[name]:
            lt = _labels_text(labels)
            for i in range(n):
                t = start + i * step
                value = v * (i * step) if kind == "rate" else v
                lines.append(f"{name}{lt} {value!r} {t}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def backfill(openmetrics_text, work_dir, tsdb_dir):
    path = os.path.join(work_dir, "history.om")
    with open(path, "w", encoding="utf-8") as f:
        f.write(openmetrics_text)
    proc = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", path, tsdb_dir],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"promtool backfill failed: {proc.stderr or proc.stdout}")


class Exporter:
    """Serves `body` on /metrics from a thread; port chosen by the kernel."""

    def __init__(self, body):
        payload = body.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    def __init__(self, config_path, tsdb_dir, log_path, deadline_s=60):
        # The port is picked just before start; a clash makes prometheus exit, which start()
        # notices (process not alive), and it retries on another port.
        last = None
        for _ in range(5):
            self.port = free_port()
            self.log = open(log_path, "ab")
            self.proc = subprocess.Popen(
                ["prometheus", f"--config.file={config_path}",
                 f"--storage.tsdb.path={tsdb_dir}",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 "--storage.tsdb.retention.time=30d", "--log.level=warn"],
                stdout=self.log, stderr=subprocess.STDOUT)
            try:
                self._wait_ready(deadline_s)
                return
            except RuntimeError as e:
                last = e
                self.close()
        raise last

    def _wait_ready(self, deadline_s):
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)  # poll interval, not synchronization: readiness decides
        raise RuntimeError("prometheus not ready before the deadline")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def api(self, path, **params):
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr, at):
        """Instant query; returns [(labels, float)] (a scalar result as one unlabeled item)."""
        data = self.api("query", query=expr, time=f"{at:.3f}")
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def poll(self, predicate, deadline_s, what):
        """Polls predicate() until it returns a truthy value or the deadline passes."""
        deadline = time.monotonic() + deadline_s
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited while waiting for {what}")
            time.sleep(0.1)  # poll interval; the condition decides
        raise AssertionError(f"timed out waiting for {what}; last: {last}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
