"""Checks a schema cannot do: kube-apiserver validation rules and cross-object references.

check(docs) returns (errors, warnings), each a list of strings naming the object
("Kind namespace/name: message"). The rules follow validating-artifacts.md section 1.3: HPA
ranges and policies (pkg/apis/autoscaling/validation), CPU and memory requests on every
container, spec.replicas under an HPA, selectors matching pod templates, Service and probe ports,
PDB fields, APIService names and fields, RBAC references, DNS-1123 names.
"""

import base64
import re

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
SCALABLE_KINDS = ("Deployment", "StatefulSet", "ReplicaSet")
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "APIService", "PriorityClass",
                  "ClusterIssuer", "CustomResourceDefinition", "StorageClass"}
WELL_KNOWN_CLUSTER_ROLES = {"system:auth-delegator", "view", "edit", "admin", "cluster-admin"}
WELL_KNOWN_ROLES = {("kube-system", "extension-apiserver-authentication-reader")}
WELL_KNOWN_PRIORITY_CLASSES = {"system-cluster-critical", "system-node-critical"}
CA_INJECT_ANNOTATION = "cert-manager.io/inject-ca-from"
# Names with a colon are allowed for RBAC objects (system:auth-delegator style).
RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def key(doc):
    meta = doc.get("metadata", {})
    ns = meta.get("namespace", "")
    return f"{doc.get('kind')} {ns + '/' if ns else ''}{meta.get('name')}"


def ns_of(doc):
    return doc.get("metadata", {}).get("namespace", "")


def name_of(doc):
    return doc.get("metadata", {}).get("name", "")


def pod_template(doc):
    if doc.get("kind") in WORKLOAD_KINDS:
        return doc.get("spec", {}).get("template", {})
    if doc.get("kind") == "Pod":
        return doc
    return None


def all_containers(pod_spec):
    return list(pod_spec.get("initContainers", [])) + list(pod_spec.get("containers", []))


def selector_matches(selector, labels):
    """A metav1.LabelSelector (matchLabels + matchExpressions) against a label map."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        op, k, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
        if op == "In" and labels.get(k) not in values:
            return False
        if op == "NotIn" and labels.get(k) in values:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def parse_int_or_percent(value):
    if isinstance(value, int):
        return value, False
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return int(value[:-1]), True
    return None, False


class Bundle:
    def __init__(self, docs):
        self.docs = docs
        self.by_kind = {}
        for d in docs:
            self.by_kind.setdefault(d.get("kind"), []).append(d)

    def find(self, kind, name, namespace=None):
        for d in self.by_kind.get(kind, []):
            if name_of(d) == name and (namespace is None or ns_of(d) == namespace):
                return d
        return None

    def templates(self, namespace):
        """(workload doc, template labels, pod spec) of every pod template in a namespace."""
        out = []
        for d in self.docs:
            tpl = pod_template(d)
            if tpl is not None and ns_of(d) == namespace:
                out.append((d, tpl.get("metadata", {}).get("labels", {}) or {},
                            tpl.get("spec", {})))
        return out


def check(docs):
    b = Bundle(docs)
    errors, warnings = [], []
    err = lambda d, m: errors.append(f"{key(d)}: {m}")
    warn = lambda d, m: warnings.append(f"{key(d)}: {m}")

    seen = set()
    for d in docs:
        k = (d.get("apiVersion", "").split("/")[0] if "/" in d.get("apiVersion", "") else "",
             d.get("kind"), ns_of(d), name_of(d))
        if k in seen:
            err(d, "defined twice in the bundle")
        seen.add(k)
        _check_names(d, err)

    hpa_targets = {}
    for hpa in b.by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa.get("spec", {}).get("scaleTargetRef", {})
        hpa_targets[(ns_of(hpa), ref.get("kind"), ref.get("name"))] = hpa
        _check_hpa(hpa, b, err)

    for d in docs:
        tpl = pod_template(d)
        if tpl is not None:
            _check_workload(d, tpl, b, hpa_targets, err, warn)

    for svc in b.by_kind.get("Service", []):
        _check_service(svc, b, err)
    for pdb in b.by_kind.get("PodDisruptionBudget", []):
        _check_pdb(pdb, b, hpa_targets, err)
    for np in b.by_kind.get("NetworkPolicy", []):
        _check_network_policy(np, b, err)
    for api in b.by_kind.get("APIService", []):
        _check_apiservice(api, b, err, warn)
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        for rb in b.by_kind.get(kind, []):
            _check_binding(rb, b, err)
    for kind in ("Certificate",):
        for cert in b.by_kind.get(kind, []):
            _check_certificate(cert, b, err)
    return errors, warnings


def _check_names(d, err):
    name = name_of(d)
    if not name:
        err(d, "metadata.name is missing")
        return
    if d.get("kind") in RBAC_KINDS:
        if "/" in name or name in (".", ".."):
            err(d, f"name {name!r} is not a valid path segment")
    elif not (DNS1123_SUBDOMAIN.match(name) and len(name) <= 253):
        err(d, f"name {name!r} is not a DNS-1123 subdomain")
    if d.get("kind") in ("Service", "Namespace") and not (DNS1123_LABEL.match(name)
                                                          and len(name) <= 63):
        err(d, f"name {name!r} is not a DNS-1123 label")
    if d.get("kind") not in CLUSTER_SCOPED and not ns_of(d):
        err(d, "namespaced object without metadata.namespace")
    if d.get("kind") in CLUSTER_SCOPED and ns_of(d):
        err(d, "cluster-scoped object with metadata.namespace")


def _check_hpa(hpa, b, err):
    spec = hpa.get("spec", {})
    lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas")
    if hi is None or lo < 1 or lo > hi:
        err(hpa, f"replica range must satisfy 1 <= minReplicas ({lo}) <= maxReplicas ({hi})")
    ref = spec.get("scaleTargetRef", {})
    target = b.find(ref.get("kind"), ref.get("name"), ns_of(hpa))
    if ref.get("kind") not in SCALABLE_KINDS or target is None:
        err(hpa, f"scaleTargetRef {ref.get('kind')}/{ref.get('name')} is not a scalable "
                 f"workload of this bundle")
    elif target.get("apiVersion") != ref.get("apiVersion"):
        err(hpa, f"scaleTargetRef apiVersion {ref.get('apiVersion')} != "
                 f"{target.get('apiVersion')}")
    sources = {"Resource": "resource", "Pods": "pods", "Object": "object",
               "External": "external", "ContainerResource": "containerResource"}
    for i, m in enumerate(spec.get("metrics", [])):
        where = f"metrics[{i}]"
        mtype = m.get("type")
        if mtype not in sources:
            err(hpa, f"{where}: unknown type {mtype!r}")
            continue
        populated = [s for s in sources.values() if s in m]
        if populated != [sources[mtype]]:
            err(hpa, f"{where}: type {mtype} must populate exactly '{sources[mtype]}', "
                     f"found {populated}")
            continue
        src = m[sources[mtype]]
        target = src.get("target", {})
        ttype = target.get("type")
        present = [f for f in ("value", "averageValue", "averageUtilization") if f in target]
        wanted = {"Utilization": "averageUtilization", "Value": "value",
                  "AverageValue": "averageValue"}.get(ttype)
        if wanted is None or present != [wanted]:
            err(hpa, f"{where}: target type {ttype} must set exactly {wanted}, found {present}")
        if mtype in ("Resource", "ContainerResource"):
            if ttype not in ("Utilization", "AverageValue"):
                err(hpa, f"{where}: resource metrics take Utilization or AverageValue")
        elif mtype == "Pods" and ttype != "AverageValue":
            err(hpa, f"{where}: Pods metrics take only AverageValue")
        elif mtype in ("Object", "External") and ttype not in ("Value", "AverageValue"):
            err(hpa, f"{where}: {mtype} metrics take Value or AverageValue")
        if ttype == "Utilization" and not (isinstance(target.get("averageUtilization"), int)
                                           and target["averageUtilization"] > 0):
            err(hpa, f"{where}: averageUtilization must be a positive integer")
        if mtype == "Object":
            obj = src.get("describedObject", {})
            if b.find(obj.get("kind"), obj.get("name"), ns_of(hpa)) is None:
                err(hpa, f"{where}: describedObject {obj.get('kind')}/{obj.get('name')} is not "
                         f"in the bundle")
    behavior = spec.get("behavior", {})
    for direction in ("scaleUp", "scaleDown"):
        rules = behavior.get(direction)
        if rules is None:
            continue
        w = rules.get("stabilizationWindowSeconds", 0)
        if not 0 <= w <= MAX_STABILIZATION_WINDOW_SECONDS:
            err(hpa, f"behavior.{direction}.stabilizationWindowSeconds {w} outside 0-3600")
        if rules.get("selectPolicy", "Max") not in ("Max", "Min", "Disabled"):
            err(hpa, f"behavior.{direction}.selectPolicy {rules.get('selectPolicy')!r} invalid")
        policies = rules.get("policies", [])
        if not policies and rules.get("selectPolicy") != "Disabled":
            err(hpa, f"behavior.{direction} must have at least one policy")
        for j, p in enumerate(policies):
            if p.get("type") not in ("Pods", "Percent"):
                err(hpa, f"behavior.{direction}.policies[{j}].type {p.get('type')!r} invalid")
            if not (isinstance(p.get("value"), int) and p["value"] > 0):
                err(hpa, f"behavior.{direction}.policies[{j}].value must be > 0")
            ps = p.get("periodSeconds")
            if not (isinstance(ps, int) and 1 <= ps <= MAX_PERIOD_SECONDS):
                err(hpa, f"behavior.{direction}.policies[{j}].periodSeconds {ps} outside 1-1800")


def _check_workload(d, tpl, b, hpa_targets, err, warn):
    spec = d.get("spec", {})
    labels = tpl.get("metadata", {}).get("labels", {}) or {}
    if d.get("kind") != "Pod":
        sel = spec.get("selector")
        if not sel or not selector_matches(sel, labels):
            err(d, "spec.selector does not match the pod template's labels")
    hpa = hpa_targets.get((ns_of(d), d.get("kind"), name_of(d)))
    if hpa is not None and "replicas" in spec:
        err(d, f"sets spec.replicas although {key(hpa)} scales it (every apply would reset it)")
    pod = tpl.get("spec", {})
    names = set()
    port_names = set()
    for c in all_containers(pod):
        for p in c.get("ports", []):
            if "name" in p:
                if p["name"] in port_names:
                    err(d, f"port name {p['name']!r} used twice in the pod")
                port_names.add(p["name"])
    volumes = {v.get("name") for v in pod.get("volumes", [])}
    claim_names = {t.get("metadata", {}).get("name")
                   for t in spec.get("volumeClaimTemplates", [])}
    for c in all_containers(pod):
        cname = c.get("name")
        if cname in names:
            err(d, f"container name {cname!r} is not unique")
        names.add(cname)
        requests = c.get("resources", {}).get("requests", {})
        for res in ("cpu", "memory"):
            if res not in requests:
                err(d, f"container {cname} has no {res} request (HPA utilization over the pod "
                       f"is undefined without it)")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            p = c.get(probe)
            if not p:
                continue
            for handler in ("httpGet", "tcpSocket", "grpc"):
                port = p.get(handler, {}).get("port")
                if isinstance(port, str) and port not in port_names:
                    err(d, f"container {cname} {probe} uses unknown port name {port!r}")
        for vm in c.get("volumeMounts", []):
            if vm.get("name") not in volumes and vm.get("name") not in claim_names:
                err(d, f"container {cname} mounts unknown volume {vm.get('name')!r}")
    pc = pod.get("priorityClassName")
    if pc and pc not in WELL_KNOWN_PRIORITY_CLASSES and b.find("PriorityClass", pc) is None:
        err(d, f"priorityClassName {pc!r} is not defined in the bundle")
    sa = pod.get("serviceAccountName")
    if sa and sa != "default" and b.find("ServiceAccount", sa, ns_of(d)) is None:
        err(d, f"serviceAccountName {sa!r} is not defined in the bundle")
    for tsc in pod.get("topologySpreadConstraints", []):
        if not selector_matches(tsc.get("labelSelector"), labels):
            warn(d, f"topology spread over {tsc.get('topologyKey')} does not select its own pods")


def _matched_templates(b, namespace, selector_labels=None, selector=None):
    out = []
    for d, labels, pod in b.templates(namespace):
        if selector is not None:
            if selector_matches(selector, labels):
                out.append((d, labels, pod))
        elif selector_labels and all(labels.get(k) == v for k, v in selector_labels.items()):
            out.append((d, labels, pod))
    return out


def _container_ports(pod):
    names, numbers = set(), set()
    for c in all_containers(pod):
        for p in c.get("ports", []):
            numbers.add(p.get("containerPort"))
            if "name" in p:
                names.add(p["name"])
    return names, numbers


def _check_service(svc, b, err):
    spec = svc.get("spec", {})
    sel = spec.get("selector")
    if not sel:
        return
    matched = _matched_templates(b, ns_of(svc), selector_labels=sel)
    if not matched:
        err(svc, f"selector {sel} matches no pod template in namespace {ns_of(svc)}")
        return
    for port in spec.get("ports", []):
        target = port.get("targetPort", port.get("port"))
        for d, _, pod in matched:
            names, numbers = _container_ports(pod)
            if (isinstance(target, str) and target not in names) or (
                    isinstance(target, int) and target not in numbers):
                err(svc, f"port {port.get('name', port.get('port'))}: targetPort {target!r} is "
                         f"not a container port of {key(d)}")


def _check_pdb(pdb, b, hpa_targets, err):
    spec = pdb.get("spec", {})
    if ("minAvailable" in spec) == ("maxUnavailable" in spec):
        err(pdb, "exactly one of minAvailable and maxUnavailable must be set")
    matched = _matched_templates(b, ns_of(pdb), selector=spec.get("selector"))
    if not matched:
        err(pdb, "selector matches no pod template in the bundle")
    value, percent = parse_int_or_percent(spec.get("minAvailable"))
    for d, _, _ in matched:
        hpa = hpa_targets.get((ns_of(d), d.get("kind"), name_of(d)))
        replicas = (hpa or {}).get("spec", {}).get("minReplicas") if hpa else \
            d.get("spec", {}).get("replicas", 1)
        if value is not None and not percent and replicas is not None and value >= replicas:
            err(pdb, f"minAvailable {value} >= {replicas} replicas of {key(d)}: node drains "
                     f"would block")


def _check_network_policy(np, b, err):
    spec = np.get("spec", {})
    sel = spec.get("podSelector", {})
    if not sel:
        return  # selects every pod of the namespace
    matched = _matched_templates(b, ns_of(np), selector=sel)
    if not matched:
        err(np, "podSelector matches no pod template in the bundle")
        return
    for rule in spec.get("ingress", []):
        for port in rule.get("ports", []):
            p = port.get("port")
            for d, _, pod in matched:
                names, numbers = _container_ports(pod)
                if (isinstance(p, str) and p not in names) or (isinstance(p, int)
                                                               and p not in numbers):
                    err(np, f"ingress port {p!r} is not a container port of {key(d)}")


def _check_apiservice(api, b, err, warn):
    spec = api.get("spec", {})
    group, version = spec.get("group"), spec.get("version")
    if name_of(api) != f"{version}.{group}":
        err(api, f"name must be <version>.<group> = {version}.{group}")
    gpm, vp = spec.get("groupPriorityMinimum"), spec.get("versionPriority")
    if not (isinstance(gpm, int) and 1 <= gpm <= 20000):
        err(api, f"groupPriorityMinimum {gpm} outside 1-20000")
    if not (isinstance(vp, int) and vp > 0):
        err(api, f"versionPriority {vp} must be > 0")
    annotations = api.get("metadata", {}).get("annotations", {}) or {}
    sources = [s for s, present in (("caBundle", bool(spec.get("caBundle"))),
                                    ("insecureSkipTLSVerify", bool(spec.get(
                                        "insecureSkipTLSVerify"))),
                                    (CA_INJECT_ANNOTATION, CA_INJECT_ANNOTATION in annotations))
               if present]
    if len(sources) != 1:
        err(api, f"needs exactly one of caBundle, insecureSkipTLSVerify or the "
                 f"{CA_INJECT_ANNOTATION} annotation, found {sources}")
    if spec.get("caBundle"):
        try:
            pem = base64.b64decode("".join(spec["caBundle"].split()), validate=True)
            if b"-----BEGIN CERTIFICATE-----" not in pem:
                err(api, "caBundle is not a base64 PEM certificate")
        except ValueError:
            err(api, "caBundle is not valid base64")
    if spec.get("insecureSkipTLSVerify"):
        warn(api, "insecureSkipTLSVerify: the aggregator will not verify the adapter")
    if CA_INJECT_ANNOTATION in annotations:
        ns, _, cert = annotations[CA_INJECT_ANNOTATION].partition("/")
        if b.find("Certificate", cert, ns) is None:
            err(api, f"{CA_INJECT_ANNOTATION} names {ns}/{cert}, which is not in the bundle")
    svc_ref = spec.get("service")
    if svc_ref:
        svc = b.find("Service", svc_ref.get("name"), svc_ref.get("namespace"))
        if svc is None:
            err(api, f"service {svc_ref.get('namespace')}/{svc_ref.get('name')} is not in the "
                     f"bundle")
        else:
            port = svc_ref.get("port", 443)
            if port not in [p.get("port") for p in svc.get("spec", {}).get("ports", [])]:
                err(api, f"service {key(svc)} has no port {port}")
    if group in ("metrics.k8s.io", "external.metrics.k8s.io"):
        warn(api, f"registers {group}: a cluster has one provider per APIService, and "
                  f"metrics-server, KEDA or Datadog may already own it")


def _check_binding(rb, b, err):
    ref = rb.get("roleRef", {})
    kind, name = ref.get("kind"), ref.get("name")
    if kind == "ClusterRole":
        if name not in WELL_KNOWN_CLUSTER_ROLES and b.find("ClusterRole", name) is None:
            err(rb, f"roleRef ClusterRole {name!r} is neither well-known nor in the bundle")
    elif kind == "Role":
        if rb.get("kind") == "ClusterRoleBinding":
            err(rb, "a ClusterRoleBinding cannot reference a Role")
        elif (ns_of(rb), name) not in WELL_KNOWN_ROLES and b.find("Role", name,
                                                                  ns_of(rb)) is None:
            err(rb, f"roleRef Role {ns_of(rb)}/{name} is neither well-known nor in the bundle")
    else:
        err(rb, f"roleRef kind {kind!r} invalid")
    if ref.get("apiGroup") != "rbac.authorization.k8s.io":
        err(rb, "roleRef.apiGroup must be rbac.authorization.k8s.io")
    for s in rb.get("subjects", []):
        if s.get("kind") == "ServiceAccount":
            if not s.get("namespace"):
                err(rb, f"ServiceAccount subject {s.get('name')} without namespace")
            elif b.find("ServiceAccount", s.get("name"), s.get("namespace")) is None:
                err(rb, f"subject ServiceAccount {s.get('namespace')}/{s.get('name')} is not in "
                        f"the bundle")


def _check_certificate(cert, b, err):
    spec = cert.get("spec", {})
    ref = spec.get("issuerRef", {})
    kind = ref.get("kind", "Issuer")
    issuer = b.find(kind, ref.get("name"), None if kind == "ClusterIssuer" else ns_of(cert))
    if issuer is None:
        err(cert, f"issuerRef {kind}/{ref.get('name')} is not in the bundle")
    if not spec.get("secretName"):
        err(cert, "spec.secretName is missing")
