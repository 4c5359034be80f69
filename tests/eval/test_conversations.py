"""Conversations built from real speech: overlap and backchannels where asked, none otherwise."""

from __future__ import annotations

import random

import numpy as np

from tests.conftest import DATA
from voiceprint.engine import VoiceEngine
from voiceprint.eval import conversations
from voiceprint.eval.corpus import Utterance, load_corpus


def _librispeech() -> dict[str, list[Utterance]]:
    by_speaker: dict[str, list[Utterance]] = {}
    for u in load_corpus(DATA / "index.tsv"):
        if u.set == "librispeech":
            by_speaker.setdefault(f"{u.set}/{u.speaker}", []).append(u)
    return {k: v for k, v in by_speaker.items() if len(v) >= 3}


def _overlap_s(conv: conversations.Conversation) -> float:
    """Seconds in which two different speakers' reference turns overlap."""
    turns = sorted((t.start, t.end, t.speaker) for t in conv.turns)
    both = sum(
        max(0, min(end, other_end) - max(start, other_start))
        for i, (start, end, who) in enumerate(turns)
        for other_start, other_end, other in turns[i + 1 :]
        if other != who
    )
    return both / 16000


def test_turns_take_their_turn_unless_asked_to_overlap(engine: VoiceEngine) -> None:
    by_speaker = _librispeech()
    plain = conversations.build(by_speaker, engine.detector, random.Random(5), speakers=3, turns=8)
    harder = conversations.build(
        by_speaker, engine.detector, random.Random(5), speakers=3, turns=8,
        overlap=0.5, backchannels=3,
    )  # fmt: skip
    assert _overlap_s(plain) == 0
    assert _overlap_s(harder) > 0.5
    # Every reference turn lies in the audio, and the audio is the pieces mixed, not cut.
    for conv in (plain, harder):
        assert max(t.end for t in conv.turns) <= len(conv.wave)
        assert np.abs(conv.wave).max() > 0.05
    assert len(harder.speakers) == len(plain.speakers) == 3
