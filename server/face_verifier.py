"""The server's one verification.Verifier per process (models load once, lazily).

Verification runs in the request (docs/architecture.md): the person needs an answer in seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from verification import Verifier

_lock = threading.Lock()
_verifier: Verifier | None = None


def get_verifier() -> Verifier:
    """The process's verifier, created on first use (thread-safe)."""
    global _verifier
    if _verifier is None:
        with _lock:
            if _verifier is None:
                from verification import Verifier

                _verifier = Verifier()
    return _verifier


def warm_verifier(*, enabled: bool = True) -> float | None:
    """Load the process's verifier now (model files read and checksummed, every network built:
    OpenVINO compiles them once per process, shared by the worker's threads) and log it; the
    seconds it took, or ``None`` when ``enabled`` is false (``ISOCHECK_WARM_VERIFIER``).

    A damaged model file is logged and left for the requests to answer (503 ``model_invalid``,
    never held against a person): the dashboard and the API keep working without verification.
    """
    log = logging.getLogger("isocheck.verification")
    if not enabled:
        return None
    from verification.errors import VerificationError

    t0 = time.perf_counter()
    try:
        verifier = get_verifier().load()
    except VerificationError as exc:
        log.error("face networks not built at start-up: %s", exc.code)
        return None
    seconds = time.perf_counter() - t0
    log.info(
        "face networks built at start-up in %.2f s (%s)",
        seconds,
        verifier.engine_status()["engine"],
    )
    return seconds


#: Face-library codes that mean *we* are broken (a model file failed its checksum), never the
#: photo: answered as 503 service_unavailable and never held against the person.
SERVER_FAULT_CODES = frozenset({"model_invalid"})


def server_fault(exc: Exception) -> bool:
    """True when a VerificationError is the server's fault, not the input's."""
    return getattr(exc, "code", None) in SERVER_FAULT_CODES
