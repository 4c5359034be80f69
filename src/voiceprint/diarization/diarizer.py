"""Diarization: speech windows -> embeddings -> speakers -> turns -> voices.

The VAD finds speech; each stretch of speech is cut into 1.5 s windows every
0.75 s (shorter stretches form one window), which are embedded by the model
the service runs and clustered (``clustering``; a phone call's windows at a higher
threshold, since every window carries the line). Every 10 ms of speech then
takes the speaker of the nearest window centre, so a change of speaker inside
a stretch without a pause is placed to within about half a hop, and runs of
one speaker become turns. Each speaker's voice is then embedded from up to
30 s of their turns, as a probe would be; a speaker with under 3 s of speech
whose voice resembles another's joins that speaker (a 1.5 s window is a noisy
sample of a voice, so a few odd windows of one person form a cluster of their
own more often than a second person says so little).

Last, the segmentation model adds the speech the VAD missed, two speakers at
once where it hears them, and gives a stretch of the VAD's speech to another
speaker where its windows clearly hear someone else (``reconstruction``); the
voices stay as they were, and the turns the VAD found keep their edges.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from voiceprint.audio.limits import SAMPLE_RATE
from voiceprint.audio.vad import Segment
from voiceprint.diarization.clustering import cluster
from voiceprint.diarization.newcomers import place
from voiceprint.diarization.reconstruction import links, relabelled, runs, speakers_per_frame
from voiceprint.diarization.segmentation import FRAME_STEP
from voiceprint.engine import VoiceEngine
from voiceprint.scoring.scorer import cosine_matrix

WINDOW = int(1.5 * SAMPLE_RATE)
HOP = int(0.75 * SAMPLE_RATE)
MIN_WINDOW = int(0.5 * SAMPLE_RATE)  # shorter speech takes its neighbours' speaker
FRAME = SAMPLE_RATE // 100
MIN_TURN = int(0.3 * SAMPLE_RATE)  # a shorter run inside speech joins its neighbour
BATCH = 8  # windows per inference: larger batches ran no faster and held 150 MB more
# Batches of windows embedded at once. One inference of eight 1.5 s windows leaves its
# threads idle part of the time, and two at once fill the cores: on 2 cores a 10-minute
# recording took 12.3-12.4 s through a fresh server against 14.9-16.5 s one batch at a
# time, with the same turns, and the server's peak RSS rose 37 MB. Computing the next
# batch's features beside a single inference gained nothing (they take 0.6 s of 7.3). The
# speakers' voices (up to 30 s each) are embedded one at a time: two at once held 65 MB
# more for little more speed.
LANES = 2
# Windows of one speaker are more alike than this (cosine, average linkage); chosen on
# conversations built from the calibration speakers (bench/diarization.py).
THRESHOLD = 0.30
# Over a phone line every window carries the line, and different callers' windows are more
# alike than 0.30: on 30 conversations of the calibration's fitting callers, 0.35 took
# confusion from 23 to 16 % and kept the speaker count right as often (README, diarization).
PHONE_LINE_THRESHOLD = 0.35
VOICE_LIMIT = 30 * SAMPLE_RATE  # a speaker's voice is embedded from this much of their speech
# A speaker with less speech than SHORT_SPEECH joins the speaker whose voice is at least
# SHORT_ALIKE alike (cosine); both chosen on 120 conversations of the calibration speakers.
SHORT_SPEECH = 3 * SAMPLE_RATE
SHORT_ALIKE = 0.33


# Voices already embedded, by the stretches of speech they were embedded from: a live
# stream diarizes its turn again as it grows, and an unchanged voice is not embedded twice.
KnownVoices = dict[tuple[tuple[int, int], ...], np.ndarray]


@dataclass(frozen=True)
class Turn:
    start: int  # samples
    end: int
    speaker: int  # 0, 1, ... in order of first appearance


@dataclass(frozen=True)
class Diarization:
    turns: list[Turn]
    voices: np.ndarray  # [speakers, D]: speaker i's embedding, from up to 30 s of their turns

    @property
    def speakers(self) -> int:
        return len(self.voices)


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


def _widened(segments: list[Segment], length: int) -> list[tuple[int, int]]:
    """The longest segment widened to MIN_WINDOW about its centre (within ``length``)."""
    if not segments:
        return []
    longest = max(segments, key=lambda seg: seg.end - seg.start)
    start = max(0, min((longest.start + longest.end - MIN_WINDOW) // 2, length - MIN_WINDOW))
    return [(start, min(length, start + MIN_WINDOW))]


class Diarizer:
    def __init__(self, voice: VoiceEngine, threshold: float = THRESHOLD) -> None:
        self.voice = voice
        self.threshold = threshold

    def threshold_for(self, phone_line: bool) -> float:
        """The clustering's bar: a phone line's for narrow-band speech."""
        return PHONE_LINE_THRESHOLD if phone_line else self.threshold

    def embed_windows(self, wave: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
        def embedded(batch: list[tuple[int, int]]) -> np.ndarray:
            return self.voice.encoder.embed_batch([wave[s:e] for s, e in batch])

        with ThreadPoolExecutor(LANES) as lanes:
            rows = list(
                lanes.map(embedded, [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)])
            )
        return np.concatenate(rows) if rows else np.zeros((0, self.voice.encoder.dim), np.float32)

    def diarize(
        self,
        wave: np.ndarray,
        segments: list[Segment],
        *,
        num_speakers: int | None = None,
        min_speakers: int = 1,
        max_speakers: int | None = None,
        phone_line: bool = False,
    ) -> Diarization:
        """``phone_line``: the recording is narrow-band, and its windows are clustered at
        PHONE_LINE_THRESHOLD."""
        # Speech too short for any window (a faint recording) still gets a speaker.
        spans = windows_of(segments) or _widened(segments, len(wave))
        found = self.diarize_windows(
            wave,
            segments,
            spans,
            self.embed_windows(wave, spans),
            num_speakers=num_speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
            threshold=self.threshold_for(phone_line),
        )
        room = 0 if num_speakers is not None else (max_speakers or 99) - found.speakers
        return self.with_missed_speech(wave, found, room, phone_line=phone_line)

    def with_missed_speech(
        self, wave: np.ndarray, found: Diarization, room: int, *, phone_line: bool = False
    ) -> Diarization:
        """``found`` (the VAD's speech) with the speech the segmentation hears beyond it,
        and up to ``room`` speakers the VAD's speech did not hold apart (``phone_line``:
        see ``reconstruction.relabelled``)."""
        primary = np.full(-(-len(wave) // FRAME_STEP), -1)
        for t in found.turns:
            primary[t.start // FRAME_STEP : -(-t.end // FRAME_STEP)] = t.speaker
        seg = self.voice.segmenter.segment(wave)
        linked, voices = place(
            wave, seg, links(seg, primary, found.speakers), found.voices, self.voice.encoder, room
        )
        if len(voices) == 0:
            return found
        heard = relabelled(seg, primary, linked, len(voices), phone_line=phone_line)
        moved = heard != primary
        active = speakers_per_frame(seg, heard, linked, len(voices))
        held = np.flatnonzero((primary >= 0) & ~moved)
        active[held, primary[held]] = False  # the VAD's turns are kept to the sample
        extra = [
            Turn(a * FRAME_STEP, min(b * FRAME_STEP, len(wave)), s) for a, b, s in runs(active)
        ]
        kept = _carved(found.turns, moved)
        turns = _joined(sorted([*kept, *extra], key=lambda t: (t.start, t.speaker)))
        order = list(dict.fromkeys(t.speaker for t in turns))
        rank = {speaker: i for i, speaker in enumerate(order)}
        return Diarization([Turn(t.start, t.end, rank[t.speaker]) for t in turns], voices[order])

    def diarize_windows(
        self,
        wave: np.ndarray,
        segments: list[Segment],
        spans: list[tuple[int, int]],
        embeddings: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int = 1,
        max_speakers: int | None = None,
        known: KnownVoices | None = None,
        threshold: float | None = None,
    ) -> Diarization:
        """``diarize`` from window embeddings already at hand (a live stream embeds its
        windows as the audio arrives); voices found in ``known`` are not embedded again, and
        new ones are added to it. ``threshold``: the clustering's, if not the diarizer's."""
        labels = cluster(
            embeddings,
            self.threshold if threshold is None else threshold,
            num_speakers=num_speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
        )
        turns = _turns(segments, spans, labels)
        voices = {s: self._voice_of(wave, turns, s, known) for s in {t.speaker for t in turns}}
        if num_speakers is None:
            turns = self.join_short_speakers(wave, turns, voices, min_speakers, known)
        order = list(dict.fromkeys(t.speaker for t in turns))
        rank = {speaker: i for i, speaker in enumerate(order)}
        vectors = [voices[s] for s in order]
        return Diarization(
            [Turn(t.start, t.end, rank[t.speaker]) for t in turns],
            np.stack(vectors) if vectors else np.zeros((0, self.voice.encoder.dim), np.float32),
        )

    def _voice_of(
        self, wave: np.ndarray, turns: list[Turn], speaker: int, known: KnownVoices | None
    ) -> np.ndarray:
        """The speaker's voice, from the first VOICE_LIMIT of their speech."""
        spans: list[tuple[int, int]] = []
        left = VOICE_LIMIT
        for t in turns:
            if t.speaker == speaker and left > 0:
                spans.append((t.start, min(t.end, t.start + left)))
                left -= spans[-1][1] - t.start
        key = tuple(spans)
        if known is not None and key in known:
            return known[key]
        vector = self.voice.encoder.embed(np.concatenate([wave[s:e] for s, e in spans]))
        if known is not None:
            known[key] = vector
        return vector

    def join_short_speakers(
        self,
        wave: np.ndarray,
        turns: list[Turn],
        voices: dict[int, np.ndarray],
        at_least: int,
        known: KnownVoices | None = None,
    ) -> list[Turn]:
        """Speakers with little speech join the speaker they sound like, the least-heard first;
        ``voices`` is updated in place."""
        while len(voices) > max(at_least, 1):
            speakers = list(voices)
            speech = {s: sum(t.end - t.start for t in turns if t.speaker == s) for s in speakers}
            vectors = np.stack([voices[s] for s in speakers])
            alike = cosine_matrix(vectors, vectors)
            np.fill_diagonal(alike, -1.0)
            joins = [
                (i, int(alike[i].argmax()))
                for i in sorted(range(len(speakers)), key=lambda i: speech[speakers[i]])
                if speech[speakers[i]] < SHORT_SPEECH and alike[i].max() >= SHORT_ALIKE
            ]
            if not joins:
                break
            short, into = speakers[joins[0][0]], speakers[joins[0][1]]
            turns = _joined(
                [Turn(t.start, t.end, into if t.speaker == short else t.speaker) for t in turns]
            )
            del voices[short]
            voices[into] = self._voice_of(wave, turns, into, known)
        return turns


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


def _carved(turns: list[Turn], moved: np.ndarray) -> list[Turn]:
    """``turns`` less the segmentation frames marked in ``moved`` (given to someone else);
    the edges that stay are kept to the sample."""
    out: list[Turn] = []
    for t in turns:
        first = t.start // FRAME_STEP
        cut = moved[first : -(-t.end // FRAME_STEP)]
        if not cut.any():
            out.append(t)
            continue
        for a, b, _ in runs(~cut[:, None]):
            start = t.start if a == 0 else (first + a) * FRAME_STEP
            end = t.end if b == len(cut) else (first + b) * FRAME_STEP
            out.append(Turn(start, end, t.speaker))
    return out


def _joined(turns: list[Turn]) -> list[Turn]:
    """Turns of one speaker less than a frame apart as one (other speakers' turns may
    overlap them)."""
    out: list[Turn] = []
    last: dict[int, int] = {}  # speaker -> index of their latest turn in out
    for turn in turns:
        i = last.get(turn.speaker)
        if i is not None and turn.start - out[i].end < FRAME_STEP:
            out[i] = Turn(out[i].start, max(out[i].end, turn.end), turn.speaker)
        else:
            last[turn.speaker] = len(out)
            out.append(turn)
    return out


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
