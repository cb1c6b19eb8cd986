"""Turning pydantic validation errors into a 422 problem that names each failing field."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from server.errors import ApiError

M = TypeVar("M", bound=BaseModel)


def errors_of(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join(str(p) for p in err["loc"]) or None,
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError("validation_error", 422, extra={"errors": errors_of(exc)}) from exc


def json_body(model: type[M]) -> M:
    """Validate the request's JSON body against ``model``; 415/400/422 problems otherwise."""
    if not request.is_json:
        raise ApiError("unsupported_media_type", 415)
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the JSON decoder's recursion limit
        data = None
    if data is None:
        raise ApiError(
            "bad_request", 400, detail={"vi": "JSON không hợp lệ.", "en": "Invalid JSON."}
        )
    return validate(model, data)
