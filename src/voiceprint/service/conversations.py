"""Who spoke when in a recording, with names from a group's voiceprints.

``Recordings.diarize`` finds the speakers; ``describe`` scores each speaker
against the group exactly as ``speaker_identify`` scores a probe (the same
scorer and curves), names the ones that match, and merges speakers that match
the same voiceprint (one person the clustering had split).
"""

from __future__ import annotations

from dataclasses import dataclass

from voiceprint.audio.limits import to_ms
from voiceprint.diarization.diarizer import Diarization
from voiceprint.scoring.ranking import Candidate, Match, rank
from voiceprint.scoring.scorer import Gallery, Scorer, Voices


@dataclass(frozen=True)
class DiarizeOptions:
    num_speakers: int | None = None
    min_speakers: int = 1
    max_speakers: int | None = None
    top_k: int = 1


@dataclass(frozen=True)
class Conversation:
    """A diarized recording and one voice (embedding + condition) per speaker."""

    duration_s: float
    diarization: Diarization
    voices: Voices


@dataclass(frozen=True)
class TurnView:
    start_ms: int
    end_ms: int
    speaker: str  # "S1", "S2", ... stable within the answer
    match: Match | None  # the speaker's voiceprint, if one matches


@dataclass(frozen=True)
class SpeakerView:
    speaker: str
    speech_ms: int
    matches: list[Match]  # best first, at most top_k (empty without voiceprints)

    @property
    def best(self) -> Match | None:
        return self.matches[0] if self.matches and self.matches[0].is_match else None


@dataclass(frozen=True)
class DiarizationView:
    duration_ms: int
    turns: list[TurnView]
    speakers: list[SpeakerView]


def describe(
    conversation: Conversation,
    candidates: list[Candidate],
    voiceprints: Voices | Gallery,
    scorer: Scorer,
    top_k: int,
) -> DiarizationView:
    turns = conversation.diarization.turns
    n = len(conversation.voices.vectors)
    ranked: list[list[Match]] = [[] for _ in range(n)]
    if candidates and n:
        scores = scorer.score_matrix(conversation.voices, voiceprints)
        ranked = [rank(candidates, row, len(candidates)) for row in scores]
    # Speakers whose best match is the same voiceprint are one person.
    owner: dict[int, int] = {}
    merged_into = list(range(n))
    for speaker, matches in enumerate(ranked):
        if matches and matches[0].is_match:
            first = owner.setdefault(matches[0].feature_id, speaker)
            merged_into[speaker] = first
    order = list(dict.fromkeys(merged_into[t.speaker] for t in turns))
    label = {speaker: f"S{i + 1}" for i, speaker in enumerate(order)}
    speech = dict.fromkeys(order, 0)
    turn_views = []
    for turn in turns:
        speaker = merged_into[turn.speaker]
        speech[speaker] += turn.end - turn.start
        best = ranked[speaker][0] if ranked[speaker] and ranked[speaker][0].is_match else None
        previous = turn_views[-1] if turn_views else None
        if previous and previous.speaker == label[speaker] and previous.end_ms == to_ms(turn.start):
            turn_views[-1] = TurnView(previous.start_ms, to_ms(turn.end), previous.speaker, best)
        else:
            turn_views.append(TurnView(to_ms(turn.start), to_ms(turn.end), label[speaker], best))
    speakers = [SpeakerView(label[s], to_ms(speech[s]), ranked[s][:top_k]) for s in order]
    return DiarizationView(round(conversation.duration_s * 1000), turn_views, speakers)


def rttm(view: DiarizationView, file_id: str = "audio") -> str:
    """The turns as RTTM lines, for pyannote-style tooling."""
    lines = []
    for turn in view.turns:
        name = turn.match.name if turn.match else turn.speaker
        speaker = "_".join(name.split()) or turn.speaker
        lines.append(
            f"SPEAKER {file_id} 1 {turn.start_ms / 1000:.3f} "
            f"{(turn.end_ms - turn.start_ms) / 1000:.3f} <NA> <NA> {speaker} <NA> <NA>"
        )
    return "\n".join(lines) + ("\n" if lines else "")
