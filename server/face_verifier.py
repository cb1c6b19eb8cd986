"""The server's one verification.Verifier per process (models load once, lazily).

Verification runs in the request (docs/architecture.md): the person needs an answer in seconds.
"""

from __future__ import annotations

import threading
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


#: Face-library codes that mean *we* are broken (a model file failed its checksum), never the
#: photo: answered as 503 service_unavailable and never held against the person.
SERVER_FAULT_CODES = frozenset({"model_invalid"})


def server_fault(exc: Exception) -> bool:
    """True when a VerificationError is the server's fault, not the input's."""
    return getattr(exc, "code", None) in SERVER_FAULT_CODES
