"""What the kpiscale manifests must say (issue 8), beyond generic validity.

expect(docs, overlay) returns a list of error strings. These pin the values the issue fixes: the
HPA spec and behavior, images, resources, the sidecar's identity plumbing, the adapter's
Deployment, Service, APIServices and RBAC, and the production placement rules.
"""

import re

import k8s_semantic as sem

ADAPTER_NS, WORKLOAD_NS = "kpiscale-system", "production"
IMAGES = {"adapter": "kpiscale/adapter:0.1.0", "kpiscale-sidecar": "kpiscale/sidecar:0.1.0",
          "failure-agent": "kpiscale/failure-agent:0.1.0"}
EXPECTED_BEHAVIOR = {
    "scaleDown": {"stabilizationWindowSeconds": 300,
                  "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]},
    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 30},
                             {"type": "Pods", "value": 2, "periodSeconds": 30}]},
}
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
KPISCALE_METRICS = {"http_requests_per_second", "http_requests_in_flight", "http_errors_ratio",
                    "http_request_duration_seconds", "http_request_duration_p50_seconds",
                    "http_request_duration_p95_seconds", "http_request_duration_p99_seconds",
                    "http_slo_violations_ratio", "cache_hit_ratio", "cache_requests_per_second",
                    "cache_command_duration_seconds", "db_queries_per_second",
                    "db_query_duration_seconds", "db_errors_ratio"}


def _container(pod, name):
    for c in pod.get("containers", []):
        if c.get("name") == name:
            return c
    return None


def _args(c):
    out = {}
    for a in c.get("args", []):
        k, _, v = a.partition("=")
        out[k] = v
    return out


def expect(docs, overlay):
    b = sem.Bundle(docs)
    errors = []
    e = errors.append

    hpa = b.find("HorizontalPodAutoscaler", "ci-failure-agent-hpa", WORKLOAD_NS)
    if hpa is None:
        e("HorizontalPodAutoscaler production/ci-failure-agent-hpa is missing")
    else:
        _expect_hpa(hpa, e)

    dep = b.find("Deployment", "ci-failure-agent", WORKLOAD_NS)
    if dep is None:
        e("Deployment production/ci-failure-agent is missing")
    else:
        _expect_workload(dep, b, e, overlay)

    adapter = b.find("Deployment", "kpiscale-adapter", ADAPTER_NS)
    if adapter is None:
        e("Deployment kpiscale-system/kpiscale-adapter is missing")
    else:
        _expect_adapter(adapter, b, e, overlay)
        _expect_ingest_tokens(adapter, b, e)

    for d in docs:
        tpl = sem.pod_template(d)
        for c in sem.all_containers((tpl or {}).get("spec", {})):
            want = IMAGES.get(c.get("name"))
            if want and c.get("image") != want:
                e(f"{sem.key(d)}: container {c['name']} image {c.get('image')} != {want}")

    for name in ("ci-failure-agent", "redis", "postgres"):
        if b.find("PodDisruptionBudget", name, WORKLOAD_NS) is None:
            e(f"PodDisruptionBudget production/{name} is missing")
    if b.find("PodDisruptionBudget", "kpiscale-adapter", ADAPTER_NS) is None:
        e("PodDisruptionBudget kpiscale-system/kpiscale-adapter is missing")
    pg = b.find("StatefulSet", "postgres", WORKLOAD_NS)
    init = b.find("ConfigMap", "postgres-init", WORKLOAD_NS)
    if pg is None or init is None:
        e("StatefulSet production/postgres and ConfigMap postgres-init are required")
    elif not any(re.search(r"CREATE TABLE (IF NOT EXISTS )?failure_logs \(", v)
                 for v in init.get("data", {}).values()):
        e("ConfigMap production/postgres-init does not create the failure_logs table")
    if not b.by_kind.get("NetworkPolicy"):
        e("no NetworkPolicy in the bundle")
    elif not any(n.get("spec", {}).get("podSelector") == {} and ns_of_is(n, WORKLOAD_NS)
                 for n in b.by_kind["NetworkPolicy"]):
        e("production has no default-deny NetworkPolicy")
    return errors


def ns_of_is(d, ns):
    return sem.ns_of(d) == ns


def _expect_hpa(hpa, e):
    spec = hpa["spec"]
    want = {"minReplicas": 3, "maxReplicas": 10,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                               "name": "ci-failure-agent"}}
    for k, v in want.items():
        if spec.get(k) != v:
            e(f"HPA {k} = {spec.get(k)!r}, want {v!r}")
    if spec.get("behavior") != EXPECTED_BEHAVIOR:
        e(f"HPA behavior = {spec.get('behavior')!r}, want {EXPECTED_BEHAVIOR!r}")
    metrics = spec.get("metrics", [])
    util = {m["resource"]["name"]: m["resource"]["target"]
            for m in metrics if m.get("type") == "Resource"}
    for res, pct in (("cpu", 70), ("memory", 80)):
        if util.get(res) != {"type": "Utilization", "averageUtilization": pct}:
            e(f"HPA {res} target = {util.get(res)!r}, want Utilization {pct}%")
    pods = [m["pods"] for m in metrics if m.get("type") == "Pods"]
    if not any(p["metric"]["name"] == "http_requests_per_second" for p in pods):
        e("HPA has no Pods metric http_requests_per_second")
    objs = [m["object"] for m in metrics if m.get("type") == "Object"]
    ok = [o for o in objs if o.get("describedObject", {}).get("kind") == "Deployment"
          and o["metric"]["name"] in ("http_slo_violations_ratio",
                                      "http_request_duration_p99_seconds")]
    if not ok:
        e("HPA has no Object metric on the Deployment (SLO-violation ratio or p99)")
    for o in ok:
        # The SLO ratio is served per workload: a Value target, 1% budget for p99 < 200 ms.
        t = o["target"]
        want = {"type": "Value", "value": "10m"} if o["metric"]["name"] == \
            "http_slo_violations_ratio" else {"type": "Value", "value": "200m"}
        if t != want:
            e(f"HPA Object metric {o['metric']['name']} target {t!r}, want {want!r}")
    for m in pods + objs:
        if m["metric"]["name"] not in KPISCALE_METRICS:
            e(f"HPA metric {m['metric']['name']} is not in the kpiscale catalogue")


def _expect_workload(dep, b, e, overlay):
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    app = _container(pod, "failure-agent")
    side = _container(pod, "kpiscale-sidecar")
    if app is None or side is None:
        e("ci-failure-agent needs containers failure-agent and kpiscale-sidecar")
        return
    want = {"requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "500m", "memory": "512Mi"}}
    if app.get("resources") != want:
        e(f"failure-agent resources {app.get('resources')!r}, want {want!r}")
    req = side.get("resources", {}).get("requests", {})
    if not (_cpu_milli(req.get("cpu")) and _cpu_milli(req.get("cpu")) <= 100):
        e(f"sidecar CPU request {req.get('cpu')!r} must be explicit and small (<= 100m)")
    env = {v["name"]: v.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
           for v in side.get("env", [])}
    for name, path in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace"),
                       ("POD_UID", "metadata.uid"), ("NODE_NAME", "spec.nodeName")):
        if env.get(name) != path:
            e(f"sidecar env {name} must come from the downward API field {path}")
    args = _args(side)
    mounts = {m["mountPath"]: m["name"] for m in side.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}

    def volume_file(path):
        """The volume and the path inside it that a container file path resolves to."""
        for mount, vname in mounts.items():
            if path.startswith(mount.rstrip("/") + "/"):
                return volumes.get(vname), path[len(mount.rstrip("/")) + 1:]
        return None, None

    vol, rel = volume_file(args.get("--pod-labels-file", ""))
    items = (vol or {}).get("downwardAPI", {}).get("items", [])
    if not any(i.get("path") == rel and i.get("fieldRef", {}).get("fieldPath") ==
               "metadata.labels" for i in items):
        e("--pod-labels-file is not a downward-API file of metadata.labels")
    vol, rel = volume_file(args.get("--adapter-token-file", ""))
    tokens = [s["serviceAccountToken"] for s in (vol or {}).get("projected", {}).get("sources", [])
              if "serviceAccountToken" in s]
    if not any(t.get("path") == rel and t.get("audience") == "kpiscale" for t in tokens):
        e("--adapter-token-file is not a projected service-account token with audience kpiscale")
    vol, rel = volume_file(args.get("--adapter-ca-file", ""))
    if vol is None:
        e("--adapter-ca-file is not mounted from a volume")
    m = re.match(r"^https://([a-z0-9-]+)\.([a-z0-9-]+)\.svc:(\d+)$", args.get("--adapter-url", ""))
    if not m:
        e(f"--adapter-url {args.get('--adapter-url')!r} is not an in-cluster HTTPS Service URL")
    else:
        svc = b.find("Service", m.group(1), m.group(2))
        port = next((p for p in (svc or {}).get("spec", {}).get("ports", [])
                     if p.get("port") == int(m.group(3))), None)
        if port is None or port.get("targetPort") != "ingest":
            e(f"--adapter-url port {m.group(3)} does not reach the adapter's ingest port")
    for flag, value in (("--listen", ":8080"), ("--upstream", "127.0.0.1:8000"),
                        ("--metrics-listen", ":9102"), ("--push-interval", "1s"),
                        ("--slo-threshold", "200ms"),
                        ("--workload", "deployment/ci-failure-agent")):
        if args.get(flag) != value:
            e(f"sidecar {flag}={args.get(flag)!r}, want {value!r}")
    named = b.find("Service", args.get("--service", ""), sem.ns_of(dep))
    if named is None or not sem.selector_matches(
            {"matchLabels": named["spec"].get("selector", {})},
            spec["template"]["metadata"].get("labels", {})):
        e(f"sidecar --service={args.get('--service')!r} is not a Service selecting these pods")
    svc = b.find("Service", "ci-failure-agent", WORKLOAD_NS)
    if svc is None or not any(p.get("targetPort") == "http" and
                              any(cp.get("name") == "http" and cp.get("containerPort") == 8080
                                  for cp in side.get("ports", []))
                              for p in svc["spec"]["ports"]):
        e("Service production/ci-failure-agent must point at the sidecar's port 8080")
    ann = spec["template"]["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != "9102":
        e("ci-failure-agent pods must be annotated for scraping on 9102")
    if overlay == "production":
        tscs = pod.get("topologySpreadConstraints", [])
        if not any(t.get("topologyKey") == CAPACITY_TYPE_LABEL for t in tscs):
            e("production: no topology spread over the capacity-type label")
        prefs = pod.get("affinity", {}).get("nodeAffinity", {}).get(
            "preferredDuringSchedulingIgnoredDuringExecution", [])
        weights = {tuple(p["preference"]["matchExpressions"][0]["values"]): p["weight"]
                   for p in prefs}
        if weights.get(("spot",)) != 60 or weights.get(("on-demand",)) != 40:
            e(f"production: preferred capacity-type weights {weights}, want spot 60 / "
              f"on-demand 40")
        if not pod.get("priorityClassName"):
            e("production: ci-failure-agent has no priority class")


def _expect_ingest_tokens(adapter, b, e):
    """Issue 4: the sidecars' projected tokens are what the adapter reviews for ingest.

    The adapter's --ingest-token-audience (default kpiscale) must be the audience of every
    projected token a sidecar sends (--adapter-token-file), that token must be short-lived, and
    the adapter must reach the Kubernetes API for TokenReview/SubjectAccessReview: through
    --authentication-kubeconfig/--authorization-kubeconfig files it mounts, or in-cluster from
    its own ServiceAccount's mounted token.
    """
    pod = adapter["spec"]["template"]["spec"]
    c = _container(pod, "adapter")
    if c is None:
        return
    args = _args(c)
    audience = args.get("--ingest-token-audience", "kpiscale")
    mounts = [m["mountPath"].rstrip("/") + "/" for m in c.get("volumeMounts", [])]
    kubeconfigs = [args.get(f) for f in ("--authentication-kubeconfig",
                                         "--authorization-kubeconfig")]
    if any(kubeconfigs):
        for path in kubeconfigs:
            if not path or not any(path.startswith(m) for m in mounts):
                e(f"adapter kubeconfig {path!r} is not a mounted file (both "
                  f"--authentication-kubeconfig and --authorization-kubeconfig are needed)")
    elif pod.get("automountServiceAccountToken") is False or \
            pod.get("serviceAccountName") != "kpiscale-adapter":
        e("adapter has no kubeconfig flags and no in-cluster credentials of ServiceAccount "
          "kpiscale-adapter (automountServiceAccountToken)")
    senders = 0
    for d in b.docs:
        tpl = sem.pod_template(d)
        if not tpl:
            continue
        spec = tpl.get("spec", {})
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for side in sem.all_containers(spec):
            token_file = _args(side).get("--adapter-token-file")
            if not token_file:
                continue
            senders += 1
            source = None
            for m in side.get("volumeMounts", []):
                mount = m["mountPath"].rstrip("/") + "/"
                if token_file.startswith(mount):
                    rel = token_file[len(mount):]
                    for src in volumes.get(m["name"], {}).get("projected", {}).get("sources", []):
                        if src.get("serviceAccountToken", {}).get("path") == rel:
                            source = src["serviceAccountToken"]
            where = f"{sem.key(d)} container {side.get('name')}"
            if source is None:
                e(f"{where}: --adapter-token-file is not a projected service-account token")
                continue
            if source.get("audience") != audience:
                e(f"{where}: token audience {source.get('audience')!r} does not match the "
                  f"adapter's --ingest-token-audience {audience!r}")
            expiry = source.get("expirationSeconds", 3600)
            if not isinstance(expiry, int) or not 600 <= expiry <= 3600:
                e(f"{where}: token expirationSeconds {expiry!r} must be short-lived (600..3600)")
    if senders == 0:
        e("no sidecar sends an --adapter-token-file to the adapter")


def _cpu_milli(q):
    if isinstance(q, str) and q.endswith("m") and q[:-1].isdigit():
        return int(q[:-1])
    try:
        return int(float(q) * 1000)
    except (TypeError, ValueError):
        return None


def _expect_adapter(dep, b, e, overlay):
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    if spec.get("replicas") != 2:
        e(f"adapter replicas {spec.get('replicas')}, want 2")
    anti = pod.get("affinity", {}).get("podAntiAffinity", {})
    if not anti:
        e("adapter has no pod anti-affinity")
    if overlay == "production" and not anti.get("requiredDuringSchedulingIgnoredDuringExecution"):
        e("production: adapter anti-affinity must be required")
    psc = pod.get("securityContext", {})
    if not psc.get("runAsNonRoot"):
        e("adapter pod must run as non-root")
    c = _container(pod, "adapter")
    if c is None:
        e("adapter container missing")
        return
    sc = c.get("securityContext", {})
    if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
            and sc.get("capabilities", {}).get("drop") == ["ALL"]):
        e("adapter container needs readOnlyRootFilesystem, no privilege escalation, drop ALL")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    args = _args(c)
    if ports.get("https") != int(args.get("--secure-port", "0")):
        e("adapter port 'https' must be --secure-port")
    if ports.get("ingest") != int(args.get("--ingest-port", "0")):
        e("adapter port 'ingest' must be --ingest-port")
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        g = c.get(probe, {}).get("httpGet", {})
        if g.get("path") != path or g.get("port") != "https" or g.get("scheme") != "HTTPS":
            e(f"adapter {probe} must be HTTPS {path} on the secure port")
    res = c.get("resources", {})
    if not res.get("requests") or not res.get("limits", {}).get("memory"):
        e("adapter needs requests and a memory limit")
    svc = b.find("Service", "kpiscale-adapter", ADAPTER_NS)
    if svc is None or not any(p.get("port") == 443 and p.get("targetPort") == "https"
                              for p in svc["spec"]["ports"]):
        e("Service kpiscale-system/kpiscale-adapter must map 443 to the secure port")
    apis = {sem.name_of(a): a["spec"] for a in b.by_kind.get("APIService", [])}
    v1, v2 = apis.get("v1beta1.custom.metrics.k8s.io"), apis.get("v1beta2.custom.metrics.k8s.io")
    if not v1 or not v2:
        e("APIServices v1beta1 and v1beta2 of custom.metrics.k8s.io are required")
    elif not v2["versionPriority"] > v1["versionPriority"]:
        e("v1beta2.custom.metrics.k8s.io must be preferred (higher versionPriority)")
    for name, a in apis.items():
        if a.get("insecureSkipTLSVerify"):
            e(f"APIService {name} skips TLS verification")
    # RBAC: exactly the two delegation bindings for the adapter's ServiceAccount, nothing more.
    bound = []
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for rb in b.by_kind.get(kind, []):
            if any(s.get("kind") == "ServiceAccount" and s.get("name") == "kpiscale-adapter"
                   for s in rb.get("subjects", [])):
                bound.append((kind, sem.ns_of(rb), rb["roleRef"]["kind"], rb["roleRef"]["name"]))
    want = sorted([("ClusterRoleBinding", "", "ClusterRole", "system:auth-delegator"),
                   ("RoleBinding", "kube-system", "Role",
                    "extension-apiserver-authentication-reader")])
    if sorted(bound) != want:
        e(f"adapter RBAC bindings {sorted(bound)}, want exactly {want}")
    if b.by_kind.get("ClusterRole") or b.by_kind.get("Role"):
        e("kpiscale ships no ClusterRole or Role of its own")
