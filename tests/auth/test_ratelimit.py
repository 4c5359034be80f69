"""Per-token rate limit: a burst up to the limit, then 4013, refilled over time."""

from __future__ import annotations

import time

import pytest

from voiceprint.auth.ratelimit import RateLimited, RateLimiter


def test_burst_then_refusal_then_refill() -> None:
    limiter = RateLimiter(per_minute=120)  # two per second
    for _ in range(120):
        limiter.check(1)
    with pytest.raises(RateLimited, match="120 requests per minute"):
        limiter.check(1)
    limiter.check(2)  # other tokens are not affected
    time.sleep(0.6)  # a little over one request's worth
    limiter.check(1)


def test_zero_means_no_limit() -> None:
    limiter = RateLimiter(per_minute=0)
    for _ in range(10_000):
        limiter.check(1)
