"""How the FHIR API answers: ``application/fhir+json`` responses, every error as an
``OperationOutcome`` carrying the same stable ``code`` and Vietnamese/English text as the
problem+json errors elsewhere (registered as the renderer of everything under ``/fhir/``), and
the FHIR-only error codes' messages."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome
from flask import Response

from server.fhir import mapping
from server.http import problem as errors

FHIR_JSON = "application/fhir+json"
PROBLEM_SYSTEM = f"{mapping.BASE}/CodeSystem/problem"

#: Our problem codes → the OperationOutcome issue type (http://hl7.org/fhir/issue-type).
ISSUE_TYPES = {
    "not_found": "not-found",
    "unauthorized": "login",
    "forbidden": "forbidden",
    "method_not_allowed": "not-supported",
    "unsupported_media_type": "not-supported",
    "request_too_large": "too-long",
    "rate_limited": "throttled",
    "service_unavailable": "transient",
    "internal_error": "exception",
    "export_failed": "exception",
}

errors.register_messages(
    {
        "fhir_invalid_search": {
            "vi": ("Tham số tìm kiếm không hợp lệ", "Một tham số tìm kiếm FHIR không hợp lệ."),
            "en": ("Invalid search parameter", "A FHIR search parameter is not valid."),
        },
        "fhir_respond_async_required": {
            "vi": (
                "Cần xử lý bất đồng bộ",
                "Yêu cầu $export phải có tiêu đề Prefer: respond-async.",
            ),
            "en": (
                "Asynchronous request required",
                "An $export request needs the header Prefer: respond-async.",
            ),
        },
        "export_failed": {
            "vi": ("Xuất dữ liệu thất bại", "Quá trình xuất dữ liệu FHIR bị lỗi. Hãy thử lại."),
            "en": ("Export failed", "The FHIR export failed. Please start it again."),
        },
    }
)


def operation_outcome(
    code: str, status: int, title: str, detail: str, lang: str, extra: dict[str, Any]
) -> Response:
    """The renderer of every error under ``/fhir/``: an OperationOutcome, same code and text."""
    issues = [
        {
            "severity": "error" if status < 500 else "fatal",
            "code": ISSUE_TYPES.get(code, "invalid"),
            "details": {
                "coding": [{"system": PROBLEM_SYSTEM, "code": code, "display": title}],
                "text": detail,
            },
        }
    ]
    for item in extra.get("errors") or []:
        if isinstance(item, dict):
            issues.append(
                {
                    "severity": "error",
                    "code": "invalid",
                    "details": {"text": str(item.get("message", ""))},
                    "expression": [str(item.get("field", ""))] if item.get("field") else None,
                }
            )
    outcome = OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": issues})
    return fhir_response(outcome, status)


errors.register_renderer("/fhir/", operation_outcome)


def fhir_response(resource: Any, status: int = 200, headers: dict[str, str] | None = None):
    body = resource if isinstance(resource, str) else resource.model_dump_json(exclude_none=True)
    response = Response(body, status=status, mimetype=FHIR_JSON)
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers or {})
    return response


def accepted(text: str, headers: dict[str, str] | None = None) -> Response:
    """202 with an informational OperationOutcome (Bulk Data allows one as the body)."""
    outcome = OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
        }
    )
    return fhir_response(outcome, 202, headers)
