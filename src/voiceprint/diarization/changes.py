"""A change of speaker at the live end of a turn, heard by the segmentation model.

A live stream reads the latest seconds of a turn through segmentation-3.0,
whose local speakers are consistent within that one window. A change is a
speaker who holds the latest second after another spoke at least a second
before them; the part before the change can then be answered at once instead
of when the turn ends. Short interjections of someone else inside a speaker's
talk (a backchannel, a cough) are not a change.

The segmentation often hears two voices of one kind (two men reading, two
callers) as one local speaker. Then the turn's windows, clustered as the
diarizer clusters them, may still tell the speaker of the newest windows from
the one before (``window_change``).
"""

from __future__ import annotations

import numpy as np

from voiceprint.audio.limits import SAMPLE_RATE
from voiceprint.diarization.clustering import cluster
from voiceprint.diarization.reconstruction import runs
from voiceprint.diarization.segmentation import FRAME_OFFSET, FRAME_STEP

RECENT = SAMPLE_RATE  # who holds the last second is the speaker now
NOW_HOLDS = int(0.6 * SAMPLE_RATE)  # ...if they speak alone for most of it
BEFORE = SAMPLE_RATE  # the speaker before must have said at least this much
MIN_RUN = int(0.3 * SAMPLE_RATE)  # a shorter run of another speaker is an interjection
# The windows' speaker now holds at least this many of the latest windows (over a second
# of speech at the diarizer's 1.5 s windows and 0.75 s hop), as a speaker of ``cluster``
# holds at least two windows.
MIN_RUN_WINDOWS = 2


def _frames(samples: int) -> int:
    return max(1, samples // FRAME_STEP)


def change_frame(activity: np.ndarray) -> int | None:
    """The first frame of the speaker who now speaks, after another's talk; None when
    the window holds no such change. ``activity``: [frames, local speakers] bool, the
    frames of real audio only, the last frame the latest."""
    alone = activity.sum(axis=1) == 1
    label = np.where(alone, activity.argmax(axis=1), -1)
    recent = label[-_frames(RECENT) :]
    counts = np.bincount(recent[recent >= 0], minlength=activity.shape[1])
    now = int(counts.argmax())
    if counts[now] < _frames(NOW_HOLDS):
        return None
    # The end of the last run of someone else long enough to be talk, not an interjection.
    others = (label >= 0) & (label != now)
    talk = [stop for start, stop, _ in runs(others[:, None]) if stop - start >= _frames(MIN_RUN)]
    if not talk:
        return None
    change = talk[-1]
    before = label[:change]
    spoken = np.bincount(before[before >= 0], minlength=activity.shape[1])
    spoken[now] = 0
    if spoken.max() < _frames(BEFORE):
        return None
    if np.count_nonzero(label[change:] == now) < _frames(NOW_HOLDS):
        return None
    return change


def change_sample(activity: np.ndarray) -> int | None:
    """The sample of the window where the speaker now speaking took over, if one did."""
    frame = change_frame(activity)
    return None if frame is None else FRAME_OFFSET + FRAME_STEP * frame


def window_change(embeddings: np.ndarray, hop: int, window: int, threshold: float) -> int | None:
    """The sample where the speaker of the newest windows took over, by the windows'
    clusters (``embeddings``: one window every ``hop`` samples from the turn's start, each
    ``window`` long), placed half-way between the centres of the last window of someone
    else and the first of the run of the speaker now; None when that speaker holds the
    whole turn. The speaker now must hold the last MIN_RUN_WINDOWS windows: one window
    unlike those before it (a cough, a backchannel heard twice in a turn) is no change."""
    labels = cluster(embeddings, threshold)
    first = len(labels)
    while first > 0 and labels[first - 1] == labels[-1]:
        first -= 1
    if first == 0 or len(labels) - first < MIN_RUN_WINDOWS:
        return None
    return (first - 1) * hop + (window + hop) // 2
