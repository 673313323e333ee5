#!/usr/bin/python3
"""Renders every kustomize overlay and validates what it renders.

For each overlay: `kubectl kustomize`, strict schema validation of every document against the
Kubernetes 1.32 OpenAPI spec (unknown fields are errors), the semantic checks of k8s_semantic and
the kpiscale expectations of kpiscale_checks. Every YAML source under the given roots is also
loaded with a loader that rejects duplicate keys (the rendered output cannot show them, since
kustomize re-serializes). Exit status 0 only when there is no error; warnings are printed.

Usage: check_manifests.py --schema SPEC.json [--overlay DIR ...] [--sources DIR ...]
"""

import argparse
import os
import pathlib
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import k8s_schema  # noqa: E402
import k8s_semantic  # noqa: E402
import kpiscale_checks  # noqa: E402
import strict_yaml  # noqa: E402

# Custom resources the 1.32 spec cannot describe; they get the semantic checks only.
SKIPPED_GROUPS = ("cert-manager.io/",)


def render(overlay):
    proc = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True,
                          env={**os.environ, "KUBECONFIG": os.devnull})
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay} failed: {proc.stderr.strip()}")
    return proc.stdout


def check_sources(roots):
    """Strict-loads every .yaml/.yml file below the roots; returns error strings."""
    errors = []
    for root in roots:
        for path in sorted(pathlib.Path(root).rglob("*.y*ml")):
            if path.suffix not in (".yaml", ".yml"):
                continue
            try:
                strict_yaml.load_file(path)
            except Exception as e:  # noqa: BLE001 - every loader error is a finding
                errors.append(f"{path}: {e}")
    return errors


def check_docs(schemas, docs, overlay_name):
    """(errors, warnings) for a rendered bundle."""
    docs = [strict_yaml.prune_nulls(d) for d in docs]
    errors = []
    for d in docs:
        if str(d.get("apiVersion", "")).startswith(SKIPPED_GROUPS):
            continue
        for msg in schemas.validate(d):
            errors.append(f"{k8s_semantic.key(d)}: schema: {msg}")
    sem_errors, warnings = k8s_semantic.check(docs)
    errors += sem_errors
    errors += [f"kpiscale: {m}" for m in kpiscale_checks.expect(docs, overlay_name)]
    return errors, warnings


def check_overlay(schemas, overlay):
    docs = strict_yaml.load_all(render(overlay), name=f"kustomize {overlay}")
    errors, warnings = check_docs(schemas, docs, pathlib.Path(overlay).name)
    return docs, errors, warnings


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schema", required=True)
    parser.add_argument("--overlay", action="append", default=[])
    parser.add_argument("--sources", action="append", default=[])
    args = parser.parse_args()
    schemas = k8s_schema.load(args.schema)
    failed = 0
    for msg in check_sources(args.sources):
        print(f"ERROR {msg}")
        failed += 1
    for overlay in args.overlay:
        try:
            docs, errors, warnings = check_overlay(schemas, overlay)
        except Exception as e:  # noqa: BLE001
            print(f"ERROR {overlay}: {e}")
            failed += 1
            continue
        for w in warnings:
            print(f"WARN  {overlay}: {w}")
        for msg in errors:
            print(f"ERROR {overlay}: {msg}")
        failed += len(errors)
        print(f"{overlay}: {len(docs)} documents, {len(errors)} errors, {len(warnings)} warnings")
    print("manifests: " + ("OK" if failed == 0 else f"{failed} errors"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
