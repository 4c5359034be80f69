"""The ONNX segmentation model must reproduce pyannote's PyTorch PyanNet with the original
segmentation-3.0 weights (fixture made by bench/segmentation_reference.py) on real audio."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import DATA, REPO
from voiceprint.audio.decode import decode_audio
from voiceprint.diarization.segmentation import WINDOW, Segmenter, window_starts
from voiceprint.engine import VoiceEngine

REFERENCE = json.loads((REPO / "tests/fixtures/segmentation_reference.json").read_text())
WINDOWS = REFERENCE["windows"]


def _window(path: str, start_s: int) -> np.ndarray:
    wave = decode_audio((DATA / path).read_bytes()).samples
    window = np.zeros(WINDOW, np.float32)
    piece = wave[start_s * 16000 : start_s * 16000 + WINDOW]
    window[: len(piece)] = piece
    return window


@pytest.fixture(scope="module")
def segmenter(engine: VoiceEngine) -> Segmenter:
    return engine.segmenter


@pytest.mark.parametrize("case", WINDOWS, ids=[f"{w['path']}@{w['start_s']}" for w in WINDOWS])
def test_window_matches_the_reference(segmenter: Segmenter, case: dict) -> None:
    reference = np.array(case["permille"]) / 1000
    ours = np.exp(segmenter.log_probs(_window(case["path"], case["start_s"])[None])[0])
    assert ours.shape == reference.shape == (589, 7)
    assert np.abs(ours - reference).max() < 0.002  # the fixture keeps thousandths
    assert (ours.argmax(axis=1) == reference.argmax(axis=1)).mean() > 0.995


def test_references_hold_speech_overlap_and_a_telephone_call() -> None:
    classes = np.concatenate([np.array(w["permille"]).argmax(axis=1) for w in WINDOWS])
    assert (classes == 0).mean() < 0.5  # mostly speech
    assert (classes >= 4).sum() > 50  # two local speakers at once, many frames
    assert any(w["path"].startswith("telephone/") for w in WINDOWS)
    assert len({w["path"] for w in WINDOWS if w["path"].startswith("conversations/")}) == 6


def test_batched_windows_equal_single_ones(segmenter: Segmenter) -> None:
    windows = np.stack([_window(w["path"], w["start_s"]) for w in WINDOWS[:3]])
    batch = segmenter.log_probs(windows)
    for window, row in zip(windows, batch, strict=True):
        assert np.abs(segmenter.log_probs(window[None])[0] - row).max() < 1e-4


def test_windows_cover_the_whole_recording() -> None:
    assert window_starts(3 * 16000).tolist() == [0]  # shorter than a window: padded
    starts = window_starts(27 * 16000)
    assert starts.tolist() == [0, 80000, 160000, 240000, 272000]  # the last ends with the recording
    assert starts[-1] + WINDOW == 27 * 16000
    # A recording a few samples over a multiple of the step is not read twice at its end.
    assert window_starts(30 * 16000 + 1).tolist() == [0, 80000, 160000, 240000, 320001]
