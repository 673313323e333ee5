"""Strict schema validation of Kubernetes objects against the OpenAPI v2 spec, as kubeconform does.

The swagger document is converted the way openapi2jsonschema --expanded --kubernetes --strict does:
IntOrString becomes oneOf [string, integer], Quantity oneOf [string, number], and every object
schema with properties but no additionalProperties gets additionalProperties: false (unless it
preserves unknown fields). The schema for a document is found through x-kubernetes-group-version-
kind. Validation uses Draft 4 with $refs resolved inside the one converted document, which is
built once per process and cached.
"""

import copy
import functools
import json

import jsonschema

INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"


def _convert(node):
    if isinstance(node, list):
        return [_convert(v) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("format") == "int-or-string":
        out = {k: v for k, v in node.items() if k not in ("type", "format")}
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
        return out
    out = {k: _convert(v) for k, v in node.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


class Schemas:
    """The converted spec, with one validator per group-version-kind (built on first use)."""

    def __init__(self, spec_path):
        with open(spec_path, encoding="utf-8") as f:
            spec = json.load(f)
        defs = {}
        self.gvk = {}
        for name, definition in spec["definitions"].items():
            defs[name] = _convert(definition)
            for gvk in definition.get("x-kubernetes-group-version-kind", []):
                group, version, kind = gvk.get("group", ""), gvk["version"], gvk["kind"]
                api_version = f"{group}/{version}" if group else version
                # Prefer the definition that is not a deprecated alias when several share a GVK.
                self.gvk.setdefault((api_version, kind), name)
        defs[INT_OR_STRING] = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
        defs[QUANTITY] = {"oneOf": [{"type": "string"}, {"type": "number"}]}
        self._root = {"definitions": defs}
        self._resolver = jsonschema.RefResolver("", self._root)
        self._validators = {}

    def knows(self, api_version, kind):
        return (api_version, kind) in self.gvk

    def _validator(self, api_version, kind):
        key = (api_version, kind)
        if key not in self._validators:
            schema = {"$ref": f"#/definitions/{self.gvk[key]}"}
            self._validators[key] = jsonschema.Draft4Validator(schema, resolver=self._resolver)
        return self._validators[key]

    def validate(self, doc):
        """Returns a list of 'path: message' strings; empty when the document is valid."""
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not self.knows(api_version, kind):
            return [f"unknown kind {api_version}/{kind}"]
        errors = []
        for err in self._validator(api_version, kind).iter_errors(doc):
            errors.extend(_describe(err))
        return sorted(set(errors))


def _describe(err):
    # oneOf failures (IntOrString, Quantity) report their best sub-error.
    if err.context:
        best = jsonschema.exceptions.best_match(err.context)
        if best is not None and best is not err:
            path = "/".join(str(p) for p in err.absolute_path) or "(root)"
            return [f"{path}: {err.message}"]
    path = "/".join(str(p) for p in err.absolute_path) or "(root)"
    return [f"{path}: {err.message}"]


@functools.lru_cache(maxsize=None)
def load(spec_path):
    """One Schemas per spec file and process: the 3.3 MB spec is parsed and converted once."""
    return Schemas(spec_path)


def deepcopy(doc):
    return copy.deepcopy(doc)
