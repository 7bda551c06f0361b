"""The JSON Schema of cluster.yaml, for editors (yaml-language-server) and ``config schema``."""

from __future__ import annotations

from typing import Any

from hk8s.config._cluster import ClusterConfig

__all__ = ["SCHEMA_ID", "json_schema"]

SCHEMA_ID = "https://github.com/hk8s/hk8s/raw/main/configs/cluster.schema.json"


def json_schema() -> dict[str, Any]:
    """The schema of the input (defaults shown, derived fields optional)."""
    schema = ClusterConfig.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
