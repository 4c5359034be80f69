"""Local speakers over the VAD's speakers, on segmentations written out frame by frame."""

from __future__ import annotations

import numpy as np

from voiceprint.diarization.reconstruction import links, relabelled, runs, speakers_per_frame
from voiceprint.diarization.segmentation import FRAME_STEP, Segmentation, window_starts

FRAMES = 589  # one 10 s window of the model


def _one_window(activity: np.ndarray) -> Segmentation:
    """A recording of one window whose local speakers are active as given [frames, 3]."""
    return Segmentation(window_starts(10 * 16000), activity[None], activity[None] * 0.9)


def test_local_speakers_link_one_to_one_and_fill_what_the_vad_missed() -> None:
    activity = np.zeros((FRAMES, 3), dtype=bool)
    activity[0:200, 0] = True  # local 0: speaker 1 by the VAD
    activity[250:400, 1] = True  # local 1: speaker 0 by the VAD...
    activity[380:450, 0] = True  # ...overlapped by local 0, where the VAD heard nobody
    activity[500:560, 2] = True  # local 2: shares its frames with speaker 0 too
    seg = _one_window(activity)
    total = -(-10 * 16000 // FRAME_STEP)
    primary = np.full(total, -1)
    first = seg.frame_samples(0) // FRAME_STEP  # the recording's frame of each window frame
    primary[first[0:200]] = 1
    primary[first[250:380]] = 0
    primary[first[500:560]] = 0

    linked = links(seg, primary, speakers=2)
    assert linked == {(0, 0): 1, (0, 1): 0}  # local 2 loses speaker 0 to local 1
    active = speakers_per_frame(seg, primary, linked, speakers=2)
    both = first[385:400]  # no VAD speech there, two local speakers
    assert active[both].all()
    assert active[first[420:450]].tolist() == [[False, True]] * 30  # local 0 alone: speaker 1
    assert active[first[100]].tolist() == [False, True]  # the VAD's speaker kept
    assert active[first[470:490]].sum() == 0  # nobody


def test_vad_speech_moves_only_where_windows_that_know_its_speaker_hear_another() -> None:
    activity = np.zeros((FRAMES, 3), dtype=bool)
    activity[0:300, 0] = True  # local 0: the VAD's speaker 0
    activity[300:450, 1] = True  # local 1: someone else, linked to speaker 1
    seg = _one_window(activity)
    total = -(-10 * 16000 // FRAME_STEP)
    first = seg.frame_samples(0) // FRAME_STEP
    primary = np.full(total, -1)
    primary[first[0:450]] = 0  # the VAD's embeddings lumped both into speaker 0
    heard = relabelled(seg, primary, {(0, 0): 0, (0, 1): 1}, speakers=2, phone_line=False)
    assert (heard[first[300:450]] == 1).all()  # local 1 speaks there, local 0 is silent
    assert (heard[first[0:300]] == 0).all() and (heard[first[460:]] == -1).all()
    # A window that does not hold speaker 0 as a local speaker has no say over its frames:
    # its one local speaker may cover two people.
    alone = relabelled(seg, primary, {(0, 1): 1}, speakers=2, phone_line=False)
    assert np.array_equal(alone, primary)


def test_only_windows_that_know_both_speakers_weigh_one_against_the_other() -> None:
    # Two windows over the same 5 s: the first holds speaker 0 and a newcomer (speaker 1)
    # apart; the second hears them as one local speaker, linked to speaker 0.
    starts = np.array([0, 0])
    speaking = np.zeros((2, FRAMES, 3), np.float32)
    speaking[0, 0:300, 0] = 0.9
    speaking[0, 300:450, 1] = 0.9
    speaking[1, 0:450, 0] = 0.9
    seg = Segmentation(starts, speaking > 0.5, speaking)
    total = -(-10 * 16000 // FRAME_STEP)
    first = seg.frame_samples(0) // FRAME_STEP
    primary = np.full(total, -1)
    primary[first[0:450]] = 0
    linked = {(0, 0): 0, (0, 1): 1, (1, 0): 0}
    heard = relabelled(seg, primary, linked, speakers=2, phone_line=False)
    assert (heard[first[300:450]] == 1).all() and (heard[first[0:300]] == 0).all()
    # Over a phone line the second window has its say too, and the frames stay.
    assert np.array_equal(relabelled(seg, primary, linked, speakers=2, phone_line=True), primary)


def test_two_local_speakers_of_one_speaker_speak_for_them_together() -> None:
    # The segmentation splits a newcomer's talk over two local speakers, both linked to
    # speaker 1 (``newcomers.place`` may link them so); the VAD gave it all to speaker 0.
    activity = np.zeros((FRAMES, 3), dtype=bool)
    activity[0:300, 0] = True
    activity[300:375, 1] = True
    activity[375:450, 2] = True
    seg = _one_window(activity)
    total = -(-10 * 16000 // FRAME_STEP)
    first = seg.frame_samples(0) // FRAME_STEP
    primary = np.full(total, -1)
    primary[first[0:450]] = 0
    linked = {(0, 0): 0, (0, 1): 1, (0, 2): 1}
    for phone_line in (False, True):
        heard = relabelled(seg, primary, linked, speakers=2, phone_line=phone_line)
        assert (heard[first[300:450]] == 1).all() and (heard[first[0:300]] == 0).all()


def test_runs_are_each_speakers_stretches_by_start() -> None:
    active = np.array([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0]], dtype=bool)
    assert runs(active) == [(0, 2, 0), (1, 3, 1), (4, 5, 0)]
