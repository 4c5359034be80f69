"""The calibration's tail model: where a share of strangers lies, and the bar for N voiceprints."""

from __future__ import annotations

import numpy as np
import pytest

from voiceprint.eval.calibrate import LARGEST_GROUP, Tail, fit_curve


def _exponential_scores(n: int, scale: float, seed: int = 0) -> np.ndarray:
    """Scores whose upper tail is exactly exponential: P(score >= s) = exp(-s / scale)."""
    return np.random.default_rng(seed).exponential(scale, n)


def test_the_tail_line_finds_the_score_a_share_of_strangers_reaches() -> None:
    scores = _exponential_scores(200_000, scale=0.05)
    tail = Tail.fit(scores)
    for far in (1e-2, 1e-3, 1e-5):  # 1e-5 lies beyond the fitted range: extrapolated
        assert tail.score_at(far) == pytest.approx(-0.05 * np.log(far), rel=0.05)


def test_the_bar_rises_with_the_group_as_the_hardest_set_says() -> None:
    easy, hard = _exponential_scores(100_000, 0.04), _exponential_scores(100_000, 0.06, seed=1)
    target = np.full(100, 0.8)
    curve = fit_curve({"easy": (target, easy), "hard": (target, hard)}, decision_far=0.003)
    assert curve.bar(1) == pytest.approx(-0.06 * np.log(0.003), rel=0.05)
    # N voiceprints: the score one stranger in N reaches at 0.3 % / N.
    expected = -0.06 * np.log(0.003 / LARGEST_GROUP)
    assert curve.bar(LARGEST_GROUP) == pytest.approx(expected, rel=0.05)
    assert curve.slope > 0


def test_too_few_strangers_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="too few"):
        Tail.fit(np.linspace(0, 1, 50))
