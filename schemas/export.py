"""JSON Schema documents of the event contract (``crownstream schemas export``)."""

from __future__ import annotations

from typing import Any

from crownstream.schemas.events import EVENT_MODELS


def json_schemas() -> dict[str, dict[str, Any]]:
    docs = {}
    for name, model in sorted(EVENT_MODELS.items()):
        doc = model.model_json_schema(mode="validation")
        doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        doc["$id"] = f"https://crownstream.dev/schemas/{name}/v1.json"
        docs[name] = doc
    return docs
