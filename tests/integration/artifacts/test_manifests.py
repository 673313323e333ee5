#!/usr/bin/python3
"""Kubernetes manifests: every overlay renders with kubectl kustomize and validates strictly.

The 3.3 MB OpenAPI spec is loaded and converted once for the whole process. Besides the clean
overlays, the manual-CA path is rendered with certificates made by openssl here, and seeded
faults (a broken bundle, a duplicate key, mutations of the real HPA, sidecar, adapter and RBAC)
prove that the validators report what they must.
"""

import base64
import copy
import os
import shutil
import subprocess
import tempfile
import unittest

import artifacts_paths as paths
import check_manifests
import k8s_schema
import k8s_semantic
import kpiscale_checks
import strict_yaml

OVERLAYS = ("production", "local")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


class Manifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.schemas = k8s_schema.load(paths.K8S_SCHEMA)
        cls.rendered, cls.render_stderr = {}, {}
        for overlay in OVERLAYS:
            proc = run(["kubectl", "kustomize", os.path.join(paths.MANIFESTS, "overlays", overlay)],
                       env={**os.environ, "KUBECONFIG": os.devnull})
            assert proc.returncode == 0, f"{overlay}: {proc.stderr}"
            cls.render_stderr[overlay] = proc.stderr
            cls.rendered[overlay] = [strict_yaml.prune_nulls(d)
                                     for d in strict_yaml.load_all(proc.stdout, overlay)]

    def find(self, overlay, kind, name):
        docs = [d for d in self.rendered[overlay]
                if d["kind"] == kind and d["metadata"]["name"] == name]
        self.assertEqual(len(docs), 1, f"{kind} {name} in {overlay}")
        return copy.deepcopy(docs[0])

    def test_overlays_are_the_expected_set(self):
        self.assertEqual(sorted(os.listdir(os.path.join(paths.MANIFESTS, "overlays"))),
                         sorted(OVERLAYS))

    def test_every_overlay_renders_without_warnings(self):
        for overlay in OVERLAYS:
            self.assertEqual(self.render_stderr[overlay].strip(), "", f"{overlay}: kustomize warned")

    def test_every_document_validates_strictly_and_semantically(self):
        for overlay, docs in self.rendered.items():
            self.assertGreater(len(docs), 30, overlay)
            errors, warnings = check_manifests.check_docs(self.schemas, docs, overlay)
            self.assertEqual(errors, [], overlay)
            if overlay == "production":
                self.assertEqual(warnings, [])
            else:
                # Registering external.metrics.k8s.io is deliberate in local, and flagged.
                self.assertEqual(len(warnings), 1, warnings)
                self.assertIn("v1beta1.external.metrics.k8s.io", warnings[0])

    def test_only_cert_manager_kinds_skip_the_schema(self):
        for docs in self.rendered.values():
            for d in docs:
                if not self.schemas.knows(d["apiVersion"], d["kind"]):
                    self.assertTrue(d["apiVersion"].startswith("cert-manager.io/"), d["kind"])

    def test_sources_have_no_duplicate_keys(self):
        self.assertEqual(check_manifests.check_sources([paths.MANIFESTS, paths.DASHBOARDS]), [])

    def test_duplicate_key_is_an_error(self):
        errors = check_manifests.check_sources([paths.FIXTURES])
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("duplicate-key.yaml:13:3: duplicate key 'maxReplicas' (first at line 11)",
                      errors[0])

    def test_hpa_is_exactly_as_specified(self):
        for overlay in OVERLAYS:
            spec = self.find(overlay, "HorizontalPodAutoscaler", "ci-failure-agent-hpa")["spec"]
            self.assertEqual(spec["minReplicas"], 3)
            self.assertEqual(spec["maxReplicas"], 10)
            self.assertEqual(spec["behavior"], kpiscale_checks.EXPECTED_BEHAVIOR)
            types = [m["type"] for m in spec["metrics"]]
            self.assertEqual(types, ["Resource", "Resource", "Pods", "Object"])
            dep = self.find(overlay, "Deployment", "ci-failure-agent")
            self.assertNotIn("replicas", dep["spec"])

    def test_broken_bundle_reports_every_seeded_fault(self):
        docs = [strict_yaml.prune_nulls(d) for d in
                strict_yaml.load_file(os.path.join(paths.FIXTURES, "broken-manifests.yaml"))]
        errors = []
        for d in docs:
            errors += [f"{k8s_semantic.key(d)}: schema: {m}" for m in self.schemas.validate(d)]
        errors += k8s_semantic.check(docs)[0]
        with open(os.path.join(paths.FIXTURES, "broken-manifests.expected"),
                  encoding="utf-8") as f:
            want = [line.strip() for line in f if line.strip() and not line.startswith("#")]
        for fragment in want:
            self.assertTrue(any(fragment in e for e in errors),
                            f"{fragment!r} not reported; errors: {errors}")
        self.assertEqual(len(errors), len(want), errors)

    def mutated(self, overlay, mutate):
        docs = copy.deepcopy(self.rendered[overlay])
        mutate({(d["kind"], d["metadata"]["name"]): d for d in docs}, docs)
        errors, _ = check_manifests.check_docs(self.schemas, docs, overlay)
        return errors

    def test_mutations_of_the_real_bundle_are_caught(self):
        hpa = ("HorizontalPodAutoscaler", "ci-failure-agent-hpa")
        dep = ("Deployment", "ci-failure-agent")
        ada = ("Deployment", "kpiscale-adapter")

        def containers(objs, key):
            return {c["name"]: c for c in objs[key]["spec"]["template"]["spec"]["containers"]}

        def extra_binding(objs, docs):
            docs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                         "metadata": {"name": "kpiscale-adapter-admin"},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                     "kind": "ClusterRole", "name": "cluster-admin"},
                         "subjects": [{"kind": "ServiceAccount", "name": "kpiscale-adapter",
                                       "namespace": "kpiscale-system"}]})

        cases = {
            "HPA minReplicas": (lambda o, d: o[hpa]["spec"].update(minReplicas=2),
                                "HPA minReplicas = 2"),
            "scale-up selectPolicy": (
                lambda o, d: o[hpa]["spec"]["behavior"]["scaleUp"].update(selectPolicy="Min"),
                "HPA behavior"),
            "scale-down policy": (
                lambda o, d: o[hpa]["spec"]["behavior"]["scaleDown"]["policies"][0].update(
                    value=40), "HPA behavior"),
            "CPU target": (lambda o, d: o[hpa]["spec"]["metrics"][0]["resource"]["target"].update(
                averageUtilization=75), "HPA cpu target"),
            "no Object metric": (lambda o, d: o[hpa]["spec"]["metrics"].pop(),
                                 "no Object metric on the Deployment"),
            "replicas under HPA": (lambda o, d: o[dep]["spec"].update(replicas=3),
                                   "sets spec.replicas"),
            "sidecar without CPU request": (
                lambda o, d: containers(o, dep)["kpiscale-sidecar"]["resources"]["requests"].pop(
                    "cpu"), "container kpiscale-sidecar has no cpu request"),
            "token audience": (
                lambda o, d: next(v for v in o[dep]["spec"]["template"]["spec"]["volumes"]
                                  if v["name"] == "kpiscale-token")["projected"]["sources"][0][
                                      "serviceAccountToken"].update(audience="vault"),
                "audience kpiscale"),
            "adapter audience differs from the sidecar token": (
                lambda o, d: containers(o, ada)["adapter"]["args"].append(
                    "--ingest-token-audience=kpiscale-ingest"),
                "does not match the adapter's --ingest-token-audience"),
            "long-lived sidecar token": (
                lambda o, d: next(v for v in o[dep]["spec"]["template"]["spec"]["volumes"]
                                  if v["name"] == "kpiscale-token")["projected"]["sources"][0][
                                      "serviceAccountToken"].update(expirationSeconds=86400),
                "must be short-lived"),
            "adapter without API credentials": (
                lambda o, d: o[ada]["spec"]["template"]["spec"].update(
                    automountServiceAccountToken=False), "no in-cluster credentials"),
            "adapter kubeconfig not mounted": (
                lambda o, d: containers(o, ada)["adapter"]["args"].append(
                    "--authentication-kubeconfig=/etc/kube/config"), "is not a mounted file"),
            "adapter URL to the API port": (
                lambda o, d: containers(o, dep)["kpiscale-sidecar"]["args"].__setitem__(
                    3, "--adapter-url=https://kpiscale-adapter.kpiscale-system.svc:443"),
                "does not reach the adapter's ingest port"),
            "sidecar names a missing Service": (
                lambda o, d: containers(o, dep)["kpiscale-sidecar"]["args"].append(
                    "--service=checkout"), "is not a Service selecting these pods"),
            "adapter writable root": (
                lambda o, d: containers(o, ada)["adapter"]["securityContext"].update(
                    readOnlyRootFilesystem=False), "readOnlyRootFilesystem"),
            "adapter probe path": (
                lambda o, d: containers(o, ada)["adapter"]["readinessProbe"]["httpGet"].update(
                    path="/healthz"), "HTTPS /readyz"),
            "extra RBAC": (extra_binding, "adapter RBAC bindings"),
            "unknown field": (lambda o, d: containers(o, ada)["adapter"].update(imagePulPolicy="x"),
                              "'imagePulPolicy' was unexpected"),
            "app resources": (
                lambda o, d: containers(o, dep)["failure-agent"]["resources"]["limits"].update(
                    cpu="1"), "failure-agent resources"),
            "spot weight": (
                lambda o, d: o[dep]["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
                    "preferredDuringSchedulingIgnoredDuringExecution"][0].update(weight=90),
                "spot 60 / on-demand 40"),
        }
        for name, (mutate, fragment) in cases.items():
            with self.subTest(name):
                errors = self.mutated("production", mutate)
                self.assertTrue(any(fragment in e for e in errors), f"{name}: {errors}")

    def test_cert_manager_component_wires_every_apiservice(self):
        for overlay in OVERLAYS:
            apis = [d for d in self.rendered[overlay] if d["kind"] == "APIService"]
            self.assertEqual(len(apis), 2 if overlay == "production" else 3)
            for a in apis:
                self.assertEqual(a["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
                                 "kpiscale-system/kpiscale-adapter-serving")
            cert = self.find(overlay, "Certificate", "kpiscale-adapter-serving")
            self.assertIn("kpiscale-adapter.kpiscale-system.svc", cert["spec"]["dnsNames"])
            self.assertEqual(cert["spec"]["secretName"], "kpiscale-adapter-serving")
            ca = self.find(overlay, "Certificate", "kpiscale-adapter-ca")
            self.assertEqual(ca["metadata"]["namespace"], "production")

    def test_manual_ca_path_renders_a_verifiable_ca_bundle(self):
        work = tempfile.mkdtemp(prefix="kpiscale-manual-ca-")
        try:
            tree = os.path.join(work, "manifests")
            shutil.copytree(paths.MANIFESTS, tree)
            shutil.copytree(paths.DASHBOARDS, os.path.join(work, "dashboards"))
            certs = os.path.join(tree, "components", "manual-ca", "certs")
            proc = run([os.path.join(tree, "components", "manual-ca", "generate-certs.sh"), certs])
            self.assertEqual(proc.returncode, 0, proc.stderr)
            overlay = os.path.join(tree, "overlays", "manual")
            os.makedirs(overlay)
            with open(os.path.join(overlay, "kustomization.yaml"), "w", encoding="utf-8") as f:
                f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                        "resources: [../../base]\n"
                        "components: [../../components/external-metrics, "
                        "../../components/manual-ca]\n"
                        "secretGenerator:\n  - name: postgres-credentials\n"
                        "    namespace: production\n    literals: [password=x]\n"
                        "    options: {disableNameSuffixHash: true}\n")
            docs = [strict_yaml.prune_nulls(d) for d in
                    strict_yaml.load_all(check_manifests.render(overlay), "manual")]
            errors, _ = check_manifests.check_docs(self.schemas, docs, "manual")
            self.assertEqual(errors, [])
            with open(os.path.join(certs, "ca.crt"), "rb") as f:
                ca_pem = f.read()
            apis = [d for d in docs if d["kind"] == "APIService"]
            self.assertEqual(len(apis), 3)
            for a in apis:
                self.assertEqual(base64.b64decode("".join(a["spec"]["caBundle"].split())), ca_pem)
            secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
            serving = secrets["kpiscale-adapter-serving"]
            self.assertEqual(serving["type"], "kubernetes.io/tls")
            self.assertEqual(serving["metadata"]["namespace"], "kpiscale-system")
            self.assertEqual(set(serving["data"]), {"tls.crt", "tls.key", "ca.crt"})
            self.assertEqual(base64.b64decode(secrets["kpiscale-adapter-ca"]["data"]["ca.crt"]),
                             ca_pem)
            # The serving certificate verifies against the CA for the name the aggregator dials.
            tls = os.path.join(work, "tls.crt")
            with open(tls, "wb") as f:
                f.write(base64.b64decode(serving["data"]["tls.crt"]))
            proc = run(["openssl", "verify", "-CAfile", os.path.join(certs, "ca.crt"),
                        "-verify_hostname", "kpiscale-adapter.kpiscale-system.svc",
                        "-purpose", "sslserver", tls])
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            proc = run(["openssl", "verify", "-CAfile", os.path.join(certs, "ca.crt"),
                        "-verify_hostname", "evil.example.com", tls])
            self.assertNotEqual(proc.returncode, 0)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def test_validator_cli_exit_status(self):
        cli = os.path.join(paths.TOOLS, "check_manifests.py")
        ok = run(["/usr/bin/python3", cli, "--schema", paths.K8S_SCHEMA,
                  "--sources", paths.MANIFESTS])
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        self.assertIn("manifests: OK", ok.stdout)
        bad = run(["/usr/bin/python3", cli, "--schema", paths.K8S_SCHEMA,
                   "--sources", paths.FIXTURES])
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
