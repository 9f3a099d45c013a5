"""Output models document the vendors' objects for clients; they never constrain what passes through.

Known fields are typed `Any`, with their documented type in the description: the SDK validates every result
against the model, and clients validate `structuredContent` against the schema, so a typed field would turn a
vendor's harmless change (a fractional timestamp, a restructured status) into a failed call.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


def lean_schema(schema: dict[str, Any]) -> None:
    # Auto-generated titles and `default: null` restate the field name and "optional", and the class name and
    # docstring restate the tool's description: tokens with no information, paid in every conversation.
    for key in ("title", "description"):
        schema.pop(key, None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        prop.pop("default", None)


class VendorObject(BaseModel):
    """Base of the output models: every field optional and untyped, unknown fields allowed, lean JSON schema."""

    model_config = ConfigDict(extra="allow", json_schema_extra=lean_schema)
