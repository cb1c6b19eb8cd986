"""Errors as ``application/problem+json`` (RFC 9457) with a stable ``code``.

Every error a client can see has an entry in :data:`MESSAGES` with a Vietnamese and an English
title and detail; the language follows ``Accept-Language`` (Vietnamese by default). Clients must
branch on ``code``, never on the text.
"""

from __future__ import annotations

import contextlib
from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
LANGUAGES = ("vi", "en")

#: code -> language -> (title, detail).
MESSAGES: dict[str, dict[str, tuple[str, str]]] = {
    "not_found": {
        "vi": ("Không tìm thấy", "Không tìm thấy tài nguyên được yêu cầu."),
        "en": ("Not found", "The requested resource does not exist."),
    },
    "method_not_allowed": {
        "vi": (
            "Phương thức không được hỗ trợ",
            "Địa chỉ này không hỗ trợ phương thức HTTP đã dùng.",
        ),
        "en": ("Method not allowed", "This address does not support the HTTP method used."),
    },
    "request_too_large": {
        "vi": ("Dữ liệu gửi lên quá lớn", "Dung lượng yêu cầu vượt quá giới hạn cho phép."),
        "en": ("Request too large", "The request body is larger than allowed."),
    },
    "bad_request": {
        "vi": ("Yêu cầu không hợp lệ", "Máy chủ không hiểu được yêu cầu."),
        "en": ("Bad request", "The server could not understand the request."),
    },
    "validation_error": {
        "vi": ("Dữ liệu không hợp lệ", "Một hoặc nhiều trường dữ liệu không hợp lệ."),
        "en": ("Invalid data", "One or more fields are invalid."),
    },
    "unauthorized": {
        "vi": ("Chưa xác thực", "Cần đăng nhập hoặc mã truy cập hợp lệ."),
        "en": ("Not authenticated", "A valid login or access token is required."),
    },
    "forbidden": {
        "vi": ("Không có quyền", "Bạn không có quyền thực hiện thao tác này."),
        "en": ("Forbidden", "You are not allowed to do this."),
    },
    "unsupported_media_type": {
        "vi": ("Định dạng không được hỗ trợ", "Kiểu nội dung của yêu cầu không được hỗ trợ."),
        "en": ("Unsupported media type", "The request's content type is not supported."),
    },
    "rate_limited": {
        "vi": ("Quá nhiều yêu cầu", "Bạn đã gửi quá nhiều yêu cầu. Vui lòng thử lại sau."),
        "en": ("Too many requests", "Too many requests. Please try again later."),
    },
    "service_unavailable": {
        "vi": ("Dịch vụ tạm thời gián đoạn", "Hệ thống đang bận. Vui lòng thử lại sau ít phút."),
        "en": ("Service unavailable", "The service is busy. Please try again in a few minutes."),
    },
    "internal_error": {
        "vi": ("Lỗi hệ thống", "Đã xảy ra lỗi không mong muốn. Sự cố đã được ghi lại."),
        "en": ("Internal error", "An unexpected error occurred. It has been logged."),
    },
}

#: Stable codes for the HTTP errors Werkzeug raises itself.
HTTP_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error with a stable ``code`` that becomes a problem+json response.

    ``detail`` overrides the catalogue's detail (both languages: ``{"vi": ..., "en": ...}``);
    ``extra`` adds members to the problem object (e.g. ``errors``, ``attempts_left``).
    """

    def __init__(
        self,
        code: str,
        status: int = 400,
        *,
        detail: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers or {}


def register_messages(messages: dict[str, dict[str, tuple[str, str]]]) -> None:
    """Let another module (e.g. the verification codes) add its codes to the catalogue."""
    for code, texts in messages.items():
        MESSAGES.setdefault(code, texts)


def request_language() -> str:
    """``vi`` unless the client prefers English (``Accept-Language``)."""
    try:
        return request.accept_languages.best_match(LANGUAGES, default="vi") or "vi"
    except RuntimeError:  # outside a request
        return "vi"


def message(code: str, lang: str | None = None) -> tuple[str, str]:
    lang = lang or request_language()
    texts = MESSAGES.get(code) or MESSAGES["internal_error"]
    return texts.get(lang) or texts["vi"]


def problem(
    code: str,
    status: int,
    *,
    detail: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    lang = request_language()
    title, default_detail = message(code, lang)
    body: dict[str, Any] = {
        "type": f"https://isocheck.invalid/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": (detail or {}).get(lang) or default_detail,
    }
    with contextlib.suppress(RuntimeError):
        body["instance"] = request.path
    body.update(extra or {})
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_JSON)
    response.headers["Content-Language"] = lang
    response.headers.update(headers or {})
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return problem(
            error.code, error.status, detail=error.detail, extra=error.extra, headers=error.headers
        )

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = HTTP_STATUS_CODES.get(status, "bad_request" if status < 500 else "internal_error")
        headers = {}
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        if status == 429 and getattr(error, "retry_after", None):
            headers["Retry-After"] = str(error.retry_after)  # type: ignore[attr-defined]
        return problem(code, status, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return problem("internal_error", 500)
