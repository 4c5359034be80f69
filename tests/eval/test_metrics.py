from __future__ import annotations

import numpy as np
import pytest

from voiceprint.eval.metrics import eer, min_dcf, rates_at, threshold_for_far


def test_eer_of_separable_and_overlapping_scores() -> None:
    assert eer(np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.2, 0.3]))[0] == 0.0
    target = np.array([0.4, 0.6, 0.7, 0.8, 0.9])
    nontarget = np.array([0.1, 0.2, 0.3, 0.5, 0.65])
    rate, threshold = eer(target, nontarget)
    assert rate == pytest.approx(0.2)
    far, frr = rates_at(target, nontarget, threshold)
    assert far == pytest.approx(0.2) and frr == pytest.approx(0.2)


def test_min_dcf_is_one_for_useless_scores() -> None:
    same = np.full(100, 0.5)
    assert min_dcf(same, same) == pytest.approx(1.0)


def test_threshold_for_far_accepts_at_most_that_share() -> None:
    nontarget = np.arange(1000) / 1000
    threshold = threshold_for_far(nontarget, 0.01)
    assert np.mean(nontarget >= threshold) <= 0.01
    assert np.mean(nontarget >= threshold - 0.002) > 0.01
