"""Diarization error rate with pyannote.metrics, the field's standard scorer.

Turns are (start, end, speaker) in samples; references may come as RTTM.
``collar`` is pyannote's: the total width of the band around each reference
boundary left out (0.5 s: 0.25 s each side); "full" scoring is collar 0 with
overlapped speech scored, the AMI/DIHARD convention.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from voiceprint.audio.limits import SAMPLE_RATE


@dataclass(frozen=True)
class DerScore:
    scored_s: float  # reference speech, each speaker counted (overlap counts twice)
    missed_s: float
    false_alarm_s: float
    confusion_s: float

    @property
    def der(self) -> float:
        return (self.missed_s + self.false_alarm_s + self.confusion_s) / max(self.scored_s, 1e-9)

    def share(self, seconds: float) -> float:
        return seconds / max(self.scored_s, 1e-9)

    def __add__(self, other: DerScore) -> DerScore:
        return DerScore(
            self.scored_s + other.scored_s,
            self.missed_s + other.missed_s,
            self.false_alarm_s + other.false_alarm_s,
            self.confusion_s + other.confusion_s,
        )


def annotation(turns: Iterable[tuple[int, int, str]], rate: int = SAMPLE_RATE) -> Annotation:
    out = Annotation()
    for i, (start, end, speaker) in enumerate(turns):
        out[Segment(start / rate, end / rate), i] = speaker
    return out


def rttm_turns(text: str, rate: int = SAMPLE_RATE) -> list[tuple[int, int, str]]:
    """The SPEAKER lines of an RTTM file as turns in samples."""
    turns = []
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            turns.append((round(start * rate), round((start + duration) * rate), fields[7]))
    return turns


def score(
    reference: Iterable[tuple[int, int, str]],
    hypothesis: Iterable[tuple[int, int, str]],
    length: int,
    *,
    collar: float = 0.0,
    skip_overlap: bool = False,
) -> DerScore:
    """DER components over a recording of ``length`` samples, with the best one-to-one
    mapping of hypothesis to reference speakers."""
    metric = DiarizationErrorRate(collar=collar, skip_overlap=skip_overlap)
    parts = metric(
        annotation(reference),
        annotation(hypothesis),
        uem=Timeline([Segment(0, length / SAMPLE_RATE)]),
        detailed=True,
    )
    return DerScore(
        parts["total"], parts["missed detection"], parts["false alarm"], parts["confusion"]
    )
