"""Ranking: the top k of a large group come out as a full sort would give them."""

from __future__ import annotations

import numpy as np

from voiceprint.scoring.ranking import Candidate, rank


def test_top_k_equals_the_head_of_a_full_stable_sort_ties_included() -> None:
    rng = np.random.default_rng(7)
    scores = np.round(rng.uniform(0, 100, 5000), 0)  # many ties
    candidates = [Candidate(i, 1, f"v{i}", "") for i in range(len(scores))]
    full = rank(candidates, scores, None)
    assert [m.score for m in full] == sorted(scores.tolist(), reverse=True)
    for k in (1, 3, 10, 57, 4999, 5000, 9000):
        assert rank(candidates, scores, k) == full[:k]
    tied = [m.feature_id for m in full if m.score == full[0].score]
    assert tied == sorted(tied) and len(tied) > 1  # ties keep enrolment order
