"""Fit the score calibration on labelled speech (``voiceprint calibrate``).

Four conditions get a curve each: wide-band against wide-band; narrow-band
against narrow-band, from the wide-band fitting speakers resampled to 8 kHz
(``narrowband``); real phone calls against each other, from the fitting
recordings that are narrow-band as recorded (the ``telephone`` set's callers);
and narrow against wide (the resampled version of a recording against the
others as recorded). Real calls and resampled speech are told apart by the
direction from the mean embedding of the one to that of the other.

The bar (score 50) is set for a decision, not a pair: a stranger probing a
group of N voiceprints passes if any one of N scores reaches it. In each set
the tail of the different-speaker scores is fitted as a straight line of
log10(false accepts) against the score; the bar for N voiceprints is where that
line reaches ``decision_far / N``. The highest bar of the sets is kept (impostors
of one language and channel score alike, so a bar that holds in each domain
seen holds best in one not seen). The slope comes from a class-balanced
logistic regression of same/different on the normalised score of all trials.

With AS-norm the packaged cohort is the fitting speakers' and the cohort
speakers' voices (one mean embedding per speaker and condition); with the
shift, which touches wide-band pairs only, their wide-band voices. Fitting
trials must not meet their own speaker in the cohort: for AS-norm the fitting
speakers are dealt into two halves and each half is scored against a cohort
holding the other; for the shift each recording's cohort level leaves its own
speaker's voice out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from voiceprint.eval.runner import Embedded
from voiceprint.scoring.scorer import (
    SHARED_LINE_VOICES,
    Calibration,
    Curve,
    Gallery,
    Scorer,
    Voices,
    mutual_alike,
    normalize,
)

# The tail of the different-speaker scores that the line is fitted to: between
# these shares of trials accepted (below it, too few trials to see a slope).
TAIL_FROM = 1e-2
TAIL_TO = 3e-4
# Groups drawn from the fitting speakers to fit how alike voices on one phone line are.
SHARED_LINE_DRAWS = 200
# The largest group the bar is worked out for; beyond it the line is extrapolated.
LARGEST_GROUP = 1000


@dataclass(frozen=True)
class Voice:
    """One embedded recording of a labelled speaker, as a trial side."""

    set: str
    speaker: str
    recording: str  # the utterance's key: its two versions (as recorded, line) share it
    vector: np.ndarray
    narrowband: bool

    @property
    def who(self) -> tuple[str, str]:
        return self.set, self.speaker

    @property
    def voice(self) -> tuple[str, str, bool]:
        """A cohort row's key: the speaker in one condition."""
        return self.set, self.speaker, self.narrowband


def voices(embedded: Embedded, speakers: set[tuple[str, str]] | None = None) -> list[Voice]:
    """The accepted recordings of ``speakers`` (all when None)."""
    return [
        Voice(u.set, u.speaker, u.key, v, nb)
        for u, v, nb in zip(embedded.utterances, embedded.vectors, embedded.narrowband, strict=True)
        if v is not None and (speakers is None or (u.set, u.speaker) in speakers)
    ]


def cohort_of(recordings: Iterable[Voice]) -> np.ndarray:
    """One normalised mean embedding per speaker and condition."""
    by_voice: dict[tuple[str, str, bool], list[np.ndarray]] = {}
    for r in recordings:
        by_voice.setdefault(r.voice, []).append(r.vector)
    keys = sorted(by_voice)
    return normalize(np.stack([normalize(np.stack(by_voice[k])).mean(axis=0) for k in keys]))


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


@dataclass(frozen=True)
class Tail:
    """log10(share of different-speaker trials at or above a score) = intercept + slope * score."""

    intercept: float
    slope: float

    @classmethod
    def fit(cls, nontarget: np.ndarray) -> Tail:
        ordered = np.sort(nontarget)[::-1]
        accepted = np.arange(1, len(ordered) + 1) / len(ordered)
        tail = (accepted <= TAIL_FROM) & (accepted >= TAIL_TO)
        if tail.sum() < 3:
            raise ValueError(
                f"{len(ordered)} different-speaker trials are too few to fit the tail; "
                f"fit on more speakers"
            )
        slope, intercept = np.polyfit(ordered[tail], np.log10(accepted[tail]), 1)
        return cls(float(intercept), float(slope))

    def score_at(self, far: float) -> float:
        """The score above which a share ``far`` of different-speaker trials lies."""
        return (np.log10(far) - self.intercept) / self.slope


def trials(
    probes: list[Voice],
    enrolled: list[Voice],
    scorer: Scorer,
    cohort_who: list[tuple[str, str]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Same- and different-speaker normalised scores of every pair of two recordings: each
    pair once when ``probes is enrolled``, else every probe against every enrolled
    recording but its own other version. With ``cohort_who`` (whose voice each cohort row
    is) a recording's cohort level leaves its own speaker out."""

    def prepared(side: list[Voice]) -> Gallery:
        flags = [r.narrowband for r in side]
        gallery = scorer.gallery(Voices.of(np.stack([r.vector for r in side]), flags))
        if cohort_who is None or scorer.cohort is None:
            return gallery
        own = np.array([f"{r.set}/{r.speaker}" for r in side])[:, None] == np.array(
            [f"{set_name}/{speaker}" for set_name, speaker in cohort_who]
        )
        mean, _ = scorer.cohort_stats(gallery.vectors, left_out=own)
        return replace(gallery, cohort_mean=mean.astype(np.float32))

    matrix = scorer.raw_between(prepared(probes), prepared(enrolled))
    who_p = np.array([f"{p.set}/{p.speaker}" for p in probes])
    who_e = np.array([f"{e.set}/{e.speaker}" for e in enrolled])
    same = who_p[:, None] == who_e[None, :]
    if probes is enrolled:
        kept = np.triu(np.ones(matrix.shape, dtype=bool), k=1)
    else:
        kept = (
            np.array([p.recording for p in probes])[:, None]
            != np.array([e.recording for e in enrolled])[None, :]
        )
    return matrix[kept & same], matrix[kept & ~same]


def fit_curve(per_set: dict[str, tuple[np.ndarray, np.ndarray]], decision_far: float) -> Curve:
    """The highest per-set bar for 1 and for LARGEST_GROUP voiceprints, and the slope."""
    tails = {name: Tail.fit(nontarget) for name, (_, nontarget) in per_set.items()}
    one = max(t.score_at(decision_far) for t in tails.values())
    largest = max(t.score_at(decision_far / LARGEST_GROUP) for t in tails.values())
    target = np.concatenate([t for t, _ in per_set.values()])
    nontarget = np.concatenate([n for _, n in per_set.values()])
    per_decade = (largest - one) / np.log10(LARGEST_GROUP)
    return Curve(round(one, 4), round(logistic_slope(target, nontarget), 4), round(per_decade, 4))


def fit(
    embedded: Embedded,
    speakers: set[tuple[str, str]],
    *,
    decision_far: float,
    description: str,
    method: str = "cosine",
    narrowband: Embedded | None = None,
    cohort: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset(),
    model_cohort: np.ndarray | None = None,
    top_k: int = 50,
    shift: float = 0.0,
    centre: bool = False,
) -> tuple[Calibration, np.ndarray | None]:
    """The calibration (and, for AS-norm, the cohort to package with it).

    ``embedded`` holds the recordings as recorded, ``narrowband`` the same
    recordings through an 8 kHz line; ``speakers`` are fitted on, ``cohort``
    speakers only serve as impostors. A ``model_cohort`` (one that comes with the
    model files) replaces the packaged one. ``centre`` subtracts the mean embedding
    of the fitting recordings first.
    """
    # An AS-norm cohort of the fitting speakers themselves is scored half against half;
    # the shift scores every fitting speaker against the packaged cohort less their own
    # voice (half a cohort would hold half the voices of each language, and so set the
    # bar as if a deployment's cohort were thinner than the one it gets).
    by_halves = method == "asnorm" and model_cohort is None
    splits = [_halves(speakers), _halves(speakers)[::-1]] if by_halves else [(speakers, set())]
    as_recorded = voices(embedded)
    line = voices(narrowband) if narrowband else []
    wideband = [r for r in as_recorded if not r.narrowband]
    domain_mean: tuple[float, ...] = ()
    # With curves of their own, narrow-band recordings are scored as they are: the mean is
    # that of the wide-band ones (docs/accuracy.md). Without, every recording is centred.
    centre_narrowband = narrowband is None
    if centre:
        mine = np.stack(
            [
                r.vector
                for r in as_recorded
                if r.who in speakers and (centre_narrowband or not r.narrowband)
            ]
        )
        domain_mean = tuple(float(x) for x in normalize(mine).mean(axis=0))

    # The shift scores wide-band pairs only, against wide-band voices.
    shift_cohort = [r for r in wideband if r.who in cohort | speakers]

    def cohort_for(who: set[tuple[str, str]]) -> np.ndarray | None:
        if method == "cosine":
            return None
        if model_cohort is not None:
            return model_cohort
        if method == "shift":
            return cohort_of(shift_cohort)
        return cohort_of(r for r in as_recorded + line if r.who in cohort | who)

    leave_out = cohort_speakers(shift_cohort) if method == "shift" else None

    conditions: dict[str, dict[str, tuple[list[np.ndarray], list[np.ndarray]]]] = {
        "wide": {},
        "narrow": {},
        "telephone": {},
        "mixed": {},
    }
    for half, other in splits:
        scorer = Scorer(
            cohort_for(other),
            Calibration(
                threshold=0.0,
                slope=1.0,
                method=method,
                top_k=top_k,
                shift=shift,
                domain_mean=domain_mean,
                centre_narrowband=centre_narrowband,
            ),
        )
        for set_name in sorted({s for s, _ in half}):
            mine = [r for r in as_recorded if r.who in half and r.set == set_name]
            lined = [r for r in line if r.who in half and r.set == set_name]
            wide = [r for r in mine if not r.narrowband]
            calls = [r for r in mine if r.narrowband]
            pairs = {"wide": (wide, wide), "narrow": (lined, lined), "telephone": (calls, calls)}
            if lined:
                pairs["mixed"] = (lined, wide)
            for condition, (probes, enrolled) in pairs.items():
                if len({r.who for r in probes}) < 2:
                    continue
                target, nontarget = trials(probes, enrolled, scorer, leave_out)
                kept = conditions[condition].setdefault(set_name, ([], []))
                kept[0].append(target)
                kept[1].append(nontarget)
    curves = {
        condition: fit_curve(
            {name: (np.concatenate(t), np.concatenate(n)) for name, (t, n) in per_set.items()},
            decision_far,
        )
        for condition, per_set in conditions.items()
        if per_set
    }
    wide = curves["wide"]
    calls = [r for r in as_recorded if r.narrowband and r.who in speakers]
    direction, bias = _line_detector(calls, [r for r in line if r.who in speakers | cohort])
    calibration = Calibration(
        threshold=wide.threshold,
        slope=wide.slope,
        per_decade=wide.per_decade,
        method=method,
        top_k=top_k,
        shift=shift,
        domain_mean=domain_mean,
        centre_narrowband=centre_narrowband,
        fitted_on=description,
        speakers=tuple(sorted(f"{set_name}/{speaker}" for set_name, speaker in speakers)),
        narrowband=curves.get("narrow"),
        mixed=curves.get("mixed"),
        telephone=curves.get("telephone") if direction else None,
        line_direction=direction,
        line_bias=bias,
        shared_line=shared_line_bar(calls, [r for r in line if r.who in speakers])
        if direction
        else 0.0,
    )
    packaged = None if model_cohort is not None else cohort_for(speakers)
    return calibration, packaged


def cohort_speakers(recordings: Iterable[Voice]) -> list[tuple[str, str]]:
    """Whose voice each row of ``cohort_of(recordings)`` is."""
    return [(set_name, speaker) for set_name, speaker, _ in sorted({r.voice for r in recordings})]


def _line_detector(calls: list[Voice], resampled: list[Voice]) -> tuple[tuple[float, ...], float]:
    """The direction from resampled speech to real calls, and the bias that puts the
    boundary half-way between their means; none without both."""
    if not calls or not resampled:
        return (), 0.0
    call_mean = normalize(np.stack([r.vector for r in calls])).mean(axis=0)
    resampled_mean = normalize(np.stack([r.vector for r in resampled])).mean(axis=0)
    direction = call_mean - resampled_mean
    bias = -0.5 * float((call_mean + resampled_mean) @ direction)
    return tuple(float(x) for x in direction), round(bias, 6)


def shared_line_bar(calls: list[Voice], resampled: list[Voice]) -> float:
    """How alike a group's narrow-band voiceprints must be to be taken for one phone line:
    half-way between the real callers' groups of SHARED_LINE_VOICES (one recording each,
    SHARED_LINE_DRAWS draws; their 1st percentile) and the resampled speakers' (each set's
    99th percentile, the highest set's)."""

    def draws(recordings: list[Voice]) -> np.ndarray:
        by_speaker: dict[tuple[str, str], list[np.ndarray]] = {}
        for r in recordings:
            by_speaker.setdefault(r.who, []).append(r.vector)
        names = sorted(by_speaker)
        rng = np.random.default_rng(0)
        out = []
        for _ in range(SHARED_LINE_DRAWS):
            members = rng.choice(len(names), SHARED_LINE_VOICES, replace=False)
            picked = [by_speaker[names[m]] for m in members]
            out.append(mutual_alike(normalize(np.stack([p[rng.integers(len(p))] for p in picked]))))
        return np.array(out)

    sets = {r.set for r in resampled}
    resampled_high = max(
        float(np.quantile(draws([r for r in resampled if r.set == s]), 0.99)) for s in sets
    )
    return round(0.5 * (float(np.quantile(draws(calls), 0.01)) + resampled_high), 4)


def _halves(
    speakers: set[tuple[str, str]],
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Every other speaker of each set, in id order: two halves of every set."""
    ordered = sorted(speakers)
    return set(ordered[::2]), set(ordered[1::2])
