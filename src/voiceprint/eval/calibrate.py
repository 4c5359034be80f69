"""Fit the score calibration on labelled speech (``voiceprint calibrate``).

The decision threshold (score 50) is the normalised score at which a target
share of different-speaker trials is accepted, taken in each fitting set apart
and the highest kept: impostors of one language and channel score alike, so a
threshold that holds in each domain seen holds best in one not seen. The slope
comes from a class-balanced logistic regression of same/different on the
normalised score of all fitting trials. Narrow-band (telephone) speech gets its
own curves, fitted the same way on the same speakers passed through an 8 kHz
line: one for narrow-band against narrow-band, one for narrow-band against
wide-band recordings.
"""

from __future__ import annotations

import numpy as np

from voiceprint.eval.metrics import threshold_for_far
from voiceprint.eval.runner import Embedded
from voiceprint.scoring.scorer import Calibration, Curve, Scorer, normalize


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
    probes: Embedded, enrolled: Embedded, scorer: Scorer, speakers: set[tuple[str, str]]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per set: same- and different-speaker normalised scores among the given speakers.

    ``probes`` and ``enrolled`` hold the same utterances, maybe in two conditions;
    every pair of two different utterances is a trial.
    """
    trials = {}
    for set_name in sorted({s for s, _ in speakers}):
        rows = [
            (u.speaker, p, e)
            for u, p, e in zip(probes.utterances, probes.vectors, enrolled.vectors, strict=True)
            if u.set == set_name
            and (u.set, u.speaker) in speakers
            and p is not None
            and e is not None
        ]
        labels = np.array([s for s, _, _ in rows])
        matrix = scorer.raw_matrix(
            np.stack([p for _, p, _ in rows]), np.stack([e for _, _, e in rows])
        )
        upper = np.triu_indices(len(rows), k=1)
        same = labels[upper[0]] == labels[upper[1]]
        trials[set_name] = (matrix[upper][same], matrix[upper][~same])
    return trials


def fit_curve(
    probes: Embedded,
    enrolled: Embedded,
    scorer: Scorer,
    speakers: set[tuple[str, str]],
    trial_far: float,
) -> Curve:
    """The highest per-set threshold at ``trial_far``, and the slope over all trials."""
    trials = calibration_trials(probes, enrolled, scorer, speakers)
    threshold = max(threshold_for_far(nontarget, trial_far) for _, nontarget in trials.values())
    target = np.concatenate([t for t, _ in trials.values()])
    nontarget = np.concatenate([n for _, n in trials.values()])
    return Curve(round(threshold, 4), round(logistic_slope(target, nontarget), 4))


def fit(
    embedded: Embedded,
    cohort: np.ndarray | None,
    speakers: set[tuple[str, str]],
    *,
    trial_far: float,
    description: str,
    method: str = "cosine",
    centre: bool = False,
    narrowband: Embedded | None = None,
    top_k: int = 1000,
) -> Calibration:
    """Domain mean (if ``centre``), then the curves, from the given speakers' utterances."""
    domain_mean: tuple[float, ...] = ()
    if centre:
        mine = np.stack(
            [
                v
                for u, v in zip(embedded.utterances, embedded.vectors, strict=True)
                if (u.set, u.speaker) in speakers and v is not None
            ]
        )
        domain_mean = tuple(float(x) for x in normalize(mine).mean(axis=0))
    unfitted = Calibration(
        threshold=0.0, slope=1.0, method=method, top_k=top_k, domain_mean=domain_mean
    )
    scorer = Scorer(cohort, unfitted)
    wide = fit_curve(embedded, embedded, scorer, speakers, trial_far)
    narrow = mixed = None
    if narrowband:
        narrow = fit_curve(narrowband, narrowband, scorer, speakers, trial_far)
        mixed = fit_curve(narrowband, embedded, scorer, speakers, trial_far)
    return Calibration(
        threshold=wide.threshold,
        slope=wide.slope,
        method=method,
        top_k=top_k,
        domain_mean=domain_mean,
        fitted_on=description,
        speakers=tuple(sorted(f"{set_name}/{speaker}" for set_name, speaker in speakers)),
        narrowband=narrow,
        mixed=mixed,
    )
