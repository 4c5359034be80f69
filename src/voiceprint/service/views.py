"""What the service hands back: plain, immutable views of stored rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select

from voiceprint.scoring.ranking import ADVISED_ENROL_SPEECH_S
from voiceprint.store.models import Account, Feature, Group, Sample


@dataclass(frozen=True)
class Page:
    number: int  # from 1
    size: int

    def apply(self, query: Select[Any]) -> Select[Any]:
        return query.offset((self.number - 1) * self.size).limit(self.size)


@dataclass(frozen=True)
class Creator:
    id: int
    name: str

    @classmethod
    def of(cls, account: Account) -> Creator:
        return cls(account.id, account.name)


@dataclass(frozen=True)
class GroupView:
    id: int
    name: str
    desc: str
    creator: Creator
    created_at: int
    updated_at: int
    feature_count: int

    @classmethod
    def of(cls, group: Group, creator: Account, feature_count: int) -> GroupView:
        return cls(
            id=group.id,
            name=group.name,
            desc=group.description,
            creator=Creator.of(creator),
            created_at=group.created_at,
            updated_at=group.updated_at,
            feature_count=feature_count,
        )


@dataclass(frozen=True)
class SampleView:
    """One enrolment recording: how much speech it held and its quality report."""

    speech_seconds: float
    quality: dict[str, Any]

    @classmethod
    def of(cls, sample: Sample) -> SampleView:
        return cls(sample.speech_seconds, sample.quality)


@dataclass(frozen=True)
class EnrolmentView:
    """A voiceprint's recordings after an enrolment request, and whether they hold the
    speech the README advises (so a client knows to ask for another recording)."""

    feature_id: int
    samples: list[SampleView]

    @property
    def speech_seconds(self) -> float:
        return round(sum(s.speech_seconds for s in self.samples), 3)

    @property
    def enough_speech(self) -> bool:
        return self.speech_seconds >= ADVISED_ENROL_SPEECH_S


@dataclass(frozen=True)
class FeatureView:
    id: int
    group_id: int
    name: str
    desc: str
    creator: Creator
    created_at: int
    updated_at: int
    samples: list[SampleView]

    @classmethod
    def of(cls, feature: Feature, creator: Account) -> FeatureView:
        return cls(
            id=feature.id,
            group_id=feature.group_id,
            name=feature.name,
            desc=feature.description,
            creator=Creator.of(creator),
            created_at=feature.created_at,
            updated_at=feature.updated_at,
            samples=[SampleView.of(s) for s in feature.samples],
        )

    @property
    def enrolment(self) -> EnrolmentView:
        return EnrolmentView(self.id, self.samples)


@dataclass(frozen=True)
class StoredAudio:
    data: bytes
    format: str  # "wav", "pcm", "flac", "ogg" or "mp3"
