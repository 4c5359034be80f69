"""The speaker encoder's working memory: a long clip's is given back after it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.conftest import read_speech, speech_files
from voiceprint.embedding.encoder import KEEP_FRAMES, SpeakerEncoder
from voiceprint.embedding.provision import ModelPaths


def _resident_mb() -> float:
    status = Path("/proc/self/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def _speech(seconds: int) -> np.ndarray:
    """Real LibriSpeech speech, recordings joined to ``seconds``."""
    parts, total = [], 0
    for path in speech_files("librispeech"):
        samples, _ = read_speech(path)
        parts.append(samples)
        total += len(samples)
        if total >= seconds * 16000:
            break
    return np.concatenate(parts)[: seconds * 16000]


def test_a_long_clip_leaves_no_memory_behind(model_paths: ModelPaths) -> None:
    # A session of its own: the shared one's arena may already hold a long clip's memory.
    encoder = SpeakerEncoder(model_paths.embedding_onnx, model_paths.spec, threads=2)
    short, long = _speech(3), _speech(30)
    assert len(long) // 160 > KEEP_FRAMES  # 10 ms frames: its memory is given back
    for _ in range(3):
        encoder.embed(short)
    before = _resident_mb()
    first = encoder.embed(long)
    encoder.embed(short)
    # Kept, a 30 s clip's working memory was about 150 MB; given back, what is left is
    # the heap's own noise.
    assert _resident_mb() - before < 40
    # Giving memory back changes no result.
    np.testing.assert_array_equal(encoder.embed(long), first)
