"""The voice engine: decoded audio -> speech check -> speaker embedding.

Created once per process (``VoiceEngine.from_paths``) and passed to whoever
needs it. ``analyse`` is CPU-bound and thread-safe: the server calls it from a
worker thread so the event loop never blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from voiceprint.audio.decode import Audio
from voiceprint.audio.errors import NotEnoughSpeech
from voiceprint.audio.limits import SAMPLE_RATE
from voiceprint.audio.quality import (
    CONSISTENCY_WINDOW,
    check_enrolment,
    is_narrowband,
    measure,
    rounding_power,
    upper_band_db,
)
from voiceprint.audio.vad import (
    Segment,
    SpeechDetector,
    StreamingSpeechDetector,
    speech_only,
    step_session,
)
from voiceprint.diarization.segmentation import Segmenter
from voiceprint.embedding.encoder import MIN_SAMPLES, SpeakerEncoder
from voiceprint.embedding.provision import ModelPaths
from voiceprint.metrics import STAGE
from voiceprint.scoring.scorer import normalize

MAX_EMBED_SECONDS = 30
MAX_EMBED_SAMPLES = MAX_EMBED_SECONDS * SAMPLE_RATE
# What the quality report's measures mean, stored with each sample so that reports an
# earlier revision measured are measured again from the stored audio (``reembed``).
# 2: the band test takes off the rounding noise of a source's integer samples, so a call
# stored at 16 kHz in 16 bits is narrow-band (it was not before).
QUALITY_REVISION = 2


@dataclass(frozen=True)
class SpeechPolicy:
    """What a recording must hold for one use: enough speech and, to enrol, good quality."""

    label: str  # what the recording is for, as error messages name it
    min_speech_s: float
    check_enrolment: bool = False


@dataclass(frozen=True)
class Examined:
    """What a recording holds before anything is embedded: its speech and quality report."""

    segments: list[Segment]
    speech_s: float
    quality: dict[str, Any]


@dataclass(frozen=True)
class VoiceSample:
    """What one recording tells about its speaker."""

    embedding: np.ndarray  # float32 [192]
    speech_s: float
    source: Audio  # the decoded recording, with its format, rate and channels
    quality: dict[str, Any]

    @property
    def narrowband(self) -> bool:
        """Telephone-like speech, which the scorer holds to its own threshold."""
        return bool(self.quality["narrowband"])


class VoiceEngine:
    def __init__(
        self,
        encoder: SpeakerEncoder,
        detector: SpeechDetector,
        vad_step: ort.InferenceSession | None = None,
        segmenter: Segmenter | None = None,
    ) -> None:
        self.encoder = encoder
        self.detector = detector
        self._vad_step = vad_step
        self._segmenter = segmenter

    @property
    def segmenter(self) -> Segmenter:
        """Local speakers per 10 s window, overlap included (the diarizer's first step)."""
        if self._segmenter is None:
            raise RuntimeError("this engine was built without the segmentation model")
        return self._segmenter

    def stream_detector(self) -> StreamingSpeechDetector:
        """A VAD for one live stream (window by window, state of its own)."""
        if self._vad_step is None:
            raise RuntimeError("this engine was built without the VAD's step model")
        return StreamingSpeechDetector(self._vad_step)

    @classmethod
    def from_paths(
        cls, paths: ModelPaths, *, threads: int | None = None, spinning: bool = False
    ) -> VoiceEngine:
        """The engine over models already pulled (``embedding.provision.pull_models``)."""
        return cls(
            SpeakerEncoder(paths.embedding_onnx, paths.spec, threads=threads, spinning=spinning),
            SpeechDetector(paths.vad_onnx),
            step_session(paths.vad_step_onnx),
            Segmenter(paths.segmentation_onnx, threads=threads, spinning=spinning),
        )

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    @property
    def device(self) -> str:
        return self.encoder.device

    def analyse(self, audio: Audio, policy: SpeechPolicy) -> VoiceSample:
        """Check that ``audio`` holds enough speech, measure it, and embed it.

        Refuses audio with less speech than the policy asks for; for an enrolment
        also audio that is clipped, too noisy, or holds more than one voice.
        """
        examined = self.examine(audio, policy)
        # The whole clip, not only the VAD segments: on ../shared/data trimming to speech
        # raised the EER (docs/accuracy.md), so VAD measures and gates but does not cut.
        # Long clips are cut to MAX_EMBED_SECONDS from the first speech: the network's
        # memory grows with length (peak RSS 397 MB at 30 s, 1146 MB at 130 s).
        start = examined.segments[0].start if len(audio.samples) > MAX_EMBED_SAMPLES else 0
        with STAGE.labels("embedding").time():
            embedding = self.encoder.embed(audio.samples[start : start + MAX_EMBED_SAMPLES])
        return VoiceSample(embedding, examined.speech_s, audio, examined.quality)

    def examine(self, audio: Audio, policy: SpeechPolicy) -> Examined:
        """``analyse`` up to the embedding: the speech check and the quality report."""
        with STAGE.labels("vad").time():
            segments = self.detector.segments(audio.samples)
        speech = speech_only(audio.samples, segments)
        speech_s = len(speech) / SAMPLE_RATE
        needed_s = max(policy.min_speech_s, MIN_SAMPLES / SAMPLE_RATE)
        if speech_s < needed_s:
            raise NotEnoughSpeech(speech_s, needed_s, policy.label)
        signal = measure(audio.samples, segments)
        consistency = self.voice_consistency(speech) if policy.check_enrolment else None
        rounding = rounding_power(audio.source_bits, audio.source_rate)
        upper_band = upper_band_db(audio.samples, segments, rounding)
        quality = {
            "duration_s": round(audio.duration, 3),
            "speech_s": round(speech_s, 3),
            "level_dbfs": signal.level_dbfs,
            "snr_db": signal.snr_db,
            "clipping_ratio": signal.clipping_ratio,
            "voice_consistency": consistency,
            "upper_band_db": upper_band,
            "narrowband": is_narrowband(upper_band),
        }
        if policy.check_enrolment:
            check_enrolment(signal, consistency, self.encoder.spec.min_voice_consistency)
        return Examined(segments, speech_s, quality)

    def voice_consistency(self, speech: np.ndarray) -> float | None:
        """How alike the parts of the speech sound: the lowest similarity of one part to the
        others. One voice scores high; a second voice pulls it down. None when too short."""
        n_parts = min(len(speech) // CONSISTENCY_WINDOW, 6)
        if n_parts < 2:
            return None
        step = len(speech) // n_parts
        parts = [speech[i * step : i * step + CONSISTENCY_WINDOW] for i in range(n_parts)]
        vectors = normalize(self.encoder.embed_batch(parts))
        others = normalize(vectors.sum(axis=0, keepdims=True) - vectors)
        return round(float(np.min(np.sum(vectors * others, axis=1))), 3)

    def embed_raw(self, audio: Audio) -> np.ndarray:
        """Embedding of the whole clip, no VAD: what SpeechBrain would compute."""
        return self.encoder.embed(audio.samples)
