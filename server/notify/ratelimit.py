"""Token buckets: at most ``rate`` messages per second per channel, in bursts of up to one second.

The buckets live in the scheduler process, so N scheduler processes together send up to N times
the rate (a shared counter, e.g. in Redis, is the growth path; see docs/notifications.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Tokens a bucket may be short and still count as full enough (floating-point refills).
EPSILON = 1e-9


class TokenBucket:
    """``rate`` tokens per second, holding at most ``capacity`` (default: one second's worth, at
    least 1). :meth:`acquire` waits (sleeps) until the tokens are there."""

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, capacity if capacity is not None else rate)
        self._monotonic, self._sleep = monotonic, sleep
        self._tokens = self.capacity
        self._stamp = monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self, n: int = 1) -> float:
        """Take ``n`` tokens (``n`` ≤ capacity), sleeping as long as needed; returns the seconds
        slept."""
        if n > self.capacity:
            raise ValueError(f"cannot take {n} tokens from a bucket of {self.capacity}")
        slept = 0.0
        while True:
            with self._lock:
                self._refill()
                if self._tokens >= n - EPSILON:  # float refills may land a hair short
                    self._tokens = max(0.0, self._tokens - n)
                    return slept
                wait = (n - self._tokens) / self.rate
            self._sleep(wait)
            slept += wait
