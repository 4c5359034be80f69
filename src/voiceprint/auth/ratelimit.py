"""Per-token request rate limit (optional): a token bucket per API token, in process memory.

With several server processes each enforces the limit on its own share of traffic.
"""

from __future__ import annotations

import threading
import time


class RateLimited(Exception):
    """The token has used up its requests for now."""


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._buckets: dict[int, tuple[float, float]] = {}  # token id -> (tokens, last time)
        self._lock = threading.Lock()

    def check(self, token_id: int) -> None:
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(token_id, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * self._rate)
            if tokens < 1.0:
                self._buckets[token_id] = (tokens, now)
                wait = (1.0 - tokens) / self._rate
                raise RateLimited(
                    f"rate limit of {self.per_minute} requests per minute reached for this "
                    f"token; retry in {wait:.1f} s"
                )
            self._buckets[token_id] = (tokens - 1.0, now)
