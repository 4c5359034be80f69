"""A change of speaker at the live end of a turn: written-out frames and windows, then real
speech."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import read_speech, speech_files
from voiceprint.audio.vad import speech_only
from voiceprint.diarization.changes import change_frame, change_sample, window_change
from voiceprint.diarization.diarizer import HOP, THRESHOLD, WINDOW
from voiceprint.engine import VoiceEngine

SECOND = 16000 // 270  # frames of the segmentation model in a second (59)


def _frames(*runs: tuple[int, int]) -> np.ndarray:
    """[frames, 3] activity from (local speaker or -1 for nobody, frames) runs."""
    rows = []
    for speaker, length in runs:
        row = np.zeros((length, 3), dtype=bool)
        if speaker >= 0:
            row[:, speaker] = True
        rows.append(row)
    return np.concatenate(rows)


def test_a_speaker_who_takes_over_after_another_is_a_change() -> None:
    assert change_frame(_frames((0, 2 * SECOND), (1, SECOND))) == 2 * SECOND
    assert change_frame(_frames((0, 2 * SECOND), (-1, 10), (1, SECOND))) == 2 * SECOND


@pytest.mark.parametrize(
    "runs",
    [
        [(0, 4 * SECOND)],  # one speaker throughout
        [(0, 2 * SECOND), (1, 10), (0, 2 * SECOND)],  # an interjection of 0.17 s
        [(0, SECOND // 2), (1, 3 * SECOND)],  # too little said before
        [(0, 2 * SECOND), (1, SECOND // 3)],  # the newcomer has not held the floor yet
        [(0, 2 * SECOND), (-1, SECOND)],  # silence is no speaker
    ],
)
def test_what_is_not_a_change(runs: list[tuple[int, int]]) -> None:
    assert change_frame(_frames(*runs)) is None


def _speech(engine: VoiceEngine, speaker: str, seconds: float) -> np.ndarray:
    wave = read_speech(speech_files("librispeech", speaker)[1])[0]
    return speech_only(wave, engine.detector.segments(wave))[: int(seconds * 16000)]


def test_real_speech_without_a_pause(engine: VoiceEngine) -> None:
    first, second = _speech(engine, "2033", 2.5), _speech(engine, "1688", 1.5)
    at = change_sample(engine.segmenter.activity(np.concatenate([first, second])))
    assert at is not None and abs(at - len(first)) < 0.3 * 16000
    for speaker in ("2033", "1688"):
        alone = _speech(engine, speaker, 4)
        assert change_sample(engine.segmenter.activity(alone)) is None


def _windows(*speakers: tuple[int, int]) -> np.ndarray:
    """One embedding per window from (voice, windows) runs: voices are orthogonal."""
    return np.concatenate([np.tile(np.eye(4)[voice], (n, 1)) for voice, n in speakers])


def test_windows_place_a_change_between_the_last_and_first_centres() -> None:
    at = window_change(_windows((0, 6), (1, 3)), HOP, WINDOW, THRESHOLD)
    assert at == 5 * HOP + (WINDOW + HOP) // 2  # half-way between windows 5 and 6's centres
    assert window_change(_windows((0, 2), (1, 3), (0, 3)), HOP, WINDOW, THRESHOLD) == (
        4 * HOP + (WINDOW + HOP) // 2
    )
    assert window_change(_windows((0, 9)), HOP, WINDOW, THRESHOLD) is None  # one voice
    # One window of a voice is not a speaker, before the newest or as the newest...
    assert window_change(_windows((0, 1), (1, 8)), HOP, WINDOW, THRESHOLD) is None
    assert window_change(_windows((0, 8), (1, 1)), HOP, WINDOW, THRESHOLD) is None
    # ...nor when the same cough or backchannel comes twice in one speaker's talk.
    assert window_change(_windows((0, 3), (1, 1), (0, 1), (1, 1)), HOP, WINDOW, THRESHOLD) is None
    assert window_change(_windows((0, 3), (1, 1), (0, 1), (1, 2)), HOP, WINDOW, THRESHOLD) == (
        4 * HOP + (WINDOW + HOP) // 2
    )


def _talk(engine: VoiceEngine, speaker: str, seconds: float) -> np.ndarray:
    """``seconds`` of a speaker's recordings, the pauses the VAD hears cut out."""
    pieces = []
    for path in speech_files("librispeech", speaker):
        wave = read_speech(path)[0]
        pieces.append(speech_only(wave, engine.detector.segments(wave)))
    return np.concatenate(pieces)[: int(seconds * 16000)]


def _embedded(engine: VoiceEngine, wave: np.ndarray) -> np.ndarray:
    starts = range(0, len(wave) - WINDOW + 1, HOP)
    return engine.encoder.embed_batch([wave[s : s + WINDOW] for s in starts])


def test_windows_tell_apart_two_voices_the_segmentation_hears_as_one(
    engine: VoiceEngine,
) -> None:
    # The change lies inside the last 4 s, which the live stream reads through the
    # segmentation, and the segmentation hears one voice there.
    first, second = _talk(engine, "1688", 5), _talk(engine, "1998", 2.5)
    wave = np.concatenate([first, second])
    assert change_sample(engine.segmenter.activity(wave[-4 * 16000 :])) is None
    at = window_change(_embedded(engine, wave), HOP, WINDOW, THRESHOLD)
    assert at is not None and abs(at - len(first)) < 0.5 * 16000
    for speaker in ("1688", "1998"):
        alone = _talk(engine, speaker, 10)
        assert window_change(_embedded(engine, alone), HOP, WINDOW, THRESHOLD) is None
