#!/usr/bin/python3
"""Grafana dashboard checks: JSON Schema, lint rules, and PromQL extraction with variable expansion.

The lint rules re-implement grafana/dashboard-linter's (template-datasource, panel-datasource,
panel-title-description, panel-units, panel-no-targets, target-rate-interval, target-counter-agg,
template-on-time-change-reload, uneditable-dashboard) plus ours: uid format, unique panel ids and
refIds, gridPos inside 24 columns without overlaps, every $variable defined, no removed Angular
panel types, thresholds drawn on timeseries panels that have a target level.

Usage: dashboard_lint.py --schema grafana-dashboard.schema.json DASHBOARD.json...
"""

import argparse
import json
import re
import sys

import jsonschema

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
BUILTIN_VARS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s",
                "__range_ms", "__from", "__to", "__name", "__dashboard", "__org", "__user",
                "__timeFilter"}
ANGULAR = {"graph", "singlestat", "table-old"}
# $var, ${var}, ${var:fmt}, [[var]]
VAR_REF = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
RATE_CALL = re.compile(r"\b(rate|irate)\s*\(")
COUNTER_FUNCS = ("rate", "irate", "increase")
# Defaults used to expand variables, as the linter does.
EXPANSIONS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}


def walk_panels(dashboard):
    """Every panel, children of rows (collapsed or not) included, as (panel, parent row)."""
    for p in dashboard.get("panels", []):
        yield p, None
        for child in p.get("panels", []) or []:
            yield child, p


def defined_vars(dashboard):
    return {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}


def referenced_vars(text):
    return {a or b or c for a, b, c in VAR_REF.findall(text)}


def expand(expr, values):
    """Replaces Grafana variables with concrete values (linter defaults for the built-ins)."""
    all_values = {**EXPANSIONS, **values}

    def sub(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in all_values:
            raise KeyError(f"no value for variable ${name}")
        return str(all_values[name])
    return VAR_REF.sub(sub, expr)


def targets(dashboard):
    """(panel, target) for every target of every non-row panel."""
    for p, _ in walk_panels(dashboard):
        if p.get("type") == "row":
            continue
        for t in p.get("targets", []) or []:
            yield p, t


def _counter_outside_rate(expr):
    """Names of *_total metrics used other than as the range vector of rate/irate/increase."""
    bad = []
    for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*_total)\b", expr):
        name = m.group(1)
        before = expr[:m.start()]
        # The selector must be the direct argument of a counter function: `func(` then the name.
        call = re.search(r"\b(\w+)\s*\(\s*$", before)
        after = expr[m.end():]
        has_range = re.match(r"\s*(\{[^}]*\})?\s*\[", after)
        if not (call and call.group(1) in COUNTER_FUNCS and has_range):
            bad.append(name)
    return bad


def lint(dashboard):
    """Returns a list of 'rule: message' findings."""
    out = []
    add = lambda rule, msg: out.append(f"{rule}: {msg}")
    if not UID.match(str(dashboard.get("uid", ""))):
        add("uid-rule", f"uid {dashboard.get('uid')!r} must be 1-40 of [A-Za-z0-9_-]")
    if dashboard.get("editable") is not False:
        add("uneditable-dashboard", "editable must be false (provisioned dashboards)")
    variables = dashboard.get("templating", {}).get("list", [])
    ds = [v for v in variables if v.get("name") == "datasource"]
    if not ds or ds[0].get("type") != "datasource" or ds[0].get("query") != "prometheus":
        add("template-datasource-rule", "needs a variable datasource of type datasource, "
                                        "query prometheus")
    for v in variables:
        if v.get("type") == "query":
            if v.get("refresh") != 2:
                add("template-on-time-change-reload-rule",
                    f"variable {v.get('name')} must have refresh: 2")
            if v.get("datasource") != DATASOURCE:
                add("panel-datasource-rule", f"variable {v.get('name')} must use ${{datasource}}")
    names = defined_vars(dashboard) | BUILTIN_VARS
    ids = {}
    for p, parent in walk_panels(dashboard):
        pid = p.get("id")
        title = p.get("title", "")
        where = f"panel {pid} {title!r}"
        if pid in ids:
            add("unique-panel-id-rule", f"{where}: id also used by {ids[pid]!r}")
        ids[pid] = title
        ptype = p.get("type")
        if ptype in ANGULAR:
            add("panel-type-rule", f"{where}: removed Angular panel type {ptype}")
        gp = p.get("gridPos", {})
        if not gp or gp.get("x", 0) < 0 or gp.get("w", 0) <= 0 or gp.get("x", 0) + gp.get(
                "w", 0) > 24 or gp.get("h", 0) <= 0:
            add("grid-layout-rule", f"{where}: gridPos {gp} outside the 24-column grid")
        if ptype == "row":
            continue
        if not title or not p.get("description"):
            add("panel-title-description-rule", f"{where}: needs a title and a description")
        if p.get("datasource") != DATASOURCE:
            add("panel-datasource-rule", f"{where}: datasource must be {DATASOURCE}")
        defaults = p.get("fieldConfig", {}).get("defaults", {})
        if ptype not in ("text",) and not defaults.get("unit") and not defaults.get("mappings"):
            add("panel-units-rule", f"{where}: no unit")
        tlist = p.get("targets", []) or []
        if ptype != "text" and not tlist:
            add("panel-no-targets-rule", f"{where}: no targets")
        refs = set()
        for t in tlist:
            ref = t.get("refId")
            if ref in refs:
                add("unique-refid-rule", f"{where}: refId {ref} used twice")
            refs.add(ref)
            if t.get("datasource") != DATASOURCE:
                add("panel-datasource-rule", f"{where} {ref}: target datasource must be "
                                             f"{DATASOURCE}")
            expr = t.get("expr", "")
            for m in RATE_CALL.finditer(expr):
                depth, i = 1, m.end()
                while i < len(expr) and depth:
                    depth += {"(": 1, ")": -1}.get(expr[i], 0)
                    i += 1
                arg = expr[m.end():i - 1]
                rng = re.search(r"\[([^\]]*)\]\s*$", arg)
                if not rng or rng.group(1) != "$__rate_interval":
                    add("target-rate-interval-rule",
                        f"{where} {ref}: {m.group(1)}() must use [$__rate_interval]")
            for name in _counter_outside_rate(expr):
                add("target-counter-agg-rule", f"{where} {ref}: counter {name} outside "
                                               f"rate/irate/increase")
            for var in referenced_vars(expr) - names:
                add("template-variable-rule", f"{where} {ref}: undefined variable ${var}")
        steps = defaults.get("thresholds", {}).get("steps", [])
        mode = defaults.get("custom", {}).get("thresholdsStyle", {}).get("mode", "off")
        if ptype == "timeseries" and len(steps) > 1 and mode == "off":
            add("threshold-display-rule", f"{where}: has a threshold but does not draw it")
    for v in variables:
        q = v.get("query")
        text = q.get("query", "") if isinstance(q, dict) else str(q or "")
        for var in referenced_vars(text) - names:
            add("template-variable-rule", f"variable {v.get('name')}: undefined variable ${var}")
    _check_overlaps(dashboard, add)
    return out


def _check_overlaps(dashboard, add):
    def overlaps(a, b):
        return not (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"] or
                    a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"])
    groups = [dashboard.get("panels", [])]
    groups += [p.get("panels", []) for p in dashboard.get("panels", [])
               if p.get("type") == "row" and p.get("collapsed")]
    for group in groups:
        boxes = [(p.get("id"), p.get("gridPos")) for p in group if p.get("gridPos")]
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                try:
                    if overlaps(boxes[i][1], boxes[j][1]):
                        add("grid-layout-rule", f"panels {boxes[i][0]} and {boxes[j][0]} "
                                                f"overlap")
                except (KeyError, TypeError):
                    pass


def schema_errors(validator, dashboard):
    return [f"schema: {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(dashboard), key=lambda e: list(e.path))]


def make_validator(schema_path):
    with open(schema_path, encoding="utf-8") as f:
        return jsonschema.Draft7Validator(json.load(f))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schema", required=True)
    parser.add_argument("dashboards", nargs="+")
    args = parser.parse_args()
    validator = make_validator(args.schema)
    failed = 0
    for path in args.dashboards:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        findings = schema_errors(validator, d) + lint(d)
        for msg in findings:
            print(f"ERROR {path}: {msg}")
        failed += len(findings)
        print(f"{path}: {sum(1 for _ in targets(d))} targets, {len(findings)} findings")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
