"""The calibration's tail model: where a share of strangers lies, and the bar for N voiceprints."""

from __future__ import annotations

import numpy as np
import pytest

from voiceprint.eval.calibrate import (
    LARGEST_GROUP,
    Tail,
    Voice,
    cohort_of,
    cohort_speakers,
    fit_curve,
    shared_line_bar,
    trials,
)
from voiceprint.scoring.scorer import Calibration, Scorer, mutual_alike, normalize


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


def test_a_fitting_speaker_is_shifted_by_the_cohort_less_their_own_voice() -> None:
    # Geometry only (no claim about speech): speaker a's two recordings lie close to a's
    # cohort voice; left in, that voice would be a's closest impostor.
    rng = np.random.default_rng(0)
    base = normalize(rng.normal(size=(3, 16)))
    recordings = [
        Voice("x", who, f"{who}{i}", normalize(base[n] + 0.1 * rng.normal(size=16)), False)
        for n, who in enumerate("abc")
        for i in range(2)
    ]
    cohort = cohort_of(recordings)
    scorer = Scorer(
        cohort, Calibration(threshold=0.0, slope=1.0, method="shift", top_k=1, shift=1.0)
    )
    mine = recordings[:2] + recordings[4:]  # a's and c's
    target, nontarget = trials(mine, mine, scorer, cohort_speakers(recordings))
    vectors = np.stack([r.vector for r in mine])
    closest_other = [
        max(
            v @ cohort[j]
            for j, (_, who) in enumerate(cohort_speakers(recordings))
            if who != r.speaker
        )
        for v, r in zip(vectors, mine, strict=True)
    ]
    expected_a = vectors[0] @ vectors[1] - 0.5 * (closest_other[0] + closest_other[1])
    assert target[0] == pytest.approx(expected_a, abs=1e-5)
    assert len(nontarget) == 4


def test_theshared_line_bar_lies_between_one_lines_callers_and_speech_only_resampled() -> None:
    # Geometry only (no claim about speech): the callers share a line's direction, so any
    # two of them are about 0.5 alike; the resampled speakers share nothing.
    rng = np.random.default_rng(0)
    line = normalize(rng.normal(size=64))

    def speaker(shared: float) -> np.ndarray:
        own = normalize(rng.normal(size=64))
        return normalize(np.sqrt(shared) * line + np.sqrt(1 - shared) * own)

    calls = [Voice("telephone", f"c{i}", f"c{i}", speaker(0.5), True) for i in range(20)]
    resampled = [Voice("x", f"r{i}", f"r{i}", speaker(0.0), True) for i in range(20)]
    bar = shared_line_bar(calls, resampled)
    callers = normalize(np.stack([c.vector for c in calls]))
    speakers = normalize(np.stack([r.vector for r in resampled]))
    assert mutual_alike(speakers) < bar < mutual_alike(callers)
    assert 0.15 < bar < 0.45
