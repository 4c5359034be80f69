"""Diarization: speech windows -> embeddings -> speakers -> turns.

The VAD finds speech; each stretch of speech is cut into 1.5 s windows every
0.75 s (shorter stretches form one window), which are embedded by the model
the service runs and clustered (``clustering``). Every 10 ms of speech then
takes the speaker of the nearest window centre, so a change of speaker inside
a stretch without a pause is placed to within about half a hop, and runs of
one speaker become turns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voiceprint.audio.limits import SAMPLE_RATE
from voiceprint.audio.vad import Segment
from voiceprint.diarization.clustering import cluster
from voiceprint.engine import VoiceEngine

WINDOW = int(1.5 * SAMPLE_RATE)
HOP = int(0.75 * SAMPLE_RATE)
MIN_WINDOW = int(0.5 * SAMPLE_RATE)  # shorter speech takes its neighbours' speaker
FRAME = SAMPLE_RATE // 100
MIN_TURN = int(0.3 * SAMPLE_RATE)  # a shorter run inside speech joins its neighbour
BATCH = 32
# Windows of one speaker are more alike than this (cosine, average linkage); chosen on
# conversations built from the calibration speakers (bench/diarization.py).
THRESHOLD = 0.30


@dataclass(frozen=True)
class Turn:
    start: int  # samples
    end: int
    speaker: int  # 0, 1, ... in order of first appearance


@dataclass(frozen=True)
class Diarization:
    turns: list[Turn]

    @property
    def speakers(self) -> int:
        return len({t.speaker for t in self.turns})


def windows_of(segments: list[Segment]) -> list[tuple[int, int]]:
    spans = []
    for seg in segments:
        length = seg.end - seg.start
        if length < MIN_WINDOW:
            continue
        if length <= WINDOW:
            spans.append((seg.start, seg.end))
            continue
        starts = list(range(seg.start, seg.end - WINDOW + 1, HOP))
        if starts[-1] + WINDOW < seg.end:
            starts.append(seg.end - WINDOW)
        spans.extend((s, s + WINDOW) for s in starts)
    return spans


class Diarizer:
    def __init__(self, voice: VoiceEngine, threshold: float = THRESHOLD) -> None:
        self.voice = voice
        self.threshold = threshold

    def embed_windows(self, wave: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
        rows = [
            self.voice.encoder.embed_batch([wave[s:e] for s, e in spans[i : i + BATCH]])
            for i in range(0, len(spans), BATCH)
        ]
        return np.concatenate(rows) if rows else np.zeros((0, self.voice.encoder.dim), np.float32)

    def diarize(
        self,
        wave: np.ndarray,
        segments: list[Segment],
        *,
        num_speakers: int | None = None,
        min_speakers: int = 1,
        max_speakers: int | None = None,
    ) -> Diarization:
        spans = windows_of(segments)
        embeddings = self.embed_windows(wave, spans)
        labels = cluster(
            embeddings,
            self.threshold,
            num_speakers=num_speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
        )
        return Diarization(_renumbered(_turns(segments, spans, labels)))


def _turns(segments: list[Segment], spans: list[tuple[int, int]], labels: np.ndarray) -> list[Turn]:
    if not spans:
        return []
    centres = np.array([(s + e) / 2 for s, e in spans])
    turns: list[Turn] = []
    for seg in segments:
        frames = np.arange(seg.start, seg.end, FRAME)
        nearest = np.abs(frames[:, None] + FRAME / 2 - centres[None, :]).argmin(axis=1)
        speakers = labels[nearest]
        runs = _runs(frames, speakers, seg.end)
        turns.extend(_absorb_short(runs))
    return turns


def _renumbered(turns: list[Turn]) -> list[Turn]:
    """Speakers numbered 0, 1, ... in order of their first turn."""
    order = {s: i for i, s in enumerate(dict.fromkeys(t.speaker for t in turns))}
    return [Turn(t.start, t.end, order[t.speaker]) for t in turns]


def _runs(frames: np.ndarray, speakers: np.ndarray, end: int) -> list[Turn]:
    change = np.flatnonzero(np.diff(speakers)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(frames)]])
    return [
        Turn(int(frames[a]), int(frames[b]) if b < len(frames) else end, int(speakers[a]))
        for a, b in zip(starts, stops, strict=True)
    ]


def _absorb_short(runs: list[Turn]) -> list[Turn]:
    """Runs shorter than MIN_TURN inside one stretch of speech join the previous run."""
    merged: list[Turn] = []
    for run in runs:
        if merged and (run.end - run.start < MIN_TURN or run.speaker == merged[-1].speaker):
            merged[-1] = Turn(merged[-1].start, run.end, merged[-1].speaker)
        else:
            merged.append(run)
    if len(merged) > 1 and merged[0].end - merged[0].start < MIN_TURN:
        merged[1] = Turn(merged[0].start, merged[1].end, merged[1].speaker)
        merged.pop(0)
    return merged
