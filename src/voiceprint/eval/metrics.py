"""Verification and identification metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ErrorCurve:
    """False accept / false reject rates at every threshold, thresholds ascending."""

    thresholds: np.ndarray
    far: np.ndarray
    frr: np.ndarray


def error_curve(target: np.ndarray, nontarget: np.ndarray) -> ErrorCurve:
    # Every observed score, plus one above them all (reject everything).
    thresholds = np.append(np.unique(np.concatenate([target, nontarget])), np.inf)
    target, nontarget = np.sort(target), np.sort(nontarget)
    # A trial is accepted when its score >= threshold.
    frr = np.searchsorted(target, thresholds, side="left") / len(target)
    far = 1.0 - np.searchsorted(nontarget, thresholds, side="left") / len(nontarget)
    return ErrorCurve(thresholds, far, frr)


def eer(target: np.ndarray, nontarget: np.ndarray) -> tuple[float, float]:
    """Equal error rate and the threshold where it occurs."""
    curve = error_curve(target, nontarget)
    i = int(np.argmin(np.abs(curve.far - curve.frr)))
    return float((curve.far[i] + curve.frr[i]) / 2), float(curve.thresholds[i])


def min_dcf(
    target: np.ndarray, nontarget: np.ndarray, p_target: float = 0.01, c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> float:  # fmt: skip
    """Minimum normalised detection cost (NIST SRE definition)."""
    curve = error_curve(target, nontarget)
    cost = c_miss * p_target * curve.frr + c_fa * (1 - p_target) * curve.far
    return float(cost.min() / min(c_miss * p_target, c_fa * (1 - p_target)))


def rates_at(target: np.ndarray, nontarget: np.ndarray, threshold: float) -> tuple[float, float]:
    """(false accept rate, false reject rate) when scores >= threshold are accepted."""
    return float(np.mean(nontarget >= threshold)), float(np.mean(target < threshold))


def threshold_for_far(nontarget: np.ndarray, far: float) -> float:
    """The lowest threshold whose false accept rate is at most ``far``."""
    ordered = np.sort(nontarget)[::-1]
    allowed = int(np.floor(far * len(ordered)))
    return float(np.nextafter(ordered[allowed], np.inf)) if allowed < len(ordered) else -np.inf
