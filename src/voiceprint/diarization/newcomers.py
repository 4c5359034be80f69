"""Local speakers the VAD diarization has no speaker for: placed by their voice.

A local speaker that shares too few clean frames with any speaker (its speech
was mostly missed by the VAD, or the one it shares them with is taken by
another local speaker of its window) is embedded from its clean frames, or
from all its frames if those are too few. It joins the most alike speaker not
taken in its window if they are alike enough; the rest are clustered among
themselves into new speakers (a speaker the VAD's speech never held apart).
One that sounds like a speaker taken in its window as much as one person's two
recordings do (SAME) is that speaker, split in two by the segmentation, and is
left unplaced: a new speaker for it was a ghost.
"""

from __future__ import annotations

import numpy as np

from voiceprint.audio.limits import SAMPLE_RATE
from voiceprint.diarization.clustering import cluster
from voiceprint.diarization.reconstruction import Links, grid_of
from voiceprint.diarization.segmentation import FRAME_STEP, Segmentation
from voiceprint.embedding.encoder import SpeakerEncoder
from voiceprint.scoring.scorer import combine, cosine_matrix

MIN_SPEECH = SAMPLE_RATE // 2  # a local speaker with less speech is too little to place
THRESHOLD = 0.30  # cosine at which a local speaker is a speaker already found
# Cosine from which a local speaker whose alike speakers are all taken in its window is
# still one of them, not someone new (two recordings of one person score 0.5-0.8). On 30
# built conversations (bench/diarization.py) such local speakers were 0.62-0.84 alike a
# taken speaker, and each became a speaker of its own: one wrong count (6 -> 5 of 30 at
# 0.5-0.65, 6 at 0.7), and three more once the segmentation may take VAD speech
# (``reconstruction.relabelled``). On the AMI openings a real newcomer was 0.55 alike
# (EN2003a) and one 0.68 alike made a fourth speaker of three (EN2005a).
SAME = 0.6


def place(
    wave: np.ndarray,
    seg: Segmentation,
    linked: Links,
    voices: np.ndarray,
    encoder: SpeakerEncoder,
    room: int,
    threshold: float = THRESHOLD,
    same: float = SAME,
) -> tuple[Links, np.ndarray]:
    """``linked`` and ``voices`` with the unlinked local speakers placed, new speakers'
    voices appended: at most ``room`` new ones (more are left out altogether)."""
    total = -(-len(wave) // FRAME_STEP)
    keys, pieces = [], []
    for w in range(len(seg.starts)):
        _, inside = grid_of(seg, w, total)
        active = seg.activity[w] & inside[:, None]
        alone = active.sum(axis=1) == 1
        for k in range(active.shape[1]):
            if (w, k) in linked or active[:, k].sum() * FRAME_STEP < MIN_SPEECH:
                continue
            clean = active[:, k] & alone
            frames = np.flatnonzero(
                clean if clean.sum() * FRAME_STEP >= MIN_SPEECH else active[:, k]
            )
            samples = (seg.frame_samples(w)[frames, None] + np.arange(FRAME_STEP)).ravel()
            keys.append((w, k))
            pieces.append(wave[samples[samples < len(wave)]])
    if not keys:
        return linked, voices
    embeddings = np.stack([encoder.embed(p) for p in pieces])
    out = dict(linked)
    alike = cosine_matrix(embeddings, voices)
    apart = []
    for i in np.argsort([-len(p) for p in pieces]):
        w, _ = keys[i]
        taken = {s for (window, _), s in out.items() if window == w}
        free = [int(s) for s in np.argsort(-alike[i]) if s not in taken]
        if free and alike[i, free[0]] >= threshold:
            out[keys[i]] = free[0]
        elif alike[i].max() < same:  # nobody free is alike, nor anyone taken very alike
            apart.append(i)
    if not apart:
        return out, voices
    labels = cluster(embeddings[apart], threshold, min_size=1)
    if labels.max() + 1 > room:
        return out, voices
    new = [combine(embeddings[apart][labels == c]) for c in range(labels.max() + 1)]
    for i, label in zip(apart, labels, strict=True):
        out[keys[i]] = len(voices) + int(label)
    return out, np.concatenate([voices, np.stack(new)])
