"""Voice activity detection with Silero VAD (ONNX), run on ONNX Runtime.

The model scores 32 ms windows (512 samples at 16 kHz, plus 64 samples of
context from the previous window) with a recurrent state, all windows of a
clip in one call (``vad_graph``: Silero's step inside an ONNX Scan). Windows are turned
into speech segments with hysteresis, the way Silero's reference
``get_speech_timestamps`` does: start above ``threshold``, end after
``min_silence_s`` below ``threshold - 0.15``, drop segments shorter than
``min_speech_s``, pad each side by ``pad_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from voiceprint.audio.limits import SAMPLE_RATE

WINDOW = 512
CONTEXT = 64
THRESHOLD = 0.5  # speech starts above this probability...
PAD_S = 0.03  # ...and each segment is padded by this much on both sides


def off_threshold(threshold: float) -> float:
    """Speech ends below this, Silero's hysteresis."""
    return max(threshold - 0.15, 0.01)


@dataclass(frozen=True)
class Segment:
    start: int  # sample index, inclusive
    end: int  # sample index, exclusive

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


class SpeechDetector:
    """Finds speech in 16 kHz mono audio. Thread-safe: each call keeps its own state."""

    def __init__(
        self,
        model_path: Path,
        *,
        threshold: float = THRESHOLD,
        min_speech_s: float = 0.25,
        min_silence_s: float = 0.1,
        pad_s: float = PAD_S,
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self.threshold = threshold
        self.min_speech = int(min_speech_s * SAMPLE_RATE)
        self.min_silence = int(min_silence_s * SAMPLE_RATE)
        self.pad = int(pad_s * SAMPLE_RATE)

    def probabilities(self, wave: np.ndarray) -> np.ndarray:
        """Speech probability of each 32 ms window."""
        n_windows = -(-len(wave) // WINDOW)
        if n_windows == 0:
            return np.zeros(0, dtype=np.float32)
        padded = np.zeros(n_windows * WINDOW + CONTEXT, dtype=np.float32)
        padded[CONTEXT : CONTEXT + len(wave)] = wave
        windows = np.lib.stride_tricks.sliding_window_view(padded, WINDOW + CONTEXT)[::WINDOW]
        (probs,) = self._session.run(["probs"], {"windows": np.ascontiguousarray(windows)})
        return probs[:, 0, 0]

    def segments(self, wave: np.ndarray, threshold: float | None = None) -> list[Segment]:
        """Speech segments; ``threshold`` replaces the detector's own for this call."""
        on = self.threshold if threshold is None else threshold
        probs = self.probabilities(wave)
        off = off_threshold(on)
        raw: list[list[int]] = []
        start: int | None = None
        silence_since: int | None = None
        for i, p in enumerate(probs):
            pos = i * WINDOW
            if p >= on:
                silence_since = None
                if start is None:
                    start = pos
            elif start is not None and p < off:
                if silence_since is None:
                    silence_since = pos
                if pos + WINDOW - silence_since >= self.min_silence:
                    raw.append([start, silence_since])
                    start, silence_since = None, None
        if start is not None:
            raw.append([start, len(wave)])

        merged: list[Segment] = []
        for s, e in raw:
            if e - s < self.min_speech:
                continue
            s, e = max(0, s - self.pad), min(len(wave), e + self.pad)
            if merged and s <= merged[-1].end:
                merged[-1] = Segment(merged[-1].start, e)
            else:
                merged.append(Segment(s, e))
        return merged


def speech_only(wave: np.ndarray, segments: list[Segment]) -> np.ndarray:
    """The speech segments of ``wave``, joined end to end."""
    if not segments:
        return wave[:0]
    return np.concatenate([wave[s.start : s.end] for s in segments])


def step_session(step_model: Path) -> ort.InferenceSession:
    """Silero's published one-window graph, for streams."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(step_model), options, providers=["CPUExecutionProvider"])


class StreamingSpeechDetector:
    """Speech starts and ends in a live stream, window by window (Silero's own step graph,
    its state carried between windows), with the hysteresis and padding of
    ``SpeechDetector``, so a stream's turns line up with the segments found offline."""

    def __init__(
        self,
        step: ort.InferenceSession,
        *,
        threshold: float = THRESHOLD,
        min_silence_s: float = 0.3,
        pad_s: float = PAD_S,
    ) -> None:
        self._session = step  # shared by every stream: the state is kept here, not in it
        self.threshold = threshold
        self.min_silence = int(min_silence_s * SAMPLE_RATE)
        self.pad = int(pad_s * SAMPLE_RATE)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._buffer = np.zeros(CONTEXT, dtype=np.float32)  # context of the next window
        self._position = 0  # samples of the stream consumed
        self.speech_start: int | None = None
        self._silence_since: int | None = None

    @property
    def pending_stop(self) -> int | None:
        """Where the speech stops if the silence now begun lasts; None while speech goes on
        (or none is heard)."""
        if self.speech_start is None or self._silence_since is None:
            return None
        return self._silence_since + self.pad

    def feed(self, samples: np.ndarray) -> list[tuple[str, int]]:
        """("start", offset) and ("stop", offset) events, in samples of the stream."""
        self._buffer = np.concatenate([self._buffer, samples.astype(np.float32)])
        events = []
        sr = np.array(SAMPLE_RATE, dtype=np.int64)
        off = off_threshold(self.threshold)
        while len(self._buffer) >= WINDOW + CONTEXT:
            window = self._buffer[: WINDOW + CONTEXT][None]
            prob, self._state = self._session.run(
                None, {"input": window, "state": self._state, "sr": sr}
            )
            self._buffer = self._buffer[WINDOW:]
            position, self._position = self._position, self._position + WINDOW
            p = float(prob[0, 0])
            if p >= self.threshold:
                self._silence_since = None
                if self.speech_start is None:
                    self.speech_start = max(position - self.pad, 0)
                    events.append(("start", self.speech_start))
            elif self.speech_start is not None and p < off:
                if self._silence_since is None:
                    self._silence_since = position
                if self._position - self._silence_since >= self.min_silence:
                    events.append(("stop", self._silence_since + self.pad))
                    self.speech_start, self._silence_since = None, None
        return events

    def finish(self) -> list[tuple[str, int]]:
        """The end of the stream ends any speech."""
        if self.speech_start is None:
            return []
        end = self.pending_stop if self.pending_stop is not None else self._position
        self.speech_start, self._silence_since = None, None
        return [("stop", end)]
