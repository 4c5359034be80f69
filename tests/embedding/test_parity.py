"""The ONNX encoder must reproduce SpeechBrain's embeddings (fixture made by bench/)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import DATA, REPO
from voiceprint.audio.decode import decode_audio
from voiceprint.engine import VoiceEngine

REFERENCE = json.loads((REPO / "tests/fixtures/speechbrain_reference.json").read_text())


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("clip", REFERENCE["clips"], ids=lambda c: c["path"])
def test_embedding_matches_speechbrain(engine: VoiceEngine, clip: dict) -> None:
    audio = decode_audio((DATA / clip["path"]).read_bytes())
    ours = engine.embed_raw(audio)
    assert _cosine(ours, np.array(clip["embedding"])) >= 0.9999


def test_reference_covers_every_set_including_8khz() -> None:
    sets = {clip["path"].split("/")[0] for clip in REFERENCE["clips"]}
    assert sets == {"speechocean762", "librispeech", "aishell", "fsdd"}


def test_batch_equals_single_clips(engine: VoiceEngine) -> None:
    waves = [decode_audio((DATA / c["path"]).read_bytes()).samples for c in REFERENCE["clips"][:4]]
    batch = engine.encoder.embed_batch(waves)
    for wave, embedding in zip(waves, batch, strict=True):
        # Padding in a batch shifts conv edges slightly, as in SpeechBrain.
        assert _cosine(embedding, engine.encoder.embed(wave)) > 0.999
