"""Turning pydantic validation errors into a 422 problem that names each failing field."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Flask, request
from pydantic import BaseModel, ValidationError

from server.core.errors import FieldProblem
from server.http.problem import ApiError, request_language

M = TypeVar("M", bound=BaseModel)


#: pydantic error type -> Vietnamese message (``{…}`` from the error's context). English keeps
#: pydantic's own text; a type not listed here reads "Giá trị không hợp lệ." in Vietnamese.
VI_MESSAGES: dict[str, str] = {
    "missing": "Thiếu trường bắt buộc.",
    "extra_forbidden": "Trường này không được phép.",
    "greater_than_equal": "Giá trị phải lớn hơn hoặc bằng {ge}.",
    "greater_than": "Giá trị phải lớn hơn {gt}.",
    "less_than_equal": "Giá trị phải nhỏ hơn hoặc bằng {le}.",
    "less_than": "Giá trị phải nhỏ hơn {lt}.",
    "string_too_short": "Cần ít nhất {min_length} ký tự.",
    "string_too_long": "Tối đa {max_length} ký tự.",
    "too_short": "Cần ít nhất {min_length} phần tử.",
    "too_long": "Tối đa {max_length} phần tử.",
    "string_pattern_mismatch": "Sai định dạng.",
    "enum": "Giá trị không nằm trong danh sách cho phép.",
    "literal_error": "Giá trị không nằm trong danh sách cho phép.",
    "int_parsing": "Cần một số nguyên.",
    "int_type": "Cần một số nguyên.",
    "int_from_float": "Cần một số nguyên.",
    "float_parsing": "Cần một số.",
    "float_type": "Cần một số.",
    "finite_number": "Cần một số hữu hạn.",
    "bool_parsing": "Cần giá trị đúng/sai (true/false).",
    "bool_type": "Cần giá trị đúng/sai (true/false).",
    "string_type": "Cần một chuỗi ký tự.",
    "list_type": "Cần một danh sách.",
    "dict_type": "Cần một đối tượng JSON.",
    "model_type": "Cần một đối tượng JSON.",
    "model_attributes_type": "Cần một đối tượng JSON.",
    "datetime_parsing": "Cần ngày giờ dạng ISO 8601, ví dụ 2026-11-24T08:30:00+07:00.",
    "datetime_from_date_parsing": (
        "Cần ngày giờ dạng ISO 8601, ví dụ 2026-11-24T08:30:00+07:00."
    ),
    "datetime_type": "Cần ngày giờ dạng ISO 8601, ví dụ 2026-11-24T08:30:00+07:00.",
    "timezone_aware": "Ngày giờ phải có múi giờ, ví dụ +07:00.",
    "date_parsing": "Cần ngày dạng YYYY-MM-DD.",
    "date_from_datetime_parsing": "Cần ngày dạng YYYY-MM-DD.",
    "date_type": "Cần ngày dạng YYYY-MM-DD.",
    "time_parsing": "Cần giờ dạng HH:MM.",
    "time_type": "Cần giờ dạng HH:MM.",
    "json_invalid": "JSON không hợp lệ.",
    "uuid_parsing": "Cần một UUID.",
}


def field_error(field: str | None, key: str, **params: Any) -> dict[str, Any]:
    """One ``errors[]`` entry in the request's language (the catalogue of keys is
    :data:`server.core.errors.FIELD_MESSAGES`)."""
    return FieldProblem(field, key, params).render(request_language())


def _message(err: dict[str, Any], lang: str) -> str:
    if lang == "en":
        return err["msg"]
    template = VI_MESSAGES.get(err["type"], "Giá trị không hợp lệ.")
    try:
        return template.format(**(err.get("ctx") or {}))
    except (KeyError, IndexError, ValueError):
        return "Giá trị không hợp lệ."


def errors_of(exc: ValidationError, lang: str | None = None) -> list[dict[str, Any]]:
    """Each failing field with a message in ``lang`` (default: the request's language)."""
    lang = lang or request_language()
    return [
        {
            "field": ".".join(str(p) for p in err["loc"]) or None,
            "message": _message(err, lang),
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False)
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
