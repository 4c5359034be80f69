"""Conversations built from real recordings, with the truth of who spoke when.

2-5 speakers take turns of 1-15 s (cut from their recordings, trimmed to the
speech), with pauses of 0.2-1.5 s, a quarter of the changes without any pause;
some conversations get background noise. The reference marks the speech the VAD
finds in each clean piece. Each speaker's first recording stays free for
enrolment.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from voiceprint.audio.limits import SAMPLE_RATE
from voiceprint.audio.vad import SpeechDetector
from voiceprint.eval.corpus import Utterance


@dataclass(frozen=True)
class RefTurn:
    start: int  # samples
    end: int
    speaker: str  # "set/speaker"


@dataclass
class Conversation:
    wave: np.ndarray
    turns: list[RefTurn]
    used: set[str]  # Utterance keys heard in the conversation (not for enrolment)

    @property
    def speakers(self) -> list[str]:
        return list(dict.fromkeys(t.speaker for t in self.turns))


def _speech_span(detector: SpeechDetector, wave: np.ndarray) -> np.ndarray:
    segments = detector.segments(wave)
    return wave[segments[0].start : segments[-1].end] if segments else wave[:0]


def build(
    by_speaker: dict[str, list[Utterance]],
    detector: SpeechDetector,
    rng: random.Random,
    *,
    speakers: int,
    turns: int,
    noisy: bool = False,
) -> Conversation:
    """One conversation among ``speakers`` people drawn from ``by_speaker`` (>= 2 recordings)."""
    people = rng.sample(sorted(by_speaker), speakers)
    pieces: list[np.ndarray] = []
    ref: list[RefTurn] = []
    used: set[str] = set()
    position = 0
    previous = None
    for i in range(turns):
        # Everyone speaks at least once; then anyone but the last speaker.
        who = people[i] if i < len(people) else rng.choice([p for p in people if p != previous])
        utterance = rng.choice(by_speaker[who][1:])  # the first stays free for enrolment
        used.add(utterance.key)
        speech = _speech_span(detector, utterance.samples())
        length = min(len(speech), int(rng.uniform(1.0, 15.0) * SAMPLE_RATE))
        if length < SAMPLE_RATE:
            continue
        start = rng.randrange(0, len(speech) - length + 1)
        gap = 0 if i == 0 or rng.random() < 0.25 else int(rng.uniform(0.2, 1.5) * SAMPLE_RATE)
        pieces.append(np.zeros(gap, np.float32))
        position += gap
        piece = speech[start : start + length]
        pieces.append(piece)
        # The truth is the speech inside the piece (the VAD on the clean recording): a
        # pause within someone's turn is nobody's speech.
        ref.extend(
            RefTurn(position + seg.start, position + seg.end, who)
            for seg in detector.segments(piece)
        )
        position += length
        previous = who
    wave = np.concatenate(pieces).astype(np.float32)
    if noisy:
        power = float(np.mean(wave**2))
        wave = wave + np.random.default_rng(rng.randrange(2**32)).normal(
            0, np.sqrt(power / 100.0), len(wave)
        ).astype(np.float32)  # 20 dB SNR
    return Conversation(wave, ref, used)
