"""Matching: calibrated scores of one probe against enrolled voiceprints, ranked.

Kept apart from extraction and storage (as sherpa-onnx keeps
``SpeakerEmbeddingManager.search/verify`` apart from its extractor): given
scores and who they belong to, decide the order, the cut and the match flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voiceprint.scoring.scorer import MATCH_THRESHOLD

# Below this much speech in the probe a miss says little: same-speaker scores fall
# with speech while strangers' do not. Held-out speechocean762, commonvoice_zh and
# LibriSpeech pairs at the bar of a group of 10: 21.6 % of same-speaker pairs fail
# it with 1.5-2.5 s of speech on the shorter side, 2.9 % with 2.5-4 s, 1.4 % with 4-6 s.
DECIDING_SPEECH_S = 2.5
# The speech a voiceprint should hold, over all its recordings: the same pairs never
# fail that bar with more than 6 s on the shorter side. Enrolled this way (up to 3
# recordings), held-out speakers are rejected at 50 far less often than enrolled from
# one recording (README, Accuracy).
ADVISED_ENROL_SPEECH_S = 6.0
SAME, DIFFERENT, TOO_LITTLE_SPEECH = "same_speaker", "different_speaker", "too_little_speech"


@dataclass(frozen=True)
class Match:
    """How well a probe matches one voiceprint."""

    feature_id: int
    group_id: int
    name: str
    desc: str
    score: float  # 0..100, two decimals

    @property
    def is_match(self) -> bool:
        return self.score >= MATCH_THRESHOLD


@dataclass(frozen=True)
class Candidate:
    """An enrolled voiceprint as matching sees it."""

    feature_id: int
    group_id: int
    name: str
    desc: str


@dataclass(frozen=True)
class Recognition:
    """The answer to "who is speaking?": the ranked matches and what they decide.

    ``decision`` is ``same_speaker`` when the best match reaches the bar, else
    ``too_little_speech`` when the probe held under DECIDING_SPEECH_S of speech
    (a miss is then no evidence of a stranger: ask for more), else (or when
    nobody is enrolled) ``different_speaker``.
    """

    matches: list[Match]
    speech_s: float

    @property
    def decision(self) -> str:
        if not self.matches:
            return DIFFERENT
        if self.matches[0].is_match:
            return SAME
        return TOO_LITTLE_SPEECH if self.speech_s < DECIDING_SPEECH_S else DIFFERENT


def match(candidate: Candidate, score: float) -> Match:
    return Match(
        candidate.feature_id,
        candidate.group_id,
        candidate.name,
        candidate.desc,
        round(float(score), 2),
    )


def rank(candidates: Sequence[Candidate], scores: np.ndarray, top_k: int | None) -> list[Match]:
    """The ``top_k`` best matches (all when None), best first; ties keep enrolment order."""
    return [match(candidates[i], scores[i]) for i in top(scores, top_k)]


def top(scores: np.ndarray, top_k: int | None) -> np.ndarray:
    """The rows of the ``top_k`` best scores (all when None), best first; ties in row order."""
    scores = np.asarray(scores)
    rows = np.arange(len(scores))
    k = min(top_k or len(scores), len(scores))
    if k < len(scores):
        # Only rows scoring at least the k-th best can rank in the top k: sorting just those
        # (in enrolment order, stably) orders them as a sort of the whole group would.
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        rows = np.flatnonzero(scores >= kth)
    return rows[np.argsort(-scores[rows], kind="stable")][:k]
