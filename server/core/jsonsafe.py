"""Making library values storable as JSON columns and API members."""

from __future__ import annotations

from typing import Any


def json_safe(value: Any) -> Any:
    """A JSON-safe copy: dicts and sequences recursively, numpy scalars as plain numbers, objects
    with ``to_dict()`` (the face library's results) as their dict, anything else as a string."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "to_dict"):
        return json_safe(value.to_dict())
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
