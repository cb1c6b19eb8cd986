"""Errors as ``application/problem+json`` (RFC 9457) with a stable ``code``.

Every error a client can see has an entry in :data:`MESSAGES` with a Vietnamese and an English
title and detail; the language follows ``Accept-Language`` (Vietnamese by default). Clients must
branch on ``code``, never on the text.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, json, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from server.core import errors as domain

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
    "invalid_credentials": {
        "vi": ("Sai thông tin đăng nhập", "Tên đăng nhập hoặc mật khẩu không đúng."),
        "en": ("Invalid credentials", "The username or password is wrong."),
    },
    "login_throttled": {
        "vi": (
            "Tạm dừng đăng nhập",
            "Đăng nhập sai quá nhiều lần từ máy này. Vui lòng chờ rồi thử lại.",
        ),
        "en": (
            "Login paused",
            "Too many failed logins from this computer. Please wait and try again.",
        ),
    },
    "invalid_activation_code": {
        "vi": (
            "Mã kích hoạt không hợp lệ",
            "Mã kích hoạt sai, đã dùng hoặc đã hết hạn. Liên hệ trạm y tế để nhận mã mới.",
        ),
        "en": (
            "Invalid activation code",
            "The code is wrong, used or expired. Ask your ward health station for a new one.",
        ),
    },
    "isolation_ended": {
        "vi": ("Đã kết thúc cách ly", "Thời gian cách ly tại nhà của bạn đã kết thúc."),
        "en": ("Isolation ended", "Your home isolation has ended."),
    },
    "person_exists": {
        "vi": ("Người này đã được đăng ký", "Số CMND/CCCD này đã có trong hệ thống."),
        "en": ("Already enrolled", "A person with this national ID is already enrolled."),
    },
    "area_not_found": {
        "vi": (
            "Không tìm thấy phường/xã",
            "Mã phường/xã không tồn tại hoặc ngoài phạm vi của bạn.",
        ),
        "en": ("Ward not found", "The ward code does not exist or is outside your area."),
    },
    "enrolment_photo_limit": {
        "vi": ("Đã đủ ảnh đăng ký", "Mỗi người có tối đa 3 ảnh đăng ký khuôn mặt."),
        "en": ("Enough enrolment photos", "A person has at most 3 enrolment photos."),
    },
    "invalid_nonce": {
        "vi": (
            "Yêu cầu điểm danh không hợp lệ",
            "Yêu cầu điểm danh này không tồn tại. Hãy mở lại ứng dụng để nhận yêu cầu mới nhất.",
        ),
        "en": (
            "Unknown check-in prompt",
            "This check-in prompt does not exist. Reopen the app to get the current one.",
        ),
    },
    "window_not_open": {
        "vi": ("Chưa đến giờ điểm danh", "Chưa đến thời gian phản hồi của yêu cầu này."),
        "en": ("Too early", "The response window of this prompt has not opened yet."),
    },
    "window_closed": {
        "vi": ("Đã hết thời gian điểm danh", "Thời gian phản hồi của yêu cầu này đã kết thúc."),
        "en": ("Window closed", "The response window of this prompt has closed."),
    },
    "already_checked_in": {
        "vi": ("Đã điểm danh", "Bạn đã điểm danh thành công cho yêu cầu này."),
        "en": ("Already checked in", "You have already checked in for this prompt."),
    },
    "attempts_exhausted": {
        "vi": (
            "Hết lượt điểm danh",
            "Bạn đã dùng hết số lần thử. Trạm y tế đã được thông báo và sẽ liên hệ với bạn.",
        ),
        "en": (
            "No attempts left",
            "You have used all attempts. Your ward health station has been told and will call.",
        ),
    },
    "outside_home": {
        "vi": (
            "Bạn đang ở ngoài nơi cách ly",
            "Vị trí của bạn nằm ngoài khu vực nhà đã đăng ký. Trạm y tế đã được thông báo.",
        ),
        "en": (
            "Outside your home",
            "Your location is outside your registered home. The health station has been told.",
        ),
    },
    "no_templates": {
        "vi": (
            "Chưa có ảnh đăng ký khuôn mặt",
            "Ảnh của bạn đã được nhận và sẽ được cán bộ kiểm tra.",
        ),
        "en": (
            "No enrolment photo yet",
            "Your photo was received and will be checked by staff.",
        ),
    },
    "checkin_in_progress": {
        "vi": (
            "Ảnh đang được xử lý",
            "Ảnh điểm danh trước của bạn đang được kiểm tra. Vui lòng đợi vài giây.",
        ),
        "en": (
            "Check-in in progress",
            "Your previous upload is still being checked. Please wait a few seconds.",
        ),
    },
    "request_headers_too_large": {
        "vi": ("Phần đầu yêu cầu quá lớn", "Phần đầu (header) của yêu cầu vượt quá giới hạn."),
        "en": ("Request headers too large", "The request headers are larger than allowed."),
    },
    "not_implemented": {
        "vi": ("Chưa được hỗ trợ", "Máy chủ không hỗ trợ cách gửi yêu cầu này."),
        "en": ("Not implemented", "The server does not support this way of sending a request."),
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
    431: "request_headers_too_large",
    500: "internal_error",
    501: "not_implemented",
    502: "service_unavailable",
    503: "service_unavailable",
    504: "service_unavailable",
}


def code_for_status(status: int) -> str:
    """The stable code of an HTTP status that no handler named (any layer: app, server, proxy)."""
    return HTTP_STATUS_CODES.get(status, "bad_request" if status < 500 else "internal_error")


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


#: Domain error kind -> HTTP status (the most specific class in an error's MRO wins).
DOMAIN_STATUS: dict[type[domain.DomainError], int] = {
    domain.InvalidRequest: 400,
    domain.InvalidFields: 422,
    domain.NotAuthenticated: 401,
    domain.NotAllowed: 403,
    domain.Conflict: 409,
    domain.Throttled: 429,
    domain.Unavailable: 503,
    domain.DomainError: 400,
}


def status_of(error: domain.DomainError) -> int:
    """The HTTP status a domain error becomes."""
    for cls in type(error).__mro__:
        if cls in DOMAIN_STATUS:
            return DOMAIN_STATUS[cls]
    return 400


def domain_problem(error: domain.DomainError) -> Response:
    """The problem+json answer of a domain error, in the request's language."""
    extra = dict(error.extra)
    if error.fields:
        lang = request_language()
        extra["errors"] = [f.render(lang) for f in error.fields]
    headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s else {}
    return problem(error.code, status_of(error), extra=extra, headers=headers)


#: Path prefix → renderer of the same error in another format (``/fhir/`` answers
#: OperationOutcome): ``renderer(code, status, title, detail, lang, extra) -> Response``.
RENDERERS: dict[str, Callable[..., Response]] = {}


def register_renderer(prefix: str, renderer: Callable[..., Response]) -> None:
    """Errors under ``prefix`` (routing 404/405 too) are rendered by ``renderer``."""
    RENDERERS[prefix] = renderer


def _renderer() -> Callable[..., Response] | None:
    try:
        path = request.path
    except RuntimeError:  # outside a request
        return None
    for prefix, renderer in RENDERERS.items():
        if path.startswith(prefix):
            return renderer
    return None


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


def language_of(accept_language: str | None) -> str:
    """:func:`request_language` for a raw ``Accept-Language`` value (outside Flask)."""
    from werkzeug.datastructures import LanguageAccept
    from werkzeug.http import parse_accept_header

    accept = parse_accept_header(accept_language or "", LanguageAccept)
    return accept.best_match(LANGUAGES, default="vi") or "vi"


def message(code: str, lang: str | None = None) -> tuple[str, str]:
    lang = lang or request_language()
    texts = MESSAGES.get(code) or MESSAGES["internal_error"]
    return texts.get(lang) or texts["vi"]


def problem_body(
    code: str,
    status: int,
    lang: str,
    *,
    detail: dict[str, str] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """The problem object itself, for layers outside Flask too (the HTTP server)."""
    title, default_detail = message(code, lang)
    body: dict[str, Any] = {
        "type": f"https://isocheck.invalid/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": (detail or {}).get(lang) or default_detail,
    }
    if instance is not None:
        body["instance"] = instance
    return body


def problem(
    code: str,
    status: int,
    *,
    detail: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    lang = request_language()
    renderer = _renderer()
    if renderer is not None:
        title, default_detail = message(code, lang)
        response = renderer(
            code, status, title, (detail or {}).get(lang) or default_detail, lang, extra or {}
        )
        response.headers["Content-Language"] = lang
        response.headers.update(headers or {})
        return response
    instance = None
    with contextlib.suppress(RuntimeError):
        instance = request.path
    body = problem_body(code, status, lang, detail=detail, instance=instance)
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

    @app.errorhandler(domain.DomainError)
    def _domain_error(error: domain.DomainError) -> Response:
        return domain_problem(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        if isinstance(error.response, Response):  # already a problem (e.g. the rate limiter's)
            return error.response
        status = error.code or 500
        code = code_for_status(status)
        headers = {}
        extra = {}
        if status == 413 and app.config.get("MAX_CONTENT_LENGTH"):
            extra["max_bytes"] = app.config["MAX_CONTENT_LENGTH"]
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        if status == 429 and getattr(error, "retry_after", None):
            headers["Retry-After"] = str(error.retry_after)  # type: ignore[attr-defined]
        return problem(code, status, headers=headers, extra=extra)

    @app.errorhandler(OperationalError)
    def _database_unavailable(error: OperationalError) -> Response:
        # The database is restarting, failing over or unreachable: transient, and not the
        # client's fault. 503 + Retry-After lets phones resend (with their Idempotency-Key).
        app.logger.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.path,
            type(getattr(error, "orig", None) or error).__name__,
        )
        return problem("service_unavailable", 503, headers={"Retry-After": "5"})

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if isinstance(error, DBAPIError):
            # The driver's message quotes values (PostgreSQL's DETAIL: "Key (national_id)=(…)"),
            # and the statement's parameters are personal data: log the kind of failure and
            # where it happened, never the message (issue 13, finding 7).
            orig = getattr(error, "orig", None)
            app.logger.error(
                "unhandled database error on %s %s: %s (sqlstate %s)\n%s",
                request.method,
                request.path,
                f"{type(error).__name__} ({type(orig).__name__})" if orig else type(error).__name__,
                getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "-",
                "".join(traceback.format_tb(error.__traceback__)),
            )
            return problem("internal_error", 500)
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return problem("internal_error", 500)
