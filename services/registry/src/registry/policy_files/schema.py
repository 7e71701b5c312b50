"""JSON Schemas of the policy files, generated from the models so the two never drift."""

from __future__ import annotations

from typing import Any

from registry.policy_files.models import Document
from registry.policy_files.reference import MatterFile, RegionFile

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_documents() -> dict[str, dict[str, Any]]:
    """File name under `policies/` → the JSON Schema for that kind of file."""
    out: dict[str, dict[str, Any]] = {}
    for name, model, title in (
        ("document.schema.json", Document, "政策文件"),
        ("matters.schema.json", MatterFile, "事项目录"),
        ("regions.schema.json", RegionFile, "行政区划与园区"),
    ):
        schema = model.model_json_schema(mode="validation")
        out[name] = {"$schema": SCHEMA_DIALECT, "title": title, **schema}
    return out
