"""Response shapes: the routes build these models, so the documented shape is the wire shape.

Each ``…Response`` class is the whole envelope, for the OpenAPI document; the
routes put the ``data`` model's dump into ``envelope()``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, Field

from voiceprint.scoring.ranking import Match, Recognition
from voiceprint.scoring.scorer import MATCH_THRESHOLD
from voiceprint.service.conversations import DiarizationView, SpeakerView, TurnView
from voiceprint.service.views import Creator, EnrolmentView, FeatureView, GroupView, SampleView


class Detail(BaseModel):
    logid: str = Field(description="Also in the X-Tt-Logid header; quote it in bug reports")


class _Envelope(BaseModel):
    code: int = Field(description="0 on success; see the error code table")
    msg: str = Field(description='"" on success, else what went wrong and what to do')
    detail: Detail


class EmptyResponse(_Envelope):
    pass


class Created(BaseModel):
    id: str


class CreatedResponse(_Envelope):
    data: Created


class UserInfo(BaseModel):
    id: str
    name: str
    nickname: str
    avatar_url: str

    @classmethod
    def of(cls, creator: Creator) -> UserInfo:
        return cls(id=str(creator.id), name=creator.name, nickname=creator.name, avatar_url="")


class GroupItem(BaseModel):
    id: str
    name: str
    desc: str
    icon_url: str
    user_info: UserInfo
    created_at: int = Field(description="Unix seconds")
    updated_at: int = Field(description="Unix seconds")
    feature_count: int

    @classmethod
    def of(cls, group: GroupView) -> GroupItem:
        return cls(
            id=str(group.id),
            name=group.name,
            desc=group.desc,
            icon_url="",
            user_info=UserInfo.of(group.creator),
            created_at=group.created_at,
            updated_at=group.updated_at,
            feature_count=group.feature_count,
        )


class GroupList(BaseModel):
    items: list[GroupItem]
    total: int


class GroupListResponse(_Envelope):
    data: GroupList


class SampleItem(BaseModel):
    speech_seconds: float
    quality: dict[str, float | bool | str | None]

    @classmethod
    def of(cls, sample: SampleView) -> SampleItem:
        return cls(speech_seconds=sample.speech_seconds, quality=sample.quality)


class FeatureCreated(BaseModel):
    id: str
    samples: list[SampleItem] = Field(description="Beyond Coze: each sample's quality report")
    speech_seconds: float = Field(description="Beyond Coze: the voiceprint's speech, all samples")
    enough_speech: bool = Field(
        description="Beyond Coze: whether that is the advised 6 s; if not, add a recording"
    )

    @classmethod
    def of(cls, enrolment: EnrolmentView) -> FeatureCreated:
        return cls(
            id=str(enrolment.feature_id),
            samples=[SampleItem.of(s) for s in enrolment.samples],
            speech_seconds=enrolment.speech_seconds,
            enough_speech=enrolment.enough_speech,
        )


class FeatureCreatedResponse(_Envelope):
    data: FeatureCreated


class FeatureItem(BaseModel):
    id: str
    group_id: str
    name: str
    desc: str
    icon_url: str
    audio_url: str = Field(description="Signed, expiring link to the stored original audio")
    user_info: UserInfo
    created_at: int
    updated_at: int
    samples: list[SampleItem] = Field(description="Beyond Coze: one entry per enrolment sample")
    speech_seconds: float = Field(description="Beyond Coze: the voiceprint's speech, all samples")
    enough_speech: bool = Field(description="Beyond Coze: whether that is the advised 6 s")

    @classmethod
    def of(cls, feature: FeatureView, audio_url: str) -> FeatureItem:
        enrolment = feature.enrolment
        return cls(
            id=str(feature.id),
            group_id=str(feature.group_id),
            name=feature.name,
            desc=feature.desc,
            icon_url="",
            audio_url=audio_url,
            user_info=UserInfo.of(feature.creator),
            created_at=feature.created_at,
            updated_at=feature.updated_at,
            samples=[SampleItem.of(s) for s in feature.samples],
            speech_seconds=enrolment.speech_seconds,
            enough_speech=enrolment.enough_speech,
        )


class FeatureList(BaseModel):
    items: list[FeatureItem]
    total: int


class FeatureListResponse(_Envelope):
    data: FeatureList


class SampleCount(FeatureCreated):
    sample_count: int

    @classmethod
    def of(cls, enrolment: EnrolmentView) -> SampleCount:
        return cls(**FeatureCreated.of(enrolment).model_dump(), sample_count=len(enrolment.samples))


class SampleCountResponse(_Envelope):
    data: SampleCount


class FeatureScore(BaseModel):
    feature_id: str
    feature_name: str
    feature_desc: str
    score: float = Field(description="0..100, calibrated; >= 50 means the same speaker")
    match: bool = Field(description="Beyond Coze: score >= 50")

    @classmethod
    def of(cls, match: Match, threshold: float = MATCH_THRESHOLD) -> FeatureScore:
        """``threshold``: a live stream's own ``voice_print_config.score``."""
        return cls(
            feature_id=str(match.feature_id),
            feature_name=match.name,
            feature_desc=match.desc,
            score=match.score,
            match=match.score >= threshold,
        )


DECISION = (
    '"same_speaker" (the best match reaches 50), "different_speaker", or '
    '"too_little_speech": no match, but the recording held too little speech for a miss '
    "to mean a stranger (send more)"
)


class FeatureScoreList(BaseModel):
    item: ClassVar[type[FeatureScore]] = FeatureScore
    feature_score_list: list[FeatureScore]
    decision: str = Field(description=DECISION)  # beyond Coze

    @classmethod
    def of(cls, recognition: Recognition) -> Self:
        scores = [cls.item.of(m) for m in recognition.matches]
        return cls(feature_score_list=scores, decision=recognition.decision)


class IdentifyResponse(_Envelope):
    data: FeatureScoreList


class GroupFeatureScore(FeatureScore):
    group_id: str = Field(description="The group the voiceprint belongs to")

    @classmethod
    def of(cls, match: Match, threshold: float = MATCH_THRESHOLD) -> GroupFeatureScore:
        return cls(**FeatureScore.of(match, threshold).model_dump(), group_id=str(match.group_id))


class GroupFeatureScoreList(FeatureScoreList):
    item: ClassVar[type[FeatureScore]] = GroupFeatureScore
    feature_score_list: list[GroupFeatureScore]  # type: ignore[assignment]


class IdentifyAcrossResponse(_Envelope):
    data: GroupFeatureScoreList


class Verification(BaseModel):
    score: float
    match: bool
    decision: str = Field(description=DECISION)

    @classmethod
    def of(cls, recognition: Recognition) -> Verification:
        (match,) = recognition.matches
        return cls(score=match.score, match=match.is_match, decision=recognition.decision)


class VerifyResponse(_Envelope):
    data: Verification


def _named(match: Match | None) -> dict[str, Any]:
    """The voiceprint fields of a diarized segment or speaker: its match's, or empty."""
    return {
        "feature_id": str(match.feature_id) if match else "",
        "feature_name": match.name if match else "",
        "match": match is not None,
    }


class DiarizedSegment(BaseModel):
    start_ms: int
    end_ms: int
    speaker: str = Field(description='"S1", "S2", ... in order of first speech')
    feature_id: str = Field(description='The matching voiceprint, or ""')
    feature_name: str
    score: float = Field(description="0..100 against that voiceprint (0 without a match)")
    match: bool

    @classmethod
    def of(cls, turn: TurnView) -> DiarizedSegment:
        return cls(
            start_ms=turn.start_ms,
            end_ms=turn.end_ms,
            speaker=turn.speaker,
            score=turn.match.score if turn.match else 0.0,
            **_named(turn.match),
        )


class DiarizedSpeaker(BaseModel):
    speaker: str
    speech_ms: int
    feature_id: str = Field(description='Best matching voiceprint (score >= 50), or ""')
    feature_name: str
    score: float = Field(description="Best score against the group, matching or not")
    match: bool
    feature_score_list: list[FeatureScore] = Field(description="Best matches, top_k of them")

    @classmethod
    def of(cls, speaker: SpeakerView) -> DiarizedSpeaker:
        return cls(
            speaker=speaker.speaker,
            speech_ms=speaker.speech_ms,
            score=speaker.matches[0].score if speaker.matches else 0.0,
            feature_score_list=[FeatureScore.of(m) for m in speaker.matches],
            **_named(speaker.best),
        )


class Diarized(BaseModel):
    duration_ms: int
    segments: list[DiarizedSegment]
    speakers: list[DiarizedSpeaker]

    @classmethod
    def of(cls, view: DiarizationView) -> Diarized:
        return cls(
            duration_ms=view.duration_ms,
            segments=[DiarizedSegment.of(t) for t in view.turns],
            speakers=[DiarizedSpeaker.of(s) for s in view.speakers],
        )


class DiarizedResponse(_Envelope):
    data: Diarized
