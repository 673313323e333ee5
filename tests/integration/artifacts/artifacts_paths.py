"""Paths shared by the artifact tests; CMake passes them as environment variables."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("KPISCALE_SOURCE_DIR", os.path.normpath(os.path.join(HERE, "../../..")))
SHARED_DIR = os.environ.get("KPISCALE_SHARED_DIR", os.path.join(SOURCE_DIR, "..", "shared"))
BINARY_DIR = os.environ.get("KPISCALE_BINARY_DIR", os.path.join(SOURCE_DIR, "build"))
TOOLS = os.path.join(SOURCE_DIR, "tools", "artifact-checks")
MANIFESTS = os.path.join(SOURCE_DIR, "manifests")
DASHBOARDS = os.path.join(SOURCE_DIR, "dashboards")
PROMETHEUS = os.path.join(MANIFESTS, "prometheus")
K8S_SCHEMA = os.path.join(SHARED_DIR, "schemas", "kubernetes-openapi-v1.32.json")
GRAFANA_SCHEMA = os.path.join(SHARED_DIR, "schemas", "grafana-dashboard.schema.json")
FIXTURES = os.path.join(TOOLS, "fixtures")

if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)
