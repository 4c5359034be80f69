"""Token-bucket rate limits, in process memory: requests per API token (optional) and
failed authentications per client address.

With several server processes each enforces the limits on its own share of traffic.
"""

from __future__ import annotations

import threading
import time


class RateLimited(Exception):
    """The token has used up its requests for now."""


# Buckets of idle keys are dropped once this many are kept, so memory stays bounded.
_MAX_KEYS = 100_000


class RateLimiter:
    def __init__(self, per_minute: int, what: str = "requests") -> None:
        self.per_minute = per_minute
        self.what = what
        self._rate = per_minute / 60.0
        self._buckets: dict[object, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def _tokens(self, key: object, now: float) -> float:
        tokens, last = self._buckets.get(key, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + (now - last) * self._rate)

    def _refuse(self, tokens: float, whose: str) -> RateLimited:
        wait = (1.0 - tokens) / self._rate
        return RateLimited(
            f"limit of {self.per_minute} {self.what} per minute reached for this {whose}; "
            f"retry in {wait:.1f} s"
        )

    def check(self, key: object, whose: str = "token") -> None:
        """Spend one request of ``key``'s allowance, or refuse if it has none left."""
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens = self._tokens(key, now)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise self._refuse(tokens, whose)
            if len(self._buckets) >= _MAX_KEYS:
                self._buckets.clear()
            self._buckets[key] = (tokens - 1.0, now)

    def ensure_left(self, key: object, whose: str) -> None:
        """Refuse if ``key`` has no allowance left, without spending any."""
        if self.per_minute <= 0:
            return
        with self._lock:
            tokens = self._tokens(key, time.monotonic())
        if tokens < 1.0:
            raise self._refuse(tokens, whose)
