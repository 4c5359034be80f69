"""The segmentation's local speakers over the VAD diarization: speech the VAD missed.

The VAD diarization (``diarizer``) gives each frame of the speech it found one
speaker. The segmentation model (``segmentation``) finds local speakers in each
10 s window; each is linked to the speaker it shares most of its clean frames
(those where it speaks alone) with, two local speakers of a window never to the
same one (``newcomers`` places the rest). Where the VAD found nobody but the
windows covering a frame say someone speaks (their count of active local
speakers, averaged and rounded), that many speakers, those whose linked local
speakers are most likely speaking, speak in it (a local speaker is heard from
probability SPEAKING on, not only where the likeliest class holds them): short
backchannels, quiet turns and overlapped speech the VAD drops, two speakers at
once where the windows say so. Inside the VAD's speech no second speaker is added: on 20
conversations bench/diarization.py builds (no overlap) that added 3-4 points
of false alarm, and on the AMI openings it took off only 0.3-0.5 points of DER.
Inside it, a frame changes speaker only where the windows that know both its
speaker and another say clearly that the other speaks there (``relabelled``):
far-field voices that the 1.5 s windows' embeddings lump together, the
segmentation often holds apart.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from voiceprint.diarization.segmentation import FRAME_OFFSET, FRAME_STEP, Segmentation

MAX_AT_ONCE = 2  # three at once is rare in meetings and calls, and mostly wrong when guessed
MIN_LINK = 12  # frames (0.2 s) of clean speech a local speaker must share with a speaker
# Beyond the VAD's speech a local speaker is heard where the powerset's likeliest class
# holds them or where they speak with at least this probability: far-field speech splits
# its probability over the classes, so "nobody" can be likeliest at 0.4 while someone
# speaks at 0.6. 0.4 took AMI missed speech from 19.4 to 18.1 % and worsened none of
# the six openings; 0.5 changed nothing, 0.3 added false alarm (EN2001a +6 points).
SPEAKING = 0.4
# A frame of the VAD's speech goes to another speaker where the windows that hold its
# speaker as a local speaker give another linked local speaker a speaking probability of
# RELABEL or more (averaged) and its own at most KEEP. On the AMI openings any RELABEL
# from 0.6 to 0.9 took DER from 24.4 to 22.6-22.8 % (EN2003a 48.8 -> 37.5-38.9 %,
# EN2001e 2.9 -> 0.4-0.7 %, no opening worse; left out in turn, each opening still gains
# with the value the other five choose). On 30 built conversations it costs DER: 1.66 ->
# 1.91 / 1.88 / 1.85 % at 0.7 / 0.8 / 0.9 with KEEP 0.2, 2.13 % at 0.8 with KEEP 0.5;
# KEEP 0.1 lost EN2001e's gain. Windows that do not know the speaker have no say: where a
# window's local speaker covers two people, it spoke for the wrong one (built DER 4.9 %).
RELABEL = 0.8
KEEP = 0.2
# Of those windows, only the ones that also know the other speaker say
# how likely each is. One that does not know the other cannot tell them apart (its local
# speaker for the frame's speaker may cover both), and averaging it in halved a clear
# newcomer's 0.8 on EN2003a. Measured through the server against every window knowing the
# frame's speaker (bench/diarization.py, back to back): AMI openings DER 22.8 -> 22.1 %,
# speaker count right 2 -> 3 of 6, none worse; harder wide-band 16.6 -> 16.5 %, count 19
# -> 20 of 20; built 1.9 -> 2.1 %. Over a phone line the segmentation splits one caller
# into two local speakers more often, and it cost: harder telephone 24.3 -> 24.9 %, count
# 7 -> 5 of 10 (ghost speakers of 0.1-1.7 s); there every window knowing the speaker
# still has a say.


# (window, local speaker) -> the speaker they are
Links = dict[tuple[int, int], int]


def grid_of(seg: Segmentation, window: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """The recording's frame each frame of ``window`` falls in, for the frames that fall
    inside the recording (``total`` frames), and which of the window's frames those are."""
    centres = seg.starts[window] + FRAME_OFFSET + FRAME_STEP * np.arange(seg.frames)
    grid = (centres + FRAME_STEP // 2) // FRAME_STEP
    inside = grid < total
    return grid[inside], inside


def links(seg: Segmentation, primary: np.ndarray, speakers: int) -> Links:
    """Each local speaker to the speaker it shares most clean frames with (at least
    MIN_LINK), one to one within a window. ``primary``: each frame's speaker or -1."""
    out: Links = {}
    for w in range(len(seg.starts)):
        grid, inside = grid_of(seg, w, len(primary))
        active = seg.activity[w][inside]
        alone = active.sum(axis=1) == 1
        shared = np.zeros((active.shape[1], speakers))
        for k in range(active.shape[1]):
            labels = primary[grid[active[:, k] & alone]]
            shared[k] = np.bincount(labels[labels >= 0], minlength=speakers)
        for k, s in zip(*linear_sum_assignment(-shared), strict=True):
            if shared[k, s] >= MIN_LINK:
                out[w, int(k)] = int(s)
    return out


def heard_per_frame(seg: Segmentation, total: int) -> np.ndarray:
    """How many speakers the windows covering each of ``total`` frames hear: their counts
    of active local speakers (a local speaker is active from probability SPEAKING on),
    averaged and rounded, at most MAX_AT_ONCE."""
    heard = np.zeros(total, np.float32)
    covered = np.zeros(total, np.float32)
    for w in range(len(seg.starts)):
        grid, inside = grid_of(seg, w, total)
        covered[grid] += 1
        heard[grid] += (seg.activity[w][inside] | (seg.speaking[w][inside] >= SPEAKING)).sum(axis=1)
    return np.minimum(np.rint(heard / np.maximum(covered, 1)), MAX_AT_ONCE).astype(np.int64)


def speakers_per_frame(
    seg: Segmentation, primary: np.ndarray, linked: Links, speakers: int
) -> np.ndarray:
    """[frames, speakers] bool: ``primary``'s speaker, and where it has none as many
    speakers as the windows hear, the likeliest first."""
    total = len(primary)
    votes = np.zeros((total, speakers), np.float32)
    for w in range(len(seg.starts)):
        grid, inside = grid_of(seg, w, total)
        for k in range(seg.activity.shape[2]):
            if (w, k) in linked:
                votes[grid, linked[w, k]] += seg.speaking[w, inside, k]
    out = np.zeros((total, speakers), dtype=bool)
    found = np.flatnonzero(primary >= 0)
    out[found, primary[found]] = True
    wanted = np.where(primary >= 0, 1, heard_per_frame(seg, total))
    ranked = np.argsort(-votes, axis=1)
    for k in range(min(MAX_AT_ONCE, speakers)):
        pick = ranked[:, k]
        rows = np.flatnonzero((wanted > out.sum(axis=1)) & (votes[np.arange(total), pick] > 0))
        out[rows, pick[rows]] = True
    return out


def relabelled(
    seg: Segmentation, primary: np.ndarray, linked: Links, speakers: int, *, phone_line: bool
) -> np.ndarray:
    """``primary`` (each frame's speaker or -1) with frames given to another speaker where
    the windows that know both the frame's speaker and the other (a local speaker of theirs
    is linked to each) say clearly that the other speaks there instead. Over a phone line
    every window that knows the frame's speaker has a say (see RELABEL)."""
    total = len(primary)
    heard = np.zeros((total, speakers), np.float32)  # the other's probability, summed
    own = np.zeros((total, speakers), np.float32)  # the frame's speaker's, in the same windows
    both = np.zeros((total, speakers), np.float32)  # windows that know both
    own_any = np.zeros(total, np.float32)  # the frame's speaker's, in every window knowing it
    knowing = np.zeros(total, np.float32)  # windows that know the frame's speaker
    for w in range(len(seg.starts)):
        grid, inside = grid_of(seg, w, total)
        # Each speaker the window knows, with the probability that they speak: summed
        # where two local speakers of the window are linked to the one speaker.
        local: dict[int, np.ndarray] = {}
        for k in range(seg.activity.shape[2]):
            if (w, k) in linked:
                local[linked[w, k]] = local.get(linked[w, k], 0.0) + seg.speaking[w, inside, k]
        for p, speaks in local.items():
            rows = np.flatnonzero(primary[grid] == p)
            frames = grid[rows]
            own_any[frames] += speaks[rows]
            knowing[frames] += 1
            for c, other_speaks in local.items():
                if c != p:
                    heard[frames, c] += other_speaks[rows]
                    own[frames, c] += speaks[rows]
                    both[frames, c] += 1
    if phone_line:
        heard /= np.maximum(knowing, 1)[:, None]
        own = np.broadcast_to((own_any / np.maximum(knowing, 1))[:, None], heard.shape)
    else:
        heard /= np.maximum(both, 1)
        own = own / np.maximum(both, 1)
    clear = (both > 0) & (heard >= RELABEL) & (own <= KEEP)
    best = np.where(clear, heard, -1.0).argmax(axis=1)
    return np.where(clear.any(axis=1), best, primary)


def runs(active: np.ndarray) -> list[tuple[int, int, int]]:
    """(first frame, frame after the last, speaker) of each run of frames, by start."""
    out = []
    for speaker in range(active.shape[1]):
        edges = np.diff(np.concatenate([[0], active[:, speaker].astype(np.int8), [0]]))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        out.extend((int(a), int(b), speaker) for a, b in zip(starts, stops, strict=True))
    return sorted(out)
