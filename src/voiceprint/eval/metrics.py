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


@dataclass(frozen=True)
class DiarizationScore:
    """Diarization error on 10 ms frames, outside a collar around reference boundaries."""

    scored_s: float
    missed_s: float
    false_alarm_s: float
    confusion_s: float

    @property
    def der(self) -> float:
        return (self.missed_s + self.false_alarm_s + self.confusion_s) / max(self.scored_s, 1e-9)


def diarization_error(
    reference: list[tuple[int, int, str]],
    hypothesis: list[tuple[int, int, str]],
    length: int,
    rate: int = 16000,
    collar_s: float = 0.25,
) -> DiarizationScore:
    """DER with the best one-to-one mapping of hypothesis labels to reference speakers."""
    from scipy.optimize import linear_sum_assignment

    frame = rate // 100
    n = -(-length // frame)
    ref = np.full(n, -1)
    hyp = np.full(n, -1)
    ref_names = list(dict.fromkeys(s for _, _, s in reference))
    hyp_names = list(dict.fromkeys(s for _, _, s in hypothesis))
    for start, end, who in reference:
        ref[start // frame : end // frame] = ref_names.index(who)
    for start, end, who in hypothesis:
        hyp[start // frame : end // frame] = hyp_names.index(who)
    scored = np.ones(n, dtype=bool)
    collar = int(collar_s * 100)
    for start, end, _ in reference:
        for edge in (start // frame, end // frame):
            scored[max(0, edge - collar) : edge + collar] = False
    ref, hyp = ref[scored], hyp[scored]
    overlap = np.zeros((len(ref_names), max(len(hyp_names), 1)))
    both = (ref >= 0) & (hyp >= 0)
    np.add.at(overlap, (ref[both], hyp[both]), 1)
    rows, cols = linear_sum_assignment(-overlap)
    correct = overlap[rows, cols].sum()
    seconds = 0.01
    return DiarizationScore(
        scored_s=float((ref >= 0).sum()) * seconds,
        missed_s=float(((ref >= 0) & (hyp < 0)).sum()) * seconds,
        false_alarm_s=float(((ref < 0) & (hyp >= 0)).sum()) * seconds,
        confusion_s=float(both.sum() - correct) * seconds,
    )
