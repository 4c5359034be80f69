"""Fit the score calibration on labelled speech (``voiceprint calibrate``).

The decision threshold (score 50) is the normalised score at which a target
share of different-speaker trials is accepted. The slope comes from a
class-balanced logistic regression of same/different on the normalised score,
so scores move the way the evidence does on either side of the threshold.
"""

from __future__ import annotations

import numpy as np

from voiceprint.eval.metrics import threshold_for_far
from voiceprint.eval.runner import Embedded
from voiceprint.scoring.scorer import Calibration, Scorer, normalize


def logistic_slope(target: np.ndarray, nontarget: np.ndarray, iterations: int = 50) -> float:
    """Slope of a class-balanced logistic regression (Newton's method)."""
    x = np.concatenate([target, nontarget])
    y = np.concatenate([np.ones(len(target)), np.zeros(len(nontarget))])
    w = np.where(y == 1, 0.5 / len(target), 0.5 / len(nontarget))
    params = np.zeros(2)
    design = np.stack([x, np.ones_like(x)], axis=1)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ params)))
        gradient = design.T @ (w * (p - y))
        hessian = (design * (w * p * (1 - p))[:, None]).T @ design + 1e-9 * np.eye(2)
        params -= np.linalg.solve(hessian, gradient)
    return float(params[0])


def calibration_trials(
    embedded: Embedded, scorer: Scorer, speakers: set[tuple[str, str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Same- and different-speaker normalised scores among the given speakers' utterances."""
    rows = [
        (u.speaker, v)
        for u, v in zip(embedded.utterances, embedded.vectors, strict=True)
        if (u.set, u.speaker) in speakers and v is not None
    ]
    labels = np.array([s for s, _ in rows])
    vectors = np.stack([v for _, v in rows])
    matrix = scorer.raw_matrix(vectors, vectors)
    upper = np.triu_indices(len(rows), k=1)
    same = labels[upper[0]] == labels[upper[1]]
    return matrix[upper][same], matrix[upper][~same]


def fit(
    embedded: Embedded,
    cohort: np.ndarray,
    speakers: set[tuple[str, str]],
    *,
    trial_far: float,
    description: str,
    top_k: int = 1000,
) -> Calibration:
    """Domain mean, then threshold and slope, from the given speakers' utterances."""
    mine = np.stack(
        [
            v
            for u, v in zip(embedded.utterances, embedded.vectors, strict=True)
            if (u.set, u.speaker) in speakers and v is not None
        ]
    )
    domain_mean = tuple(float(x) for x in normalize(mine).mean(axis=0))
    unfitted = Calibration(threshold=0.0, slope=1.0, top_k=top_k, domain_mean=domain_mean)
    target, nontarget = calibration_trials(embedded, Scorer(cohort, unfitted), speakers)
    return Calibration(
        threshold=round(threshold_for_far(nontarget, trial_far), 4),
        slope=round(logistic_slope(target, nontarget), 4),
        top_k=top_k,
        domain_mean=domain_mean,
        fitted_on=description,
        speakers=tuple(sorted(f"{set_name}/{speaker}" for set_name, speaker in speakers)),
    )
