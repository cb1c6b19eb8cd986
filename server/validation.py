"""Turning pydantic validation errors into a 422 problem that names each failing field."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Flask, request
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


#: Characters no text field of ours may hold: PostgreSQL cannot store NUL in text (a 500 there,
#: while SQLite accepted it), and nothing a person types contains it.
FORBIDDEN_CHARACTERS = ("\x00",)


def _bad_field(name: str) -> ApiError:
    return ApiError(
        "validation_error",
        422,
        extra={
            "errors": [{"field": name, "message": "contains a NUL character", "type": "string_nul"}]
        },
    )


def _has_forbidden(value: Any) -> bool:
    # a multipart part can come without a name or value (None): nothing to check there
    return isinstance(value, str) and any(c in value for c in FORBIDDEN_CHARACTERS)


def _check_json(data: Any) -> None:
    """Walk the JSON document without recursion (deep nesting must not overflow here)."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if _has_forbidden(node):
                raise _bad_field(path or None)
        elif isinstance(node, dict):
            for key, value in node.items():
                where = f"{path}.{key}" if path else str(key)
                if _has_forbidden(str(key)):
                    raise _bad_field(where)
                stack.append((where, value))
        elif isinstance(node, list):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(node))


def refuse_forbidden_characters() -> None:
    """Before every request: a NUL byte in the path, the query, a form field or a JSON string
    is a 422 ``validation_error`` problem, for every route at once (issue 13, finding 6)."""
    if _has_forbidden(request.path):
        raise _bad_field("path")
    for name, value in request.args.items(multi=True):
        if _has_forbidden(name) or _has_forbidden(value):
            raise _bad_field(name)
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for name, value in request.form.items(multi=True):
            if _has_forbidden(name) or _has_forbidden(value):
                raise _bad_field(name if isinstance(name, str) else None)
    if request.is_json:
        try:
            data = request.get_json(silent=True)
        except RecursionError:  # nested deeper than the decoder's recursion limit
            raise ApiError(
                "bad_request", 400, detail={"vi": "JSON không hợp lệ.", "en": "Invalid JSON."}
            ) from None
        if data is not None:
            _check_json(data)


def init_app(app: Flask) -> None:
    app.before_request(refuse_forbidden_characters)
