"""Issue 13, finding 7 ("a test that scans the logs of the fault tests"): every fault-injection
test here runs with every log record of the process captured (DEBUG and up), and afterwards the
captured text — messages, arguments and formatted tracebacks — must hold no personal data of
the test world (name, phone, national id, home address, home coordinates) and no unhandled
error (the 500 path of ``server/errors.py``: a fault must be a 503 or a 4xx, never a traceback
behind an ``internal_error``).

Only this process's records are scanned; the gunicorn test's worker logs are its own
(tests/faults/test_recovery.py reads them where it needs to).
"""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from tests.api.contract import HOME, person_payload

#: What personal data of tests/api/contract.py's world looks like in a log line.
_PERSON = person_payload(datetime(2026, 1, 1))
PERSONAL = [
    _PERSON["full_name"],
    _PERSON["phone"],
    _PERSON["national_id"][:7],  # the fixed prefix of every generated national id
    _PERSON["home_address"],
    "12 Nguyễn Văn Nghi",
    str(HOME[0]),
    str(HOME[1]),
]
UNHANDLED = ("unhandled error on", "unhandled database error on")


def _text(record: logging.LogRecord) -> str:
    parts = [record.name, record.getMessage()]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


@pytest.fixture(autouse=True)
def scan_the_logs(caplog):
    caplog.set_level(logging.DEBUG)
    yield
    records = [r for when in ("setup", "call") for r in caplog.get_records(when)]
    texts = [_text(r) for r in records]
    leaked = sorted({p for p in PERSONAL for t in texts if p in t})
    assert leaked == [], f"personal data in the log: {leaked}"
    unhandled = [t.splitlines()[1] for t in texts if any(u in t for u in UNHANDLED)]
    assert unhandled == [], f"an unhandled error (500) in the log: {unhandled}"
    tracebacks = [t.splitlines()[1] for t in texts if "Traceback (most recent call last)" in t]
    assert tracebacks == [], f"a traceback in the log: {tracebacks}"
