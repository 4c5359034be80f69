"""From two embeddings to a calibrated 0-100 score and a same-speaker decision.

1. centring: embeddings are length-normalised and the mean embedding of
   in-domain speech (fitted with the calibration) is subtracted, which removes
   the direction every recording of the deployment shares (channel, language).
   A calibration with curves of its own for narrow-band speech centres only
   wide-band recordings: the wide-band mean does not describe 8 kHz speech;
   centring it there (or on its own condition's mean) raised the EER on
   held-out 8 kHz speech (docs/accuracy.md);
2. cosine similarity;
3. a cohort normalisation, one of:
   - adaptive symmetric score normalisation (AS-norm, ECAPA): each side's score
     is standardised against its ``top_k`` closest impostors in a cohort (the
     ECAPA classifier's 7205 VoxCeleb speaker prototypes, centred the same way),
     which removes the per-speaker offsets that make some strangers score high;
   - a shift (``voiceprint calibrate --method shift``; not packaged, as it did
     not beat cosine on every set: docs/accuracy.md): between two wide-band
     recordings the cosine loses ``shift`` times the mean of both sides'
     ``top_k`` closest cohort scores, so a voice that sounds like many others
     (children's, most often) meets a higher bar. Narrow-band and phone-line
     pairs stay plain cosine: over a line the closest cohort voices measure the
     line, not the speaker;
4. a logistic calibration maps the normalised score to 0-100, where 50 is the
   default decision threshold.

``voiceprint calibrate`` fits the mean, threshold and slope on real speech;
docs/accuracy.md has what each step measured.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

MATCH_THRESHOLD = 50.0
# The fewest narrow-band voiceprints whose likeness can tell a shared phone line: the
# fitting speakers' groups of 4 overlapped (real callers as little alike as 0.41, speech
# resampled to 8 kHz as much as 0.51); from 5 on they were apart (eval/calibrate.py).
SHARED_LINE_VOICES = 5
# Rows scored against the cohort at once: bounds the [rows, cohort] matrix to ~30 MB.
COHORT_CHUNK = 1024


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a single vector works too)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def cosine_matrix(probes: np.ndarray, enrolled: np.ndarray) -> np.ndarray:
    """Cosine similarity of every probe [P, D] with every enrolled vector [E, D]."""
    return normalize(np.atleast_2d(probes)) @ normalize(np.atleast_2d(enrolled)).T


def mutual_alike(unit: np.ndarray, rows: np.ndarray | None = None) -> float:
    """The mean cosine over every pair of unit vectors [n, D] (of the ``rows`` marked, when
    given: summed without copying them, as a large group's gallery may be); at least 2."""
    if rows is None:
        rows = np.ones(len(unit), bool)
    n = int(np.count_nonzero(rows))
    total = rows.astype(unit.dtype) @ unit
    return (float(total @ total) - n) / (n * (n - 1))


def combine(embeddings: np.ndarray) -> np.ndarray:
    """One voiceprint from several samples: the mean direction of the normalised samples."""
    return normalize(normalize(np.atleast_2d(embeddings)).mean(axis=0))


def combine_runs(embeddings: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``combine`` of each run of consecutive rows (``counts`` rows each), bit for bit, in
    one pass per run length rather than one per voiceprint (a large group's read)."""
    unit = normalize(np.atleast_2d(embeddings))
    starts = np.cumsum(counts) - counts
    means = np.empty((len(counts), unit.shape[1]), unit.dtype)
    for k in np.unique(counts):
        which = np.flatnonzero(counts == k)
        # A [runs, k, D] mean over k adds the rows in the order combine's mean does.
        means[which] = unit[starts[which][:, None] + np.arange(k)].mean(axis=1)
    return normalize(means)


@dataclass(frozen=True)
class Voices:
    """Embeddings [n, D] and whether each is of narrow-band (telephone-like) speech [n]."""

    vectors: np.ndarray
    narrowband: np.ndarray

    @classmethod
    def of(cls, vectors: np.ndarray, narrowband: np.ndarray | list[bool] | bool = False) -> Voices:
        vectors = np.atleast_2d(vectors)
        flags = np.broadcast_to(np.asarray(narrowband, dtype=bool), (len(vectors),))
        return cls(vectors, flags)

    @classmethod
    def concat(cls, parts: Sequence[Voices]) -> Voices:
        if not parts:
            return cls(np.zeros((0, 0), np.float32), np.zeros(0, bool))
        return cls(
            np.concatenate([p.vectors for p in parts]),
            np.concatenate([p.narrowband for p in parts]),
        )

    def take(self, rows: np.ndarray) -> Voices:
        return Voices(self.vectors[rows], self.narrowband[rows])

    def combined(self) -> Voices:
        """One voiceprint of all of them; narrow-band if at least half of them are."""
        return Voices(combine(self.vectors)[None], np.array([self.narrowband.mean() >= 0.5]))

    def combined_runs(self, counts: np.ndarray) -> Voices:
        """``combined`` of each run of consecutive voices (``counts`` each)."""
        narrow = np.add.reduceat(self.narrowband.astype(float), np.cumsum(counts) - counts)
        return Voices(combine_runs(self.vectors, counts), narrow / counts >= 0.5)


@dataclass(frozen=True)
class Curve:
    """score = 100 * sigmoid(slope * (raw - bar)): 50 at the bar of the decision.

    A decision among N voiceprints gives a stranger N chances to pass, so the bar
    rises with N: ``threshold`` is the bar for one voiceprint (verify) and
    ``per_decade`` how far it rises for each tenfold more (read off the tail of
    different-speaker scores, where log(false accepts) falls linearly with the score).
    """

    threshold: float
    slope: float
    per_decade: float = 0.0

    def bar(self, candidates: int = 1) -> float:
        return self.threshold + self.per_decade * float(np.log10(max(candidates, 1)))

    def to_score(self, raw: np.ndarray, candidates: int = 1) -> np.ndarray:
        return 100.0 / (1.0 + np.exp(-self.slope * (np.asarray(raw) - self.bar(candidates))))


@dataclass(frozen=True)
class Calibration:
    """How raw embeddings become scores: normalisation, then one curve per condition."""

    threshold: float
    slope: float
    method: str = "asnorm"  # or "shift" (wide-band pairs only), or "cosine": no cohort
    per_decade: float = 0.0
    top_k: int = 1000
    shift: float = 0.0  # "shift": how much of the sides' mean closest cohort score is taken off
    domain_mean: tuple[float, ...] = ()  # empty: no centring
    centre_narrowband: bool = True  # False: narrow-band recordings are not centred
    fitted_on: str = ""
    # "set/speaker" of every speaker used for fitting: evaluations leave them out.
    speakers: tuple[str, ...] = field(default=(), repr=False)
    # Curves for trials with narrow-band (telephone) speech on both sides, and on one
    # side only (None: the curve above). Narrow-band voices all sound more alike, so
    # strangers score higher than in wide-band trials; a narrow-band recording against
    # a wide-band one scores lower for everyone, same speaker or not.
    narrowband: Curve | None = None
    mixed: Curve | None = None
    # Narrow-band speech over a real phone line (codec, band-pass, line noise) sounds
    # far more alike than speech that was only sampled at 8 kHz, and needs a higher bar.
    # The line shows in the embedding: a recording is of a line when
    # ``embedding . line_direction + line_bias > 0`` (fitted on real calls against
    # the same kind of speech resampled). Two narrow-band sides of which either is
    # a line take the ``telephone`` curve.
    telephone: Curve | None = None
    line_direction: tuple[float, ...] = field(default=(), repr=False)
    line_bias: float = 0.0
    # The direction knows the lines it was fitted on. Callers on any one line sound
    # alike, strangers included, and that shows in a group: when a group holds at least
    # SHARED_LINE_VOICES narrow-band voiceprints and they are on average at least this
    # alike (``mutual_alike``), they are taken to be on one line (0: no such check).
    shared_line: float = 0.0

    @classmethod
    def load(cls, path: Path) -> Calibration:
        data = json.loads(path.read_text())
        for name in ("domain_mean", "speakers", "line_direction"):
            data[name] = tuple(data.get(name, ()))
        for condition in ("narrowband", "mixed", "telephone"):
            if data.get(condition):
                data[condition] = Curve(**data[condition])
        return cls(**data)

    def save(self, path: Path) -> None:
        data = asdict(self)
        for name in ("domain_mean", "line_direction"):
            data[name] = [round(v, 6) for v in getattr(self, name)]
        data["speakers"] = list(self.speakers)
        path.write_text(json.dumps(data, indent=2) + "\n")

    def over_a_line(self, embeddings: np.ndarray) -> np.ndarray:
        """Which (length-normalised) embeddings are of speech over a phone line."""
        if not self.line_direction:
            return np.zeros(len(embeddings), dtype=bool)
        direction = np.asarray(self.line_direction, np.float32)
        return normalize(embeddings) @ direction + self.line_bias > 0

    @property
    def wideband(self) -> Curve:
        return Curve(self.threshold, self.slope, self.per_decade)

    def to_score(
        self, raw: np.ndarray, condition: np.ndarray | int = 0, candidates: int = 1
    ) -> np.ndarray:
        """Scores of raw trial scores; ``condition``: 0 wide-band, 1 one side narrow-band,
        2 both, 3 both and a phone line; ``candidates``: how many voiceprints the
        decision is among."""
        wide = self.wideband
        narrow = self.narrowband or wide
        curves = (wide, self.mixed or wide, narrow, self.telephone or narrow)
        scores = [curve.to_score(raw, candidates) for curve in curves]
        return np.choose(np.asarray(condition), scores)

    def conditions(self, probes: Gallery, enrolled: Gallery) -> np.ndarray:
        """The condition (as ``to_score`` takes it) of every probe-enrolled pair."""
        narrow_sides = probes.narrowband[:, None].astype(int) + enrolled.narrowband[None, :]
        line = probes.line[:, None] | enrolled.line[None, :]
        return narrow_sides + ((narrow_sides == 2) & line)


@dataclass(frozen=True)
class Gallery:
    """Voices prepared for scoring, [n] rows: what the embedding index keeps per group, so
    a request only scores its probe. ``vectors`` are centred unit vectors (float32);
    ``cohort_mean``/``cohort_std`` each row's AS-norm statistics (zeros for cosine);
    ``narrowband`` and ``line`` pick each row's calibration curve."""

    vectors: np.ndarray
    narrowband: np.ndarray
    line: np.ndarray
    cohort_mean: np.ndarray
    cohort_std: np.ndarray

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays())

    @classmethod
    def concat(cls, parts: Sequence[Gallery]) -> Gallery:
        if not parts:
            flags, stats = np.zeros(0, bool), np.zeros(0, np.float32)
            return cls(np.zeros((0, 0), np.float32), flags, flags, stats, stats)
        if len(parts) == 1:  # a group's own gallery, not copied per request
            return parts[0]
        columns = zip(*(p._arrays() for p in parts), strict=True)
        return cls(*(np.concatenate(column) for column in columns))

    def take(self, rows: np.ndarray) -> Gallery:
        return Gallery(*(a[rows] for a in self._arrays()))

    @cached_property
    def narrowband_alike(self) -> float:
        """``mutual_alike`` of the narrow-band rows (at least 2), worked out once: the index
        hands a group's gallery to every request, and a gallery never changes."""
        return mutual_alike(self.vectors, self.narrowband)

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (self.vectors, self.narrowband, self.line, self.cohort_mean, self.cohort_std)


class Scorer:
    def __init__(self, cohort: np.ndarray | None, calibration: Calibration) -> None:
        if calibration.method != "cosine" and cohort is None:
            raise ValueError(f"{calibration.method} needs an impostor cohort")
        self.calibration = calibration
        mean = np.asarray(calibration.domain_mean or (0.0,), np.float32)
        # The mean each recording is centred on: [wide-band, narrow-band].
        self._means = np.stack(
            [mean, mean if calibration.centre_narrowband else np.zeros_like(mean)]
        )
        self.cohort = None if cohort is None else self.prepare(cohort)
        self.top_k = 0 if self.cohort is None else min(calibration.top_k, len(self.cohort))

    def prepare(self, embeddings: np.ndarray, narrowband: np.ndarray | bool = False) -> np.ndarray:
        """Length-normalise, centre on the domain mean (if any, and if the row's condition
        is centred), length-normalise again."""
        unit = normalize(np.atleast_2d(embeddings).astype(np.float32))
        rows = np.broadcast_to(np.asarray(narrowband, dtype=np.int64), (len(unit),))
        return normalize(unit - self._means[rows])

    def cohort_stats(
        self, prepared: np.ndarray, left_out: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of each (prepared) embedding's ``top_k`` highest cohort scores;
        ``left_out`` [rows, cohort] marks cohort voices a row may not count (its own)."""
        assert self.cohort is not None
        scores = prepared @ self.cohort.T
        if left_out is not None:
            scores[left_out] = -np.inf
        top = np.partition(scores, -self.top_k, axis=1)[:, -self.top_k :]
        return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-6)

    def gallery(self, voices: Voices) -> Gallery:
        """``voices`` prepared for scoring. Each row is computed on its own (rows against
        the cohort in chunks, which bounds memory), so a gallery built in parts equals one
        built at once."""
        if not len(voices.vectors):
            return Gallery.concat([])
        prepared = self.prepare(voices.vectors, voices.narrowband)
        if self.cohort is None:
            mean = std = np.zeros(len(prepared), np.float32)
        else:
            stats = [
                self.cohort_stats(prepared[start : start + COHORT_CHUNK])
                for start in range(0, len(prepared), COHORT_CHUNK)
            ]
            mean = np.concatenate([m for m, _ in stats])
            std = np.concatenate([s for _, s in stats])
        line = self.calibration.over_a_line(voices.vectors)
        return Gallery(prepared, voices.narrowband, line, mean, std)

    def grouped(self, gallery: Gallery) -> Gallery:
        """``gallery`` as one group's voiceprints: its narrow-band rows marked as a phone
        line where the group's narrow-band voices sound as alike as callers on one line
        do (``Calibration.shared_line``), so that a line the direction does not know
        still takes the line's curve."""
        bar = self.calibration.shared_line
        narrow = int(np.count_nonzero(gallery.narrowband))
        if not bar or narrow < SHARED_LINE_VOICES or gallery.line[gallery.narrowband].all():
            return gallery
        if gallery.narrowband_alike < bar:
            return gallery
        return Gallery(
            gallery.vectors,
            gallery.narrowband,
            gallery.line | gallery.narrowband,
            gallery.cohort_mean,
            gallery.cohort_std,
        )

    def raw_between(self, probes: Gallery, enrolled: Gallery) -> np.ndarray:
        """Uncalibrated scores [n_probes, n_enrolled] of prepared galleries."""
        cosine = probes.vectors @ enrolled.vectors.T
        if self.calibration.method == "cosine":
            return cosine
        if self.calibration.method == "shift":
            wide = ~probes.narrowband[:, None] & ~enrolled.narrowband[None, :]
            level = 0.5 * (probes.cohort_mean[:, None] + enrolled.cohort_mean[None, :])
            return cosine - self.calibration.shift * level * wide
        return 0.5 * (
            (cosine - enrolled.cohort_mean[None, :]) / enrolled.cohort_std[None, :]
            + (cosine - probes.cohort_mean[:, None]) / probes.cohort_std[:, None]
        )

    def raw_matrix(self, probes: np.ndarray, enrolled: np.ndarray) -> np.ndarray:
        """Uncalibrated scores [n_probes, n_enrolled] of wide-band recordings."""
        return self.raw_between(self.gallery(Voices.of(probes)), self.gallery(Voices.of(enrolled)))

    def score_matrix(
        self, probes: Voices, enrolled: Voices | Gallery, candidates: int | None = None
    ) -> np.ndarray:
        """Calibrated 0-100 scores [n_probes, n_enrolled]; >= 50 means the same speaker.

        Each probe is decided among ``candidates`` voiceprints (default: all of
        ``enrolled``, as identify decides for the whole group); 1 for pair trials.
        ``enrolled`` voices are one group (``grouped``); a gallery is scored as it is.
        """
        gallery = (
            enrolled if isinstance(enrolled, Gallery) else self.grouped(self.gallery(enrolled))
        )
        return self.score_between(self.gallery(probes), gallery, candidates)

    def score_between(
        self, probes: Gallery, enrolled: Gallery, candidates: int | None = None
    ) -> np.ndarray:
        """``score_matrix`` of prepared probes."""
        raw = self.raw_between(probes, enrolled)
        among = len(enrolled) if candidates is None else candidates
        return self.calibration.to_score(raw, self.calibration.conditions(probes, enrolled), among)

    def scores(self, probe: Voices, enrolled: Voices | Gallery) -> np.ndarray:
        """Calibrated 0-100 scores of one probe against each enrolled voiceprint, decided
        for all of them together."""
        return self.score_matrix(probe, enrolled)[0]
