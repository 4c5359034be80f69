"""Response shapes, for the OpenAPI document (the routes build the same dicts)."""

from __future__ import annotations

from pydantic import BaseModel, Field


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


class GroupItem(BaseModel):
    id: str
    name: str
    desc: str
    icon_url: str
    user_info: UserInfo
    created_at: int = Field(description="Unix seconds")
    updated_at: int = Field(description="Unix seconds")
    feature_count: int


class GroupList(BaseModel):
    items: list[GroupItem]
    total: int


class GroupListResponse(_Envelope):
    data: GroupList


class SampleItem(BaseModel):
    speech_seconds: float
    quality: dict[str, float | bool | str | None]


class FeatureCreated(BaseModel):
    id: str
    samples: list[SampleItem] = Field(description="Beyond Coze: each sample's quality report")


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


class FeatureList(BaseModel):
    items: list[FeatureItem]
    total: int


class FeatureListResponse(_Envelope):
    data: FeatureList


class SampleCount(BaseModel):
    id: str
    sample_count: int


class SampleCountResponse(_Envelope):
    data: SampleCount


class FeatureScore(BaseModel):
    feature_id: str
    feature_name: str
    feature_desc: str
    score: float = Field(description="0..100, calibrated; >= 50 means the same speaker")
    match: bool = Field(description="Beyond Coze: score >= 50")


class FeatureScoreList(BaseModel):
    feature_score_list: list[FeatureScore]


class IdentifyResponse(_Envelope):
    data: FeatureScoreList


class Verification(BaseModel):
    score: float
    match: bool
    decision: str = Field(description='"same_speaker" or "different_speaker"')


class VerifyResponse(_Envelope):
    data: Verification
