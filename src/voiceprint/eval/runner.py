"""Run the recognition pipeline over a labelled corpus and measure it, per set.

Verification: every pair of utterances in a set is a trial (same speaker or not).
Identification: the speakers of a set with two or more utterances are dealt into
groups of ``group_size``; each speaker enrols ``enroll_clips`` utterances and the
rest are probes. Probes of the set's speakers outside the group (including
single-utterance distractors) are strangers: one that scores at or above the
threshold against anyone in the group is a stranger accepted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voiceprint.audio.decode import Audio
from voiceprint.audio.errors import NotEnoughSpeech
from voiceprint.audio.limits import SAMPLE_RATE
from voiceprint.engine import SpeechPolicy, VoiceEngine
from voiceprint.eval import conditions
from voiceprint.eval.conditions import AS_RECORDED, NARROWBAND
from voiceprint.eval.corpus import Utterance
from voiceprint.eval.metrics import eer, min_dcf, rates_at
from voiceprint.scoring.scorer import Scorer, Voices

log = logging.getLogger(__name__)

# (probes, enrolled, how many voiceprints each decision is among) -> scores [P, E]
ScoreFn = Callable[[Voices, Voices, int], np.ndarray]


@dataclass
class Embedded:
    """Embeddings of the utterances the pipeline accepted (None where it refused one)."""

    utterances: list[Utterance]
    vectors: list[np.ndarray | None]
    narrowband: list[bool]


def embed_corpus(
    engine: VoiceEngine,
    utterances: Sequence[Utterance],
    *,
    min_speech_s: float | None,
    cache: Path | None = None,
    condition: str = AS_RECORDED,
) -> Embedded:
    """Embed every utterance as the server would, reusing a cache file.

    With ``min_speech_s`` the utterance goes through ``VoiceEngine.analyse`` (refused
    below that much speech); without, the whole clip is embedded unconditionally.
    ``condition="narrowband"`` passes every utterance through an 8 kHz line first.
    """
    mode = "plain" if min_speech_s is None else min_speech_s
    variant = f"{engine.model_id}:{mode}:{condition}"
    stored: dict[str, dict[str, Any] | None] = {}
    if cache is not None and cache.is_file():
        stored = json.loads(cache.read_text()).get(variant, {})
    for i, utterance in enumerate(utterances):
        if utterance.key in stored:
            continue
        wave = conditions.apply(condition, utterance.samples())
        if min_speech_s is not None:
            try:
                sample = engine.analyse(
                    Audio(wave, "eval", SAMPLE_RATE, 1), SpeechPolicy("evaluation", min_speech_s)
                )
                stored[utterance.key] = {
                    "embedding": sample.embedding.tolist(),
                    "narrowband": sample.narrowband,
                }
            except NotEnoughSpeech:
                stored[utterance.key] = None
        else:
            stored[utterance.key] = {
                "embedding": engine.encoder.embed(wave).tolist(),
                "narrowband": condition == NARROWBAND,
            }
        if i % 100 == 0:
            log.info("embedded %d/%d (%s)", i, len(utterances), variant)
    if cache is not None:
        everything = json.loads(cache.read_text()) if cache.is_file() else {}
        everything[variant] = stored
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(everything))
    values = [stored[u.key] for u in utterances]
    return Embedded(
        list(utterances),
        [None if v is None else np.asarray(v["embedding"], dtype=np.float32) for v in values],
        [bool(v and v["narrowband"]) for v in values],
    )


@dataclass
class SetResult:
    set: str
    speakers: int
    utterances: int
    refused: int
    target_trials: int
    nontarget_trials: int
    eer: float
    min_dcf: float
    threshold: float
    far: float
    frr: float
    groups: int = 0
    genuine_probes: int = 0
    stranger_probes: int = 0
    top1: float | None = None
    stranger_acceptance: float | None = None
    identification_frr: float | None = None
    target_scores: list[float] = field(default_factory=list, repr=False)
    nontarget_scores: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("target_scores")
        data.pop("nontarget_scores")
        return data


def evaluate_set(
    name: str,
    embedded: Embedded,
    score: ScoreFn,
    *,
    threshold: float | None,
    group_size: int = 10,
    enroll_clips: int = 1,
    best_of_samples: bool = False,
    seed: int = 0,
) -> SetResult:
    """Metrics of one set. ``threshold=None`` uses the set's own EER threshold.

    A voiceprint of several clips is their combined embedding, or with
    ``best_of_samples`` the clips kept apart and the best score of them taken.
    """
    rows = [
        (u, v, nb)
        for u, v, nb in zip(embedded.utterances, embedded.vectors, embedded.narrowband, strict=True)
        if u.set == name and v is not None
    ]
    refused = sum(1 for u in embedded.utterances if u.set == name) - len(rows)
    speakers = np.array([u.speaker for u, _, _ in rows])
    voices = Voices.of(np.stack([v for _, v, _ in rows]), [nb for _, _, nb in rows])
    matrix = score(voices, voices, 1)  # pair trials: one voiceprint each
    upper = np.triu_indices(len(rows), k=1)
    same = speakers[upper[0]] == speakers[upper[1]]
    target, nontarget = matrix[upper][same], matrix[upper][~same]
    set_eer, eer_threshold = eer(target, nontarget)
    threshold = eer_threshold if threshold is None else threshold
    far, frr = rates_at(target, nontarget, threshold)
    result = SetResult(
        set=name,
        speakers=len(set(speakers)),
        utterances=len(rows),
        refused=refused,
        target_trials=int(same.sum()),
        nontarget_trials=int((~same).sum()),
        eer=set_eer,
        min_dcf=min_dcf(target, nontarget),
        threshold=float(threshold),
        far=far,
        frr=frr,
        target_scores=target.tolist(),
        nontarget_scores=nontarget.tolist(),
    )
    _identify(
        result, speakers, voices, score, threshold, group_size, enroll_clips, best_of_samples, seed
    )
    return result


def _identify(
    result: SetResult,
    speakers: np.ndarray,
    voices: Voices,
    score: ScoreFn,
    threshold: float,
    group_size: int,
    enroll_clips: int,
    best_of_samples: bool,
    seed: int,
) -> None:
    names, counts = np.unique(speakers, return_counts=True)
    eligible = names[counts > enroll_clips]
    if len(eligible) < 2:
        return
    order = np.random.default_rng(seed).permutation(eligible)
    groups = [order[i : i + group_size] for i in range(0, len(order), group_size)]
    if len(groups) > 1 and len(groups[-1]) < 2:
        groups[-2] = np.concatenate([groups[-2], groups.pop()])
    correct = genuine = false_rejects = strangers = strangers_accepted = 0
    for members in groups:
        enrolment_rows, probes = [], []
        for index, speaker in enumerate(members):
            rows = np.flatnonzero(speakers == speaker)
            enrolment_rows.append(rows[:enroll_clips])
            probes.extend((row, index) for row in rows[enroll_clips:])
        stranger_rows = np.flatnonzero(~np.isin(speakers, members))
        probe_voices = voices.take(np.array([row for row, _ in probes] + list(stranger_rows)))
        if best_of_samples:
            scores = np.stack(
                [
                    score(probe_voices, voices.take(rows), len(members)).max(axis=1)
                    for rows in enrolment_rows
                ],
                axis=1,
            )
        else:
            enrolled = Voices.concat([voices.take(rows).combined() for rows in enrolment_rows])
            scores = score(probe_voices, enrolled, len(members))
        truth = np.array([index for _, index in probes])
        genuine_scores = scores[: len(probes)]
        correct += int((genuine_scores.argmax(axis=1) == truth).sum())
        false_rejects += int((genuine_scores[np.arange(len(truth)), truth] < threshold).sum())
        genuine += len(probes)
        stranger_best = scores[len(probes) :].max(axis=1) if len(stranger_rows) else np.zeros(0)
        strangers += len(stranger_rows)
        strangers_accepted += int((stranger_best >= threshold).sum())
    result.groups = len(groups)
    result.genuine_probes = genuine
    result.stranger_probes = strangers
    result.top1 = correct / genuine
    result.identification_frr = false_rejects / genuine
    result.stranger_acceptance = strangers_accepted / strangers if strangers else None


def calibrated_fn(scorer: Scorer) -> ScoreFn:
    return scorer.score_matrix


def raw_fn(matrix: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> ScoreFn:
    """A score on embeddings alone (no condition), e.g. plain cosine."""
    return lambda probes, enrolled, _: matrix(probes.vectors, enrolled.vectors)
