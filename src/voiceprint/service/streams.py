"""Who is speaking now: one live stream identified against a group's voiceprints.

Audio arrives in pieces (``append``); a window-by-window VAD marks where speech
starts and stops. While a turn goes on, every further second of it gets an
interim answer (its last 3 s, scored against the group as ``speaker_identify``
scores a probe), and its diarization windows are embedded as their audio
arrives. When the newest window sounds unlike the part of the turn so far, the
turn's latest seconds go through the segmentation model (``diarization.changes``),
and where it hears one voice the part's windows are clustered as the diarizer
clusters them: when another speaker has taken over without a pause in the latest
seconds, the part before the change is answered then and there, and the turn goes
on as a new part. When the turn stops, its last part is diarized from those
windows, so a change found neither way is still caught, and each speaker's part
gets a final answer, scored from all of that speaker's speech in the part.

The final answers are worked out as soon as a silence begins, while the VAD
waits to see whether it lasts, and sent when it has: so they come about as
soon as the turn is known to have ended. Nothing is stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from voiceprint.audio.limits import SAMPLE_RATE, to_ms
from voiceprint.audio.quality import is_narrowband, rounding_power, upper_band_db
from voiceprint.audio.stream import StreamAudio, StreamDecoder, StreamFormat
from voiceprint.audio.vad import Segment
from voiceprint.diarization.changes import change_sample, window_change
from voiceprint.diarization.diarizer import HOP, WINDOW, Diarizer, KnownVoices, windows_of
from voiceprint.engine import VoiceEngine
from voiceprint.scoring.ranking import Candidate, Match, rank
from voiceprint.scoring.scorer import (
    MATCH_THRESHOLD,
    Gallery,
    Scorer,
    Voices,
    combine,
    cosine_matrix,
)
from voiceprint.service.errors import InvalidParameter, Overloaded

INTERIM_EVERY = SAMPLE_RATE  # an interim answer per second of a turn
INTERIM_SPAN = 3 * SAMPLE_RATE  # interims score the last 3 s: who is speaking now
MIN_SCORED = SAMPLE_RATE // 2  # shorter speech is too little to score
PRE_ROLL = SAMPLE_RATE // 2  # audio kept before speech starts (the VAD decides late)
# The segmentation looks for a change of speaker only when the part's newest window is
# less alike than this to the part's voice so far (its windows before the two newest):
# in bench/stream_changes.py's talks a window of the same speaker fell below it 0-4 % of
# the time, the window ending 1-1.75 s after a change mostly did. Reading every turn each
# second instead cost as much as the rest of the stream, and 16 streams no longer kept up.
SUSPECT_BELOW = 0.5
# ...in the turn's latest 4 s: room for the second before the change and the one after.
CHANGE_SPAN = 4 * SAMPLE_RATE


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
        voiceprints: Voices | Gallery,
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
        self._audio = StreamAudio()
        self._started_at: float | None = None
        self._new_part(0)

    def _new_part(self, start: int) -> None:
        """A turn is answered in parts: one starts with the turn, another at a change of
        speaker heard inside it."""
        self._part_from = start  # stream offset where the current (or last) part started
        self._next_interim = INTERIM_EVERY  # part length that earns the next interim
        self._suspect = False  # the newest window sounds unlike the part so far
        self._windows: dict[int, np.ndarray] = {}  # part offset -> its window's embedding
        self._voices: KnownVoices = {}  # the part's voices embedded so far
        self._finals: tuple[int, list[TurnAnswer]] | None = None  # worked out for a stop

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
        ahead = (self._audio.end + len(samples)) / SAMPLE_RATE - (now - self._started_at)
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
        self._audio.append(samples)
        events: list[StreamEvent] = []
        for kind, offset in self._vad.feed(samples):
            events.extend(self._on_vad(kind, offset))
        if self._vad.speech_start is None:  # between turns only a little audio is kept
            self._audio.trim(self._audio.end - PRE_ROLL)
            return events
        self._embed_windows()
        stop = self._vad.pending_stop
        if stop is not None:
            if self._finals is None or self._finals[0] != stop:
                self._finals = (stop, self._answers(self._part_from, stop))
            return events
        events.extend(self._at_change())
        if self._audio.end - self._part_from >= self._next_interim:
            self._next_interim = self._audio.end - self._part_from + INTERIM_EVERY
            interim = self._answer(max(self._part_from, self._audio.end - INTERIM_SPAN))
            events.extend(interim)
        return events

    def _at_change(self) -> list[TurnAnswer]:
        """The finals of the part before a change of speaker, once the change is heard."""
        if not self._suspect:
            return []
        self._suspect = False
        start = max(self._part_from, self._audio.end - CHANGE_SPAN)
        latest = self._audio.slice(start, self._audio.end)
        at = change_sample(self._voice.segmenter.activity(latest))
        bar = self._diarizer.threshold_for(self._narrowband(latest))
        if at is not None:
            change: int | None = start + at
        else:
            windows = np.stack([self._windows[offset] for offset in sorted(self._windows)])
            found = window_change(windows, HOP, WINDOW, bar)
            change = None if found is None else self._part_from + found
        # A change is one just heard, as in the segmentation's span; an older one the windows
        # place is left to the turn's end.
        if change is None or change < start or not self._voices_differ(change, bar):
            return []
        finals = self._answers(self._part_from, change)
        self._new_part(change)
        self._embed_windows()
        return finals

    def _voices_differ(self, change: int, bar: float) -> bool:
        """Whether the voices either side of a change heard are less alike than two
        windows of one speaker (the diarizer's ``bar``). The segmentation alone also
        split one speaker's talk where the sound of the recording changed (about 3 times
        a minute in bench/stream_changes.py's talks); the voices ruled those out."""
        first = max(self._part_from, change - INTERIM_SPAN)
        before = self._audio.slice(first, change)
        after = self._audio.slice(change, self._audio.end)
        pair = [self._voice.encoder.embed(before), self._voice.encoder.embed(after)]
        return float(cosine_matrix(pair[0], pair[1])[0, 0]) < bar

    def _on_vad(self, kind: str, offset: int) -> list[StreamEvent]:
        if kind == "start":
            self._new_part(offset)
            return [SpeechStarted(to_ms(offset))]
        if self._finals is not None and self._finals[0] == offset:
            finals = self._finals[1]
        else:
            finals = self._answers(self._part_from, offset)
        self._audio.trim(offset)
        return [SpeechStopped(to_ms(offset)), *finals]

    def _embed_windows(self) -> None:
        """Embed each diarization window of the part once its audio is here."""
        start = self._part_from + len(self._windows) * HOP
        while start + WINDOW <= self._audio.end:
            window = self._voice.encoder.embed(self._audio.slice(start, start + WINDOW))
            before = list(self._windows.values())[:-1]  # not the newest, which overlaps it
            self._windows[start - self._part_from] = window
            if before:
                alike = cosine_matrix(window, combine(np.stack(before)))[0, 0]
                self._suspect |= bool(alike < SUSPECT_BELOW)
            start += HOP

    def _answers(self, start: int, end: int) -> list[TurnAnswer]:
        """The final answers for a part of a turn: one per speaker in it."""
        turn = self._audio.slice(start, end)
        segment = [Segment(0, len(turn))]
        spans = windows_of(segment)
        if not spans:
            return []
        vectors = [
            self._windows[s] if e - s == WINDOW and s in self._windows else None for s, e in spans
        ]
        missing = [span for span, v in zip(spans, vectors, strict=True) if v is None]
        fresh = iter(self._diarizer.embed_windows(turn, missing))
        embeddings = np.stack([v if v is not None else next(fresh) for v in vectors])
        narrowband = self._narrowband(turn)
        diarization = self._diarizer.diarize_windows(
            turn, segment, spans, embeddings, known=self._voices,
            threshold=self._diarizer.threshold_for(narrowband),
        )  # fmt: skip
        voices = Voices.of(diarization.voices, narrowband)
        ranked = self._ranked(voices)
        return [
            TurnAnswer(
                to_ms(start + part.start),
                to_ms(start + part.end),
                True,
                ranked[part.speaker],
                self._is_match(ranked[part.speaker]),
            )
            for part in diarization.turns
        ]

    def _answer(self, start: int) -> list[TurnAnswer]:
        """An interim answer: the part from ``start`` to now."""
        end = self._audio.end
        wave = self._audio.slice(start, end)
        if len(wave) < MIN_SCORED:
            return []
        voices = Voices.of(self._voice.encoder.embed(wave), self._narrowband(wave))
        (matches,) = self._ranked(voices)
        return [TurnAnswer(to_ms(start), to_ms(end), False, matches, self._is_match(matches))]

    def _ranked(self, voices: Voices) -> list[list[Match]]:
        if not self._candidates:
            return [[] for _ in voices.vectors]
        scores = self._scorer.score_matrix(voices, self._voiceprints)
        return [rank(self._candidates, row, self.config.top_k) for row in scores]

    def _is_match(self, matches: list[Match]) -> bool:
        return bool(matches) and matches[0].score >= self.config.score

    def _narrowband(self, wave: np.ndarray) -> bool:
        source = self.config.audio
        rounding = rounding_power(source.source_bits, source.sample_rate)
        return is_narrowband(upper_band_db(wave, [Segment(0, len(wave))], rounding))
