"""Local speakers placed by their voice, on real speech of three LibriSpeech readers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import read_speech, speech_files
from voiceprint.diarization.newcomers import place
from voiceprint.diarization.segmentation import FRAME_STEP, Segmentation, window_starts
from voiceprint.engine import VoiceEngine

RATE = 16000
READERS = ("1688", "2033", "1998")


def _speech(engine: VoiceEngine, reader: str, index: int, seconds: float) -> np.ndarray:
    wave = read_speech(speech_files("librispeech", reader)[index])[0]
    start = engine.detector.segments(wave)[0].start
    return wave[start : start + int(seconds * RATE)]


@pytest.fixture(scope="module")
def window(engine: VoiceEngine) -> tuple[np.ndarray, Segmentation]:
    """10 s: 4 s of the first reader, 4 s of the second, 2 s of the third, each one local
    speaker of the window."""
    wave = np.concatenate(
        [_speech(engine, r, 1, s) for r, s in zip(READERS, (4, 4, 2), strict=True)]
    )
    seg = Segmentation(window_starts(len(wave)), np.zeros((1, 589, 3), bool), np.zeros((1, 589, 3)))
    start = seg.frame_samples(0)
    for k, (a, b) in enumerate(((0, 4), (4, 8), (8, 10))):
        seg.activity[0, :, k] = (start >= a * RATE) & (start + FRAME_STEP <= b * RATE)
    return wave, seg


def test_unlinked_local_speakers_join_the_voice_they_match_or_become_new(
    engine: VoiceEngine, window: tuple[np.ndarray, Segmentation]
) -> None:
    wave, seg = window
    # The speakers found so far: the first two readers, from other recordings.
    voices = np.stack([engine.encoder.embed(_speech(engine, r, 2, 6)) for r in READERS[:2]])
    linked, grown = place(wave, seg, {}, voices, engine.encoder, room=1)
    assert linked == {(0, 0): 0, (0, 1): 1, (0, 2): 2}
    assert len(grown) == 3 and np.array_equal(grown[:2], voices)
    # A link already made stands, and the voice it took is not free in that window. The
    # first reader sounds like that voice as much as one person's two recordings do (0.7
    # here): the segmentation split one speaker, so it stays unplaced rather than become
    # a ghost speaker; the third reader is new.
    linked, grown = place(wave, seg, {(0, 1): 0}, voices, engine.encoder, room=1)
    assert linked == {(0, 1): 0, (0, 2): 2} and len(grown) == 3
    # Below ``same`` (here never reached), the first reader is someone else there (the
    # window holds them apart), a new speaker as the third is; without room for both,
    # neither is placed.
    linked, kept = place(wave, seg, {(0, 1): 0}, voices, engine.encoder, room=1, same=1.01)
    assert linked == {(0, 1): 0}
    assert np.array_equal(kept, voices)
    linked, grown = place(wave, seg, {(0, 1): 0}, voices, engine.encoder, room=2, same=1.01)
    assert linked[0, 1] == 0 and len(grown) == 4
    assert {linked[0, 0], linked[0, 2]} == {2, 3}
    # So too when the taken voice is the only one found so far.
    linked, grown = place(wave, seg, {(0, 1): 0}, voices[:1], engine.encoder, room=2, same=1.01)
    assert linked[0, 1] == 0 and len(grown) == 3
    assert {linked[0, 0], linked[0, 2]} == {1, 2}
    linked, grown = place(wave, seg, {(0, 1): 0}, voices[:1], engine.encoder, room=2)
    assert linked == {(0, 1): 0, (0, 2): 1} and len(grown) == 2
