"""The ONNX encoders must reproduce their reference implementations (fixtures made by bench/):
SpeechBrain's ECAPA-TDNN and 3D-Speaker's CAM++ (their fbank, CMN and network)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import DATA, REPO, models_of
from voiceprint.audio.decode import decode_audio

FIXTURES = {
    "ecapa-voxceleb": "speechbrain_reference.json",
    "campplus-zh-en": "campplus_reference.json",
}
REFERENCES = {
    name: json.loads((REPO / "tests/fixtures" / file).read_text())
    for name, file in FIXTURES.items()
}
CASES = [(name, clip) for name, ref in REFERENCES.items() for clip in ref["clips"]]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize(("name", "clip"), CASES, ids=[f"{n}:{c['path']}" for n, c in CASES])
def test_embedding_matches_the_reference(name: str, clip: dict) -> None:
    audio = decode_audio((DATA / clip["path"]).read_bytes())
    ours = models_of(name).voice.embed_raw(audio)
    assert _cosine(ours, np.array(clip["embedding"])) >= 0.9999


def test_references_cover_every_set_including_8khz_and_mp3() -> None:
    assert {c["path"].split("/")[0] for c in REFERENCES["ecapa-voxceleb"]["clips"]} == {
        "speechocean762",
        "librispeech",
        "aishell",
        "fsdd",
    }
    sets = {clip["path"].split("/")[0] for clip in REFERENCES["campplus-zh-en"]["clips"]}
    index_sets = {line.split("\t")[0] for line in (DATA / "index.tsv").read_text().splitlines()[1:]}
    assert sets == index_sets
    assert any(c["path"].endswith(".mp3") for c in REFERENCES["campplus-zh-en"]["clips"])


@pytest.mark.parametrize("name", list(FIXTURES))
def test_batch_equals_single_clips(name: str) -> None:
    encoder = models_of(name).voice.encoder
    clips = REFERENCES[name]["clips"][:4]
    waves = [decode_audio((DATA / c["path"]).read_bytes()).samples for c in clips]
    waves.append(waves[0].copy())  # two of equal length share a batch
    batch = encoder.embed_batch(waves)
    for wave, embedding in zip(waves, batch, strict=True):
        # ECAPA pads to the longest clip, which shifts conv edges slightly (as in SpeechBrain).
        assert _cosine(embedding, encoder.embed(wave)) > 0.999
