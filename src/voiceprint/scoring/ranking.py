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


@dataclass(frozen=True)
class Match:
    """How well a probe matches one voiceprint."""

    feature_id: int
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
    name: str
    desc: str


def match(candidate: Candidate, score: float) -> Match:
    return Match(candidate.feature_id, candidate.name, candidate.desc, round(float(score), 2))


def rank(candidates: Sequence[Candidate], scores: np.ndarray, top_k: int | None) -> list[Match]:
    """The ``top_k`` best matches (all when None), best first; ties keep enrolment order."""
    order = np.argsort(-np.asarray(scores), kind="stable")[: top_k or len(candidates)]
    return [match(candidates[i], scores[i]) for i in order]
