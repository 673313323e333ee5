#!/usr/bin/python3
"""The manifests against the real binaries: the container arguments shipped in the production
overlay are accepted by `kpiscale-adapter --validate` and `kpiscale-sidecar --validate`, with the
mounted files (serving certificate, CA, projected token, downward-API labels) recreated in a temp
directory at the same paths, and the pod identity from the downward-API environment. Then the
real sidecar runs with those arguments (ports moved to free loopback ports) in front of a small
upstream, and its /metrics exposition is held to what the dashboards and rules rely on.

CMake registers this test only when the kpiscale-adapter and kpiscale-sidecar targets exist, and
passes their paths in KPISCALE_ADAPTER_BIN and KPISCALE_SIDECAR_BIN.
"""

import http.server
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import artifacts_paths as paths
import check_manifests
import strict_yaml

ADAPTER_BIN = os.environ.get("KPISCALE_ADAPTER_BIN", "")
SIDECAR_BIN = os.environ.get("KPISCALE_SIDECAR_BIN", "")
POD_ENV = {"POD_NAME": "ci-failure-agent-6c9f7d-a1", "POD_NAMESPACE": "production",
           "POD_UID": "0b7c2f4e-3c1d-4c55-9a57-2f1d2a3b4c5d", "NODE_NAME": "node-a"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Upstream(http.server.BaseHTTPRequestHandler):
    """/ok answers 200 at once, /fail 500, /slow 200 after 300 ms (slower than the 200 ms SLO)."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server API
        if self.path == "/slow":
            time.sleep(0.3)  # the behaviour under test: strictly slower than the threshold
        code = 500 if self.path == "/fail" else 200
        body = b"{}"
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Binaries(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        assert os.access(ADAPTER_BIN, os.X_OK), f"no adapter binary at {ADAPTER_BIN!r}"
        assert os.access(SIDECAR_BIN, os.X_OK), f"no sidecar binary at {SIDECAR_BIN!r}"
        cls.work = tempfile.mkdtemp(prefix="kpiscale-bin-")
        certs = os.path.join(cls.work, "certs")
        gen = os.path.join(paths.MANIFESTS, "components", "manual-ca", "generate-certs.sh")
        proc = subprocess.run([gen, certs], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        cls.certs = certs
        text = check_manifests.render(os.path.join(paths.MANIFESTS, "overlays", "production"))
        docs = strict_yaml.load_all(text, "production")
        cls.containers = {}
        for d in docs:
            if d["kind"] == "Deployment":
                for c in d["spec"]["template"]["spec"]["containers"]:
                    cls.containers[c["name"]] = c

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def local_path(self, path):
        """Creates the file a container path names, under the temp root, and returns it."""
        local = os.path.join(self.work, "root", path.lstrip("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        base = os.path.basename(path)
        if base in ("tls.crt", "tls.key", "ca.crt"):
            shutil.copy(os.path.join(self.certs, base), local)
        elif base == "token":
            with open(local, "w", encoding="utf-8") as f:
                f.write("eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl")
        elif base == "labels":
            with open(local, "w", encoding="utf-8") as f:
                f.write('app.kubernetes.io/name="ci-failure-agent"\n'
                        'app.kubernetes.io/component="api"\npod-template-hash="6c9f7d"\n')
        return local

    def localize(self, args):
        out = []
        for a in args:
            flag, eq, value = a.partition("=")
            if eq and value.startswith("/"):
                value = self.local_path(value)
            out.append(f"{flag}{eq}{value}" if eq else a)
        return out

    def validate(self, binary, args):
        return subprocess.run([binary, *args, "--validate"], capture_output=True, text=True,
                              timeout=60, env={**os.environ, **POD_ENV})

    def test_adapter_accepts_its_manifest_arguments(self):
        args = self.localize(self.containers["adapter"]["args"])
        proc = self.validate(ADAPTER_BIN, args)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def test_sidecar_accepts_its_manifest_arguments(self):
        args = self.localize(self.containers["kpiscale-sidecar"]["args"])
        proc = self.validate(SIDECAR_BIN, args)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def test_observer_threads_are_bounded(self):
        args = self.localize(self.containers["kpiscale-sidecar"]["args"])
        proc = self.validate(SIDECAR_BIN, args + ["--observer-threads=2"])
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        for bad in ("0", "65", "two"):
            proc = self.validate(SIDECAR_BIN, args + [f"--observer-threads={bad}"])
            self.assertNotEqual(proc.returncode, 0, f"--observer-threads={bad} accepted")
            self.assertIn("--observer-threads", proc.stdout + proc.stderr)

    def test_a_misspelt_flag_is_refused(self):
        # The check above can fail: an argument the binary does not know is an error.
        for binary, name, bad in ((ADAPTER_BIN, "adapter", "--stale-afterr=5s"),
                                  (SIDECAR_BIN, "kpiscale-sidecar", "--slo-treshold=200ms")):
            args = self.localize(self.containers[name]["args"]) + [bad]
            proc = self.validate(binary, args)
            self.assertNotEqual(proc.returncode, 0, f"{name} accepted {bad}")

    def test_real_sidecar_exposes_what_dashboards_and_rules_use(self):
        upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        threading.Thread(target=upstream.serve_forever, daemon=True).start()
        listen, metrics = free_port(), free_port()
        moved = {"--listen": f"127.0.0.1:{listen}", "--metrics-listen": f"127.0.0.1:{metrics}",
                 "--upstream": f"127.0.0.1:{upstream.server_address[1]}",
                 "--redis-listen": f"127.0.0.1:{free_port()}",
                 "--postgres-listen": f"127.0.0.1:{free_port()}",
                 "--redis-upstream": "127.0.0.1:1", "--postgres-upstream": "127.0.0.1:1",
                 # Nothing listens there: pushes fail and are counted, traffic is unaffected.
                 "--adapter-url": f"https://127.0.0.1:{free_port()}"}
        args = []
        for a in self.localize(self.containers["kpiscale-sidecar"]["args"]):
            flag = a.partition("=")[0]
            args.append(f"{flag}={moved[flag]}" if flag in moved else a)
        log = open(os.path.join(self.work, "sidecar.log"), "wb")
        proc = subprocess.Popen([SIDECAR_BIN, *args], stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **POD_ENV})
        try:
            deadline = time.monotonic() + 30
            while True:
                self.assertIsNone(proc.poll(), "sidecar exited")
                try:
                    with socket.create_connection(("127.0.0.1", listen), timeout=0.5):
                        pass
                    with socket.create_connection(("127.0.0.1", metrics), timeout=0.5):
                        break
                except OSError:
                    self.assertLess(time.monotonic(), deadline, "sidecar not listening")
                    time.sleep(0.05)  # poll interval; the connect decides
            sent = {"/ok": 17, "/fail": 3, "/slow": 2}
            for path, n in sent.items():
                for _ in range(n):
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{listen}{path}", timeout=10)
                    except urllib.error.HTTPError as e:
                        self.assertEqual(e.code, 500)
            # The sidecar folds its per-thread counters into /metrics when a window closes
            # (every --push-interval), so the figures arrive within about a second: poll.
            total = sum(sent.values())
            count_re = re.compile(
                r"^kpiscale_sidecar_http_request_duration_seconds_count (\S+)$", re.M)
            deadline = time.monotonic() + 30
            while True:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics",
                                            timeout=10) as r:
                    exposition = r.read().decode()
                m = count_re.search(exposition)
                if m and float(m.group(1)) >= total:
                    break
                self.assertLess(time.monotonic(), deadline,
                                f"sidecar never counted {total} requests:\n{exposition}")
                time.sleep(0.1)  # poll interval; the exposition decides
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
            upstream.shutdown()
            upstream.server_close()

        lint = subprocess.run(["promtool", "check", "metrics"], input=exposition,
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)

        def value(series):
            m = re.search(rf"^{re.escape(series)} (\S+)$", exposition, re.M)
            self.assertIsNotNone(m, f"{series} not exposed")
            return float(m.group(1))

        self.assertEqual(value('kpiscale_sidecar_http_requests_total{code="2xx"}'), 19)
        self.assertEqual(value('kpiscale_sidecar_http_requests_total{code="5xx"}'), 3)
        self.assertEqual(value("kpiscale_sidecar_http_errors_total"), 3)
        self.assertEqual(value('kpiscale_sidecar_http_slow_requests_total{threshold="0.2"}'), 2)
        self.assertEqual(value('kpiscale_sidecar_http_request_duration_seconds_bucket{le="0.2"}'),
                         total - 2)
        self.assertEqual(value("kpiscale_sidecar_http_request_duration_seconds_count"), total)

        # Every sidecar metric the dashboards and rules name is exposed by the real sidecar.
        exposed = {re.sub(r"_(bucket|sum|count)$", "", m)
                   for m in re.findall(r"^# TYPE (\S+)", exposition, re.M)}
        used = set()
        for root in (paths.DASHBOARDS, os.path.join(paths.PROMETHEUS, "rules")):
            for name in os.listdir(root):
                if name.endswith((".json", ".yml")):
                    with open(os.path.join(root, name), encoding="utf-8") as f:
                        used |= set(re.findall(r"\bkpiscale_sidecar_\w+", f.read()))
        used = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
        self.assertEqual(sorted(used - exposed), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
