"""Who is speaking now: one live stream identified against a group's voiceprints.

Audio arrives in pieces (``append``); a window-by-window VAD marks where speech
starts and stops. While a turn goes on, every further second of it gets an
interim answer (the turn so far, scored against the group as
``speaker_identify`` scores a probe); when it stops, the whole turn gets the
final one. When the interim answers of a turn named different people, the
turn is diarized first, so each speaker's part gets its own final answer (a
change of speaker without a pause). Nothing is stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from voiceprint.audio.limits import SAMPLE_RATE, to_ms
from voiceprint.audio.quality import is_narrowband, upper_band_db
from voiceprint.audio.stream import StreamDecoder, StreamFormat
from voiceprint.audio.vad import Segment
from voiceprint.diarization.diarizer import Diarizer
from voiceprint.engine import VoiceEngine
from voiceprint.scoring.ranking import Candidate, Match, rank
from voiceprint.scoring.scorer import MATCH_THRESHOLD, Scorer, Voices
from voiceprint.service.errors import InvalidParameter, Overloaded

INTERIM_EVERY = SAMPLE_RATE  # an interim answer per second of a turn
INTERIM_SPAN = 10 * SAMPLE_RATE  # interims score the last 10 s of the turn
MAX_TURN = 30 * SAMPLE_RATE  # finals score up to 30 s, as identify does
MIN_SCORED = SAMPLE_RATE // 2  # shorter speech is too little to score
SPLIT_FROM = 4 * SAMPLE_RATE  # shorter turns are not split
PRE_ROLL = SAMPLE_RATE // 2  # audio kept before speech starts (the VAD decides late)


@dataclass(frozen=True)
class SpeechStarted:
    offset_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    offset_ms: int


@dataclass(frozen=True)
class TurnAnswer:
    start_ms: int
    end_ms: int
    final: bool
    matches: list[Match]  # best first, top_k of them
    match: bool  # the best reaches the stream's score threshold


StreamEvent = SpeechStarted | SpeechStopped | TurnAnswer


@dataclass
class StreamConfig:
    audio: StreamFormat = field(default_factory=StreamFormat)
    top_k: int = 1
    score: float = MATCH_THRESHOLD  # a match from this score up (Coze's voice_print_config)


class IdentifyStream:
    def __init__(
        self,
        voice: VoiceEngine,
        scorer: Scorer,
        candidates: list[Candidate],
        voiceprints: Voices,
        *,
        max_ahead_s: float = 20.0,
    ) -> None:
        self._voice = voice
        self._scorer = scorer
        self._candidates = candidates
        self._voiceprints = voiceprints
        self._diarizer = Diarizer(voice)
        self._max_ahead = max_ahead_s
        self.config = StreamConfig()
        self._decoder = StreamDecoder(self.config.audio)
        self._vad = voice.stream_detector()
        self._reset_audio()

    def _reset_audio(self) -> None:
        self._audio = np.zeros(0, np.float32)
        self._audio_start = 0  # stream offset of self._audio[0]
        self._received = 0  # samples of the stream so far
        self._next_interim = 0
        self._turn_from = 0  # stream offset where the current (or last) turn started
        self._heard: set[int | None] = set()  # who the turn's interim answers named
        self._started_at: float | None = None

    def update(self, config: StreamConfig) -> None:
        """New audio format or voiceprint settings; audio buffered in the old format is dropped."""
        if config.top_k < 1 or not 0 <= config.score <= 100:
            raise InvalidParameter("top_k must be >= 1 and score within 0..100")
        decoder = StreamDecoder(config.audio)
        self.config, self._decoder = config, decoder
        self.clear()

    def clear(self) -> None:
        self._vad.reset()
        self._reset_audio()

    def append(self, data: bytes) -> list[StreamEvent]:
        samples = self._decoder.feed(data)
        now = time.monotonic()
        self._started_at = self._started_at or now
        ahead = (self._received + len(samples)) / SAMPLE_RATE - (now - self._started_at)
        if ahead > self._max_ahead:
            raise Overloaded(
                f"audio is arriving {ahead:.0f} s ahead of real time (at most "
                f"{self._max_ahead:.0f} s are buffered); send it at the pace it is spoken"
            )
        return self._consume(samples)

    def complete(self) -> list[StreamEvent]:
        """The end of the audio: any turn in progress ends and gets its final answer."""
        events = self._consume(self._decoder.flush())
        for kind, offset in self._vad.finish():
            events.extend(self._on_vad(kind, offset))
        return events

    def _consume(self, samples: np.ndarray) -> list[StreamEvent]:
        self._audio = np.concatenate([self._audio, samples])
        self._received += len(samples)
        events: list[StreamEvent] = []
        for kind, offset in self._vad.feed(samples):
            events.extend(self._on_vad(kind, offset))
        start = self._vad.speech_start
        if start is not None and self._received - start >= self._next_interim + INTERIM_EVERY:
            self._next_interim = self._received - start
            answer = self._answer(max(start, self._received - INTERIM_SPAN), self._received, False)
            self._heard.update(a.matches[0].feature_id if a.match else None for a in answer)
            events.extend(answer)
        if start is None:  # between turns only a little audio is kept
            self._trim(self._received - PRE_ROLL)
        return events

    def _on_vad(self, kind: str, offset: int) -> list[StreamEvent]:
        if kind == "start":
            self._next_interim = 0
            self._turn_from = offset
            self._heard = set()
            return [SpeechStarted(to_ms(offset))]
        start = self._turn_from
        events: list[StreamEvent] = [SpeechStopped(to_ms(offset))]
        events.extend(self._finals(start, offset))
        self._trim(offset)
        return events

    def _finals(self, start: int, end: int) -> list[StreamEvent]:
        turn = self._slice(start, end)
        if len(turn) >= SPLIT_FROM and len(self._heard) > 1:
            parts = self._diarizer.diarize(turn, [Segment(0, len(turn))]).turns
            if len({p.speaker for p in parts}) > 1:
                events: list[StreamEvent] = []
                for p in parts:
                    events.extend(self._answer(start + p.start, start + p.end, True))
                return events
        return list(self._answer(start, end, True))

    def _answer(self, start: int, end: int, final: bool) -> list[TurnAnswer]:
        wave = self._slice(start, end)[-MAX_TURN:]
        if len(wave) < MIN_SCORED:
            return []
        matches: list[Match] = []
        if self._candidates:
            narrow = is_narrowband(upper_band_db(wave, [Segment(0, len(wave))]))
            probe = Voices.of(self._voice.encoder.embed(wave), narrow)
            scores = self._scorer.scores(probe, self._voiceprints)
            matches = rank(self._candidates, scores, self.config.top_k)
        match = bool(matches) and matches[0].score >= self.config.score
        return [TurnAnswer(to_ms(start), to_ms(end), final, matches, match)]

    def _slice(self, start: int, end: int) -> np.ndarray:
        lo = max(start - self._audio_start, 0)
        return self._audio[lo : max(end - self._audio_start, lo)]

    def _trim(self, keep_from: int) -> None:
        cut = keep_from - self._audio_start
        if cut > 0:
            self._audio = self._audio[cut:]
            self._audio_start = keep_from
