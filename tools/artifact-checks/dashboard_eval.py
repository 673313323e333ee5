"""Evaluates every dashboard panel query on a real Prometheus and compares it with expectations.

expected.yaml (dashboards/tests/) maps panel title -> {threshold, targets: {refId: value}},
where a value is a number (one series) or {label: {label value: number}} (one series each).
evaluate() returns a list of error strings; an empty list means every target showed the number
it should and every target had an expectation.
"""

import math
import re

import dashboard_lint

REL_TOL = 1e-6
ABS_TOL = 1e-9


def close(a, b):
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _display(result):
    return [(labels, value) for labels, value in result]


def evaluate(prom, dashboard, expectations, variables, at):
    errors = []
    seen = set()
    for panel, target in dashboard_lint.targets(dashboard):
        title, ref = panel.get("title"), target.get("refId")
        where = f"{dashboard.get('uid')} / {title} / {ref}"
        spec = expectations.get(title)
        if spec is None or ref not in spec.get("targets", {}):
            errors.append(f"{where}: no expectation in expected.yaml")
            continue
        seen.add((title, ref))
        want = spec["targets"][ref]
        expr = dashboard_lint.expand(target["expr"], variables)
        try:
            got = prom.query(expr, at)
        except Exception as e:  # noqa: BLE001 - an API error is a finding
            errors.append(f"{where}: query failed: {e}")
            continue
        if not isinstance(want, dict):
            if len(got) != 1:
                errors.append(f"{where}: want one series = {want}, got {_display(got)}")
            elif not close(got[0][1], float(want)):
                errors.append(f"{where}: want {want}, got {got[0][1]!r}")
            continue
        (label, values), = want.items()
        got_by = {labels.get(label): value for labels, value in got}
        want_by = {str(k): float(v) for k, v in values.items()}
        if set(got_by) != set(want_by):
            errors.append(f"{where}: want series {sorted(want_by)} by {label}, got "
                          f"{_display(got)}")
            continue
        for k, v in want_by.items():
            if not close(got_by[k], v):
                errors.append(f"{where}: {label}={k}: want {v}, got {got_by[k]!r}")
    for title, spec in expectations.items():
        for ref in spec.get("targets", {}):
            if (title, ref) not in seen:
                errors.append(f"{dashboard.get('uid')}: expectation for {title!r} {ref} matches "
                              f"no panel target")
        if "threshold" in spec:
            panel = next((p for p, _ in dashboard_lint.walk_panels(dashboard)
                          if p.get("title") == title), None)
            steps = (panel or {}).get("fieldConfig", {}).get("defaults", {}).get(
                "thresholds", {}).get("steps", [])
            if not any(s.get("value") is not None and close(s["value"], spec["threshold"])
                       for s in steps):
                errors.append(f"{dashboard.get('uid')} / {title}: no threshold step at "
                              f"{spec['threshold']}")
    return errors


def variable_queries(dashboard):
    """(name, metric selector, label) of every label_values(...) query variable."""
    out = []
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query", "")
        m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*", q)
        if m:
            out.append((v["name"], m.group(1), m.group(2)))
        else:
            out.append((v["name"], None, q))
    return out
