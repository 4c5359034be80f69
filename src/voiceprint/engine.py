"""The voice engine: audio bytes -> speech -> speaker embedding.

Created once per process (``VoiceEngine.load``) and passed to whoever needs
it. ``analyze`` is CPU-bound and thread-safe: the server calls it from a
worker thread so the event loop never blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voiceprint.audio.decode import Audio
from voiceprint.audio.errors import NotEnoughSpeech
from voiceprint.audio.vad import SpeechDetector, speech_only
from voiceprint.embedding.encoder import MIN_SAMPLES, SpeakerEncoder
from voiceprint.embedding.provision import pull_models


@dataclass(frozen=True)
class VoiceSample:
    """What one recording tells about its speaker."""

    embedding: np.ndarray  # float32 [192]
    duration_s: float
    speech_s: float
    source_format: str
    quality: dict[str, Any]


class VoiceEngine:
    def __init__(self, encoder: SpeakerEncoder, detector: SpeechDetector) -> None:
        self.encoder = encoder
        self.detector = detector

    @classmethod
    def load(cls, model_dir: Path, *, threads: int | None = None) -> VoiceEngine:
        """Load the models, fetching and converting them first if needed."""
        paths = pull_models(model_dir)
        return cls(
            SpeakerEncoder(paths.embedding_onnx, threads=threads), SpeechDetector(paths.vad_onnx)
        )

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    def analyze(self, audio: Audio, *, min_speech_s: float, purpose: str) -> VoiceSample:
        """Embed the speech in ``audio``; refuse it when there is less than ``min_speech_s``."""
        segments = self.detector.segments(audio.samples)
        speech = speech_only(audio.samples, segments)
        speech_s = len(speech) / 16_000
        if speech_s < min_speech_s or len(speech) < MIN_SAMPLES:
            raise NotEnoughSpeech(speech_s, max(min_speech_s, MIN_SAMPLES / 16_000), purpose)
        quality = {"duration_s": round(audio.duration, 3), "speech_s": round(speech_s, 3)}
        return VoiceSample(
            self.encoder.embed(speech), audio.duration, speech_s, audio.source_format, quality
        )

    def embed_raw(self, audio: Audio) -> np.ndarray:
        """Embedding of the whole clip, no VAD: what SpeechBrain would compute."""
        return self.encoder.embed(audio.samples)
