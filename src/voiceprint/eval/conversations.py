"""Conversations built from real recordings, with the truth of who spoke when.

2-5 speakers take turns of 1-15 s (cut from their recordings, trimmed to the
speech), with pauses of 0.2-1.5 s, a quarter of the changes without any pause;
some conversations get background noise. Harder ones also have a share of the
changes overlap (the next speaker starts 0.3-1.5 s before the turn ends) and
backchannels: 0.3-1 s of a listener's speech laid over someone's turn. The
reference marks the speech the VAD finds in each clean piece, overlap included.
Each speaker's first recording stays free for enrolment.
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
    overlap: float = 0.0,
    backchannels: int = 0,
) -> Conversation:
    """One conversation among ``speakers`` people drawn from ``by_speaker`` (>= 2 recordings);
    ``overlap`` of the changes of speaker overlap, and ``backchannels`` short pieces of a
    listener's speech are laid over others' turns."""
    people = rng.sample(sorted(by_speaker), speakers)
    placed: list[tuple[int, np.ndarray]] = []  # (position, samples)
    ref: list[RefTurn] = []
    used: set[str] = set()
    turn_spans: list[tuple[int, int, str]] = []
    position = 0
    previous = None

    def speech_of(who: str) -> np.ndarray:
        utterance = rng.choice(by_speaker[who][1:])  # the first stays free for enrolment
        used.add(utterance.key)
        return _speech_span(detector, utterance.samples())

    def place(at: int, piece: np.ndarray, who: str) -> None:
        placed.append((at, piece))
        # The truth is the speech inside the piece (the VAD on the clean recording): a
        # pause within someone's turn is nobody's speech.
        ref.extend(RefTurn(at + seg.start, at + seg.end, who) for seg in detector.segments(piece))

    for i in range(turns):
        # Everyone speaks at least once; then anyone but the last speaker.
        who = people[i] if i < len(people) else rng.choice([p for p in people if p != previous])
        speech = speech_of(who)
        length = min(len(speech), int(rng.uniform(1.0, 15.0) * SAMPLE_RATE))
        if length < SAMPLE_RATE:
            continue
        start = rng.randrange(0, len(speech) - length + 1)
        if turn_spans and overlap and rng.random() < overlap:
            # Into the last half of the previous turn at most.
            gap = -min(int(rng.uniform(0.3, 1.5) * SAMPLE_RATE), turn_spans[-1][1] // 2)
        else:
            gap = 0 if i == 0 or rng.random() < 0.25 else int(rng.uniform(0.2, 1.5) * SAMPLE_RATE)
        position += gap
        place(position, speech[start : start + length], who)
        turn_spans.append((position, length, who))
        position += length
        previous = who
    long_turns = [t for t in turn_spans if t[1] >= 3 * SAMPLE_RATE]
    for _ in range(backchannels if long_turns and len(people) > 1 else 0):
        at, length, speaker = rng.choice(long_turns)
        listener = rng.choice([p for p in people if p != speaker])
        speech = speech_of(listener)
        size = min(len(speech), int(rng.uniform(0.3, 1.0) * SAMPLE_RATE))
        offset = rng.randrange(0, len(speech) - size + 1)
        piece = speech[offset : offset + size]
        if detector.segments(piece):  # a piece the VAD hears nothing in is no backchannel
            place(at + rng.randrange(SAMPLE_RATE, length - size), piece, listener)
    wave = np.zeros(max(at + len(piece) for at, piece in placed), np.float32)
    for at, piece in placed:
        wave[at : at + len(piece)] += piece
    ref.sort(key=lambda t: (t.start, t.speaker))
    if noisy:
        power = float(np.mean(wave**2))
        wave = wave + np.random.default_rng(rng.randrange(2**32)).normal(
            0, np.sqrt(power / 100.0), len(wave)
        ).astype(np.float32)  # 20 dB SNR
    return Conversation(wave, ref, used)
