"""Staff login throttle (issue 13, finding 12): failures slow down the *client* that makes them,
never the account for everyone.

Two counters of failed logins, each with an exponential backoff once its free allowance is used:

- per (account name, client address): ``PER_ACCOUNT_CLIENT_FREE`` failures, then a wait of
  ``BASE_DELAY`` doubling with every further failure, at most ``MAX_DELAY``;
- per client address, over every account name: ``PER_CLIENT_FREE`` failures, then the same
  backoff (one address guessing many names).

A failure is counted for whatever name was typed, existing or not, so an unknown name is
throttled exactly like a known one (no enumeration by the throttle's answer). A success clears
its (account, client) counter, not the client's (one valid account must not reset a guessing
client). While a wait runs, the login is refused before any password is checked, for a known
and an unknown name alike (``429 login_throttled`` with ``Retry-After``).

The counters live in the rate limiter's storage (memory for one process, Redis when shared:
``ISOCHECK_RATELIMIT_STORAGE_URL``; production with several workers refuses to start without a
shared one), so every worker sees the same waits. Failures are forgotten ``MEMORY`` after the
first one of a run. Keys carry a digest of the name, not the name.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from limits.storage import MemoryStorage, Storage

log = logging.getLogger("isocheck.login")
T = TypeVar("T")

PER_ACCOUNT_CLIENT_FREE = 5
PER_CLIENT_FREE = 20
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(minutes=15)
MEMORY = timedelta(hours=1)

_PREFIX = "isocheck/login-throttle"
_fallback: MemoryStorage | None = None
#: Where the counters live: the HTTP layer points this at its rate limiter's storage
#: (:func:`server.http.limits.init_app`); ``None`` (limits off, the CLI) → a process-local store.
def _no_shared_storage() -> Storage | None:
    return None


storage_provider: Callable[[], Storage | None] = _no_shared_storage


def _local() -> Storage:
    global _fallback
    if _fallback is None:
        _fallback = MemoryStorage()
    return _fallback


def _on_store(operation: Callable[[Storage], T]) -> T:
    """``operation`` on the shared storage the HTTP layer provides, or on a process-local one
    when rate limits are turned off (a disabled Flask-Limiter has no storage; the throttle stays
    on) or when the shared one fails (a Redis outage must not make every login a 500: the
    backoff is then counted per process until it answers again)."""
    shared = storage_provider()
    if shared is not None:
        try:
            return operation(shared)
        except Exception as exc:  # noqa: BLE001 - whatever the store raises, it is unreachable
            log.warning(
                "login throttle: the shared rate-limit storage failed (%s); counting locally",
                type(exc).__name__,
            )
    return operation(_local())


def backoff(failures: int, free: int) -> int:
    """Seconds to wait after the ``failures``-th failure: 0 within the free allowance, then
    ``BASE_DELAY`` × 2^(failures − free), capped at ``MAX_DELAY``."""
    if failures < free:
        return 0
    step = min(failures - free, 16)  # 2^16 × 30 s is far above the cap already
    return int(min(BASE_DELAY.total_seconds() * 2**step, MAX_DELAY.total_seconds()))


@dataclass(frozen=True)
class LoginThrottle:
    username: str
    client: str

    @property
    def _keys(self) -> tuple[tuple[str, int], tuple[str, int]]:
        name = hashlib.sha256(self.username.encode("utf-8", "surrogatepass")).hexdigest()[:24]
        return (
            (f"{_PREFIX}/ac/{name}/{self.client}", PER_ACCOUNT_CLIENT_FREE),
            (f"{_PREFIX}/c/{self.client}", PER_CLIENT_FREE),
        )

    def wait(self) -> int:
        """Seconds this client must still wait before trying this name (0: go ahead)."""
        return _on_store(self._wait)

    def failed(self) -> int:
        """Count a failure; returns the wait it starts (0 while within the free allowance)."""
        return _on_store(self._failed)

    def succeeded(self) -> None:
        """A right password: forget this (account, client) run; the client's stays."""
        _on_store(self._succeeded)

    def _wait(self, store: Storage) -> int:
        now = time.time()
        waits = [0]
        for key, _free in self._keys:
            if store.get(key + "/wait") > 0:
                waits.append(math.ceil(store.get_expiry(key + "/wait") - now))
        return max(1, max(waits)) if max(waits) > 0 else 0

    def _failed(self, store: Storage) -> int:
        longest = 0
        for key, free in self._keys:
            failures = store.incr(key, int(MEMORY.total_seconds()))
            delay = backoff(failures, free)
            if delay:
                store.clear(key + "/wait")
                store.incr(key + "/wait", delay)
                longest = max(longest, delay)
        return longest

    def _succeeded(self, store: Storage) -> None:
        key, _free = self._keys[0]
        store.clear(key)
        store.clear(key + "/wait")
