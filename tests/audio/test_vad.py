"""Silero VAD on real speech with real silence around it."""

from __future__ import annotations

import numpy as np

from tests.conftest import read_speech, speech_files
from voiceprint.audio.vad import speech_only
from voiceprint.engine import VoiceEngine


def test_finds_speech_between_silences(engine: VoiceEngine) -> None:
    speech, rate = read_speech(speech_files("librispeech", "3005")[0])
    silence = np.zeros(2 * rate, dtype=np.float32)
    wave = np.concatenate([silence, speech, silence])
    segments = engine.detector.segments(wave)
    assert segments
    assert segments[0].start >= 1.8 * rate
    assert segments[-1].end <= len(wave) - 1.8 * rate
    kept = len(speech_only(wave, segments)) / rate
    assert 0.5 * len(speech) / rate < kept <= len(speech) / rate + 0.1


def test_noise_and_silence_have_no_speech(engine: VoiceEngine) -> None:
    rng = np.random.default_rng(0)
    assert engine.detector.segments(np.zeros(16000 * 3, dtype=np.float32)) == []
    noise = (rng.standard_normal(16000 * 3) * 0.05).astype(np.float32)
    assert sum(s.seconds for s in engine.detector.segments(noise)) < 0.3
