"""Silero VAD on real speech with real silence around it."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import soxr

from tests.conftest import read_speech, speech_files
from voiceprint.audio.vad import CONTEXT, WINDOW, speech_only
from voiceprint.embedding.provision import ModelPaths
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


def test_one_call_per_clip_equals_silero_window_by_window(
    engine: VoiceEngine, model_paths: ModelPaths
) -> None:
    """The Scan-wrapped graph gives exactly the probabilities of Silero's own step calls."""
    step = ort.InferenceSession(str(model_paths.vad_step_onnx), providers=["CPUExecutionProvider"])
    mp3, rate = read_speech(speech_files("commonvoice_zh")[0])
    wave = soxr.resample(mp3, rate, 16000).astype(np.float32)
    n = -(-len(wave) // WINDOW)
    padded = np.zeros(n * WINDOW + CONTEXT, dtype=np.float32)
    padded[CONTEXT : CONTEXT + len(wave)] = wave
    state = np.zeros((2, 1, 128), dtype=np.float32)
    expected = []
    for i in range(n):
        chunk = padded[i * WINDOW : i * WINDOW + WINDOW + CONTEXT][None]
        prob, state = step.run(None, {"input": chunk, "state": state, "sr": np.array(16000)})
        expected.append(prob[0, 0])
    probs = engine.detector.probabilities(wave)
    assert probs.shape == (n,) and 0.2 < np.mean(probs > 0.5) < 1.0
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert engine.detector.probabilities(wave[:0]).shape == (0,)
