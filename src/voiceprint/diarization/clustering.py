"""Group window embeddings into speakers: agglomerative clustering with a stopping rule.

Average linkage on cosine similarity merges the two most alike groups until no
two are more alike than ``threshold``, so the number of speakers need not be
known; a known count (or bounds) overrides the rule. Then clusters of fewer
than ``min_size`` windows (a cough, a laugh, a stray noisy window) join the
closest larger one, and every window moves to the nearest cluster centre once.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from voiceprint.scoring.scorer import normalize


def cluster(
    embeddings: np.ndarray,
    threshold: float,
    *,
    num_speakers: int | None = None,
    min_speakers: int = 1,
    max_speakers: int | None = None,
    min_size: int = 2,
) -> np.ndarray:
    """A cluster index (0, 1, ...) for each embedding row, numbered by first appearance."""
    n = len(embeddings)
    if n <= 1:
        return np.zeros(n, dtype=int)
    vectors = normalize(embeddings)
    tree = linkage(vectors, method="average", metric="cosine")
    if num_speakers is not None:
        labels = fcluster(tree, t=min(num_speakers, n), criterion="maxclust")
        min_size = 1  # the caller knows how many there are
    else:
        labels = fcluster(tree, t=1.0 - threshold, criterion="distance")
        count = len(set(labels))
        upper = min(max_speakers or n, n)
        lower = min(min_speakers, n)
        if count > upper or count < lower:
            labels = fcluster(tree, t=max(lower, min(count, upper)), criterion="maxclust")
    return _by_first_appearance(_refine(vectors, labels - 1, min_size))


def _refine(vectors: np.ndarray, labels: np.ndarray, min_size: int) -> np.ndarray:
    sizes = np.bincount(labels)
    keep = np.flatnonzero(sizes >= min_size)
    if len(keep) == 0:
        return np.zeros(len(labels), dtype=int)
    centres = normalize(np.stack([vectors[labels == k].mean(axis=0) for k in keep]))
    nearest = (vectors @ centres.T).argmax(axis=1)
    return keep[nearest]


def _by_first_appearance(labels: np.ndarray) -> np.ndarray:
    _, first = np.unique(labels, return_index=True)
    order = {label: rank for rank, label in enumerate(labels[np.sort(first)])}
    return np.array([order[label] for label in labels])
