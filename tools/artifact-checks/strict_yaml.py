"""YAML loading that refuses what a plain yaml.safe_load silently accepts.

A repeated mapping key is an error (kubeconform -strict does the same); a plain load would keep
the last value and hide the mistake. Optional fields written as null are pruned before schema
validation, since the API server treats them as unset.
"""

import yaml


class DuplicateKeyError(ValueError):
    pass


class _StrictLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise DuplicateKeyError(
                f"{mark.name}:{mark.line + 1}:{mark.column + 1}: duplicate key {key!r} "
                f"(first at line {seen[key] + 1})")
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_all(text, name="<string>"):
    """Every document of a multi-document YAML stream, empty documents dropped."""
    docs = []
    loader = _StrictLoader(text)
    loader.name = name
    try:
        while loader.check_data():
            doc = loader.get_data()
            if doc is not None:
                docs.append(doc)
    finally:
        loader.dispose()
    return docs


def load_file(path):
    with open(path, encoding="utf-8") as f:
        return load_all(f.read(), name=str(path))


def prune_nulls(value):
    """Drops mapping entries whose value is None, recursively."""
    if isinstance(value, dict):
        return {k: prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_nulls(v) for v in value]
    return value
