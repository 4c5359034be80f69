"""Groups, voiceprints and speaker identification: the operations behind the API.

Every public method takes the caller (``Principal``) first and checks, in this
order: permission (``PermissionDenied``), existence in the caller's workspace
(``NotFound``), ownership where edits require it (``PermissionDenied``).

A unit of work either fully happens or leaves nothing behind: audio is
analysed before anything is written, new audio files are written before the
database transaction and removed again if it fails, and replaced or deleted
files are removed only after the transaction has committed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from voiceprint.audio.decode import decode_audio
from voiceprint.auth import permissions as perm
from voiceprint.auth.tokens import Principal
from voiceprint.config import Settings
from voiceprint.engine import VoiceEngine, VoiceSample
from voiceprint.scoring.scorer import MATCH_THRESHOLD, Scorer, combine
from voiceprint.service.errors import (
    FeatureQuotaExceeded,
    GroupQuotaExceeded,
    NotFound,
    PermissionDenied,
)
from voiceprint.service.inference import InferenceGate
from voiceprint.service.links import LinkSigner
from voiceprint.store.blobs import BlobStore
from voiceprint.store.ids import new_id
from voiceprint.store.models import Account, Feature, Group, Sample


@dataclass(frozen=True)
class AudioUpload:
    """One uploaded recording and how to read it if it is raw PCM."""

    data: bytes
    sample_rate: int = 16_000
    channels: int = 1


@dataclass(frozen=True)
class Page:
    number: int
    size: int

    def apply(self, query: Select[Any]) -> Select[Any]:
        return query.offset((self.number - 1) * self.size).limit(self.size)


@dataclass(frozen=True)
class Creator:
    id: int
    name: str


@dataclass(frozen=True)
class GroupView:
    id: int
    name: str
    desc: str
    creator: Creator
    created_at: int
    updated_at: int
    feature_count: int


@dataclass(frozen=True)
class SampleView:
    speech_seconds: float
    quality: dict[str, Any]


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
    audio_expires: int
    audio_signature: str


@dataclass(frozen=True)
class Match:
    feature_id: int
    name: str
    desc: str
    score: float

    @property
    def is_match(self) -> bool:
        return self.score >= MATCH_THRESHOLD


@dataclass(frozen=True)
class StoredAudio:
    data: bytes
    format: str


def _now() -> int:
    return int(time.time())


def _creator(account: Account) -> Creator:
    return Creator(account.id, account.name)


class VoiceprintService:
    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: sessionmaker[Session],
        blobs: BlobStore,
        engine: VoiceEngine,
        scorer: Scorer,
        gate: InferenceGate,
        links: LinkSigner,
    ) -> None:
        self.settings = settings
        self._sessions = session_factory
        self._blobs = blobs
        self._engine = engine
        self._scorer = scorer
        self._gate = gate
        self._links = links
        # Quota checks and inserts must not interleave (SQLite has no row locks).
        self._quota_lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._engine.model_id

    @property
    def device(self) -> str:
        return self._engine.encoder.device

    # --- groups ----------------------------------------------------------------------------

    def create_group(self, caller: Principal, name: str, desc: str) -> int:
        _require(caller, perm.CREATE_GROUP)
        now = _now()
        with self._quota_lock, self._transaction() as session:
            count = session.scalar(
                select(func.count()).where(Group.workspace_id == caller.workspace_id)
            )
            if count >= self.settings.max_groups_per_workspace:
                raise GroupQuotaExceeded(
                    f"the workspace already has {count} voiceprint groups, the most allowed "
                    f"({self.settings.max_groups_per_workspace}); delete one first"
                )
            group = Group(
                id=new_id(),
                workspace_id=caller.workspace_id,
                creator_id=caller.account_id,
                name=name,
                description=desc,
                created_at=now,
                updated_at=now,
            )
            session.add(group)
        return group.id

    def list_groups(
        self,
        caller: Principal,
        page: Page,
        *,
        name_prefix: str | None = None,
        user_id: int | None = None,
        group_id: int | None = None,
    ) -> tuple[list[GroupView], int]:
        _require(caller, perm.LIST_GROUPS)
        if user_id is not None and user_id != caller.account_id:
            raise PermissionDenied("user_id may only be your own account id")
        conditions = [Group.workspace_id == caller.workspace_id]
        if name_prefix:
            escaped = name_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(Group.name.like(f"{escaped}%", escape="\\"))
        if user_id is not None:
            conditions.append(Group.creator_id == user_id)
        if group_id is not None:
            conditions.append(Group.id == group_id)
        feature_count = (
            select(func.count(Feature.id)).where(Feature.group_id == Group.id).scalar_subquery()
        )
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(Group).where(*conditions))
            rows = session.execute(
                page.apply(
                    select(Group, Account, feature_count)
                    .join(Account, Account.id == Group.creator_id)
                    .where(*conditions)
                    .order_by(Group.created_at.desc(), Group.id.desc())
                )
            ).all()
        items = [
            GroupView(
                id=g.id,
                name=g.name,
                desc=g.description,
                creator=_creator(a),
                created_at=g.created_at,
                updated_at=g.updated_at,
                feature_count=count,
            )
            for g, a, count in rows
        ]
        return items, total or 0

    def update_group(
        self, caller: Principal, group_id: int, name: str | None, desc: str | None
    ) -> None:
        _require(caller, perm.UPDATE_GROUP)
        with self._transaction() as session:
            group = self._owned_group(session, caller, group_id)
            if name is not None:
                group.name = name
            if desc is not None:
                group.description = desc
            group.updated_at = _now()

    def delete_group(self, caller: Principal, group_id: int) -> None:
        _require(caller, perm.DELETE_GROUP)
        with self._transaction() as session:
            self._owned_group(session, caller, group_id)
            keys = list(
                session.scalars(
                    select(Sample.audio_key)
                    .join(Feature, Feature.id == Sample.feature_id)
                    .where(Feature.group_id == group_id)
                )
            )
            session.execute(delete(Group).where(Group.id == group_id))
        self._delete_blobs(keys)

    # --- voiceprints -----------------------------------------------------------------------

    def create_feature(
        self,
        caller: Principal,
        group_id: int,
        name: str,
        desc: str,
        uploads: Sequence[AudioUpload],
    ) -> tuple[int, list[SampleView]]:
        """The new voiceprint's id and the quality report of each sample."""
        _require(caller, perm.CREATE_FEATURE)
        with self._sessions() as session:
            self._visible_group(session, caller, group_id)
        analysed = self._analyse(uploads, purpose="enrolment")
        now = _now()
        with (
            self._storing(uploads, analysed) as samples,
            self._quota_lock,
            self._transaction() as session,
        ):
            self._visible_group(session, caller, group_id)
            count = session.scalar(select(func.count()).where(Feature.group_id == group_id))
            if count >= self.settings.max_features_per_group:
                raise FeatureQuotaExceeded(
                    f"the group already has {count} voiceprints, the most allowed "
                    f"({self.settings.max_features_per_group}); delete one first"
                )
            feature = Feature(
                id=new_id(),
                group_id=group_id,
                creator_id=caller.account_id,
                name=name,
                description=desc,
                created_at=now,
                updated_at=now,
                samples=samples,
            )
            session.add(feature)
        return feature.id, [SampleView(x.speech_seconds, x.quality) for x in samples]

    def list_features(
        self, caller: Principal, group_id: int, page: Page
    ) -> tuple[list[FeatureView], int]:
        _require(caller, perm.LIST_FEATURES)
        with self._sessions() as session:
            self._visible_group(session, caller, group_id)
            total = session.scalar(select(func.count()).where(Feature.group_id == group_id))
            rows = session.execute(
                page.apply(
                    select(Feature, Account)
                    .join(Account, Account.id == Feature.creator_id)
                    .where(Feature.group_id == group_id)
                    .order_by(Feature.created_at.desc(), Feature.id.desc())
                )
            ).all()
            items = [self._feature_view(f, a) for f, a in rows]
        return items, total or 0

    def update_feature(
        self,
        caller: Principal,
        group_id: int,
        feature_id: int,
        name: str | None,
        desc: str | None,
        uploads: Sequence[AudioUpload],
    ) -> None:
        """Rename and/or replace the audio; new audio replaces every old sample."""
        _require(caller, perm.UPDATE_FEATURE)
        with self._sessions() as session:
            self._owned_feature(session, caller, group_id, feature_id)
        analysed = self._analyse(uploads, purpose="enrolment") if uploads else []
        old_keys: list[str] = []
        with self._storing(uploads, analysed) as samples, self._transaction() as session:
            feature = self._owned_feature(session, caller, group_id, feature_id)
            if name is not None:
                feature.name = name
            if desc is not None:
                feature.description = desc
            if samples:
                old_keys = [s.audio_key for s in feature.samples]
                feature.samples = samples
            feature.updated_at = _now()
        self._delete_blobs(old_keys)

    def add_samples(
        self,
        caller: Principal,
        group_id: int,
        feature_id: int,
        uploads: Sequence[AudioUpload],
    ) -> int:
        """Add recordings to an existing voiceprint; returns how many samples it now has."""
        _require(caller, perm.UPDATE_FEATURE)
        with self._sessions() as session:
            self._owned_feature(session, caller, group_id, feature_id)
        analysed = self._analyse(uploads, purpose="enrolment")
        with self._storing(uploads, analysed) as samples, self._transaction() as session:
            feature = self._owned_feature(session, caller, group_id, feature_id)
            feature.samples.extend(samples)
            feature.updated_at = _now()
            return len(feature.samples)

    def delete_feature(self, caller: Principal, group_id: int, feature_id: int) -> None:
        _require(caller, perm.DELETE_FEATURE)
        with self._transaction() as session:
            feature = self._owned_feature(session, caller, group_id, feature_id)
            keys = [s.audio_key for s in feature.samples]
            session.execute(delete(Feature).where(Feature.id == feature_id))
        self._delete_blobs(keys)

    def feature_audio(
        self,
        group_id: int,
        feature_id: int,
        *,
        caller: Principal | None = None,
        expires: int | None = None,
        signature: str | None = None,
    ) -> StoredAudio:
        """The first stored recording, for a signed link or a caller who may list voiceprints."""
        signed = (
            expires is not None
            and signature is not None
            and self._links.verify(feature_id, expires, signature)
        )
        if not signed:
            if caller is None:
                raise PermissionDenied("the audio link is invalid or has expired")
            _require(caller, perm.LIST_FEATURES)
        with self._sessions() as session:
            if caller is not None and not signed:
                self._visible_group(session, caller, group_id)
            feature = self._visible_feature(session, group_id, feature_id)
            if not feature.samples:
                raise NotFound(f"voiceprint {feature_id} has no stored audio")
            sample = feature.samples[0]
            return StoredAudio(self._blobs.get(sample.audio_key), sample.audio_format)

    # --- recognition -----------------------------------------------------------------------

    def identify(
        self, caller: Principal, group_id: int, upload: AudioUpload, top_k: int | None
    ) -> list[Match]:
        _require(caller, perm.IDENTIFY)
        with self._sessions() as session:
            self._visible_group(session, caller, group_id)
            features = self._enrolled(session, select(Feature).where(Feature.group_id == group_id))
        if not features:
            return []
        (probe,) = self._analyse([upload], purpose="identification")
        enrolled = np.stack([embedding for _, embedding in features])
        scores = self._scorer.scores(probe.embedding, enrolled)
        order = np.argsort(-scores, kind="stable")[: top_k or len(features)]
        return [
            Match(
                features[i][0].id,
                features[i][0].name,
                features[i][0].description,
                round(float(scores[i]), 2),
            )
            for i in order
        ]

    def verify(
        self, caller: Principal, group_id: int, feature_id: int, upload: AudioUpload
    ) -> Match:
        """1:1 check of a recording against one voiceprint."""
        _require(caller, perm.IDENTIFY)
        with self._sessions() as session:
            self._visible_group(session, caller, group_id)
            feature = self._visible_feature(session, group_id, feature_id)
            ((_, enrolled),) = self._enrolled(
                session, select(Feature).where(Feature.id == feature.id)
            )
        (probe,) = self._analyse([upload], purpose="verification")
        score = float(self._scorer.scores(probe.embedding, enrolled[None])[0])
        return Match(feature.id, feature.name, feature.description, round(score, 2))

    # --- helpers ---------------------------------------------------------------------------

    def _analyse(self, uploads: Sequence[AudioUpload], purpose: str) -> list[VoiceSample]:
        min_speech = (
            self.settings.min_enroll_speech_s
            if purpose == "enrolment"
            else self.settings.min_probe_speech_s
        )
        results = []
        for upload in uploads:
            audio = decode_audio(
                upload.data,
                sample_rate=upload.sample_rate,
                channels=upload.channels,
                max_seconds=self.settings.max_audio_seconds,
            )
            with self._gate.slot():
                results.append(
                    self._engine.analyze(
                        audio,
                        min_speech_s=min_speech,
                        purpose=purpose,
                        enrolment=purpose == "enrolment",
                    )
                )
        return results

    @contextmanager
    def _storing(
        self, uploads: Sequence[AudioUpload], analysed: Sequence[VoiceSample]
    ) -> Iterator[list[Sample]]:
        """Write the audio files; remove them again if the block that records them fails."""
        now = _now()
        samples: list[Sample] = []
        try:
            for upload, voice in zip(uploads, analysed, strict=True):
                samples.append(
                    Sample(
                        id=new_id(),
                        audio_key=self._blobs.put(upload.data),
                        audio_format=voice.source_format,
                        embedding=voice.embedding.astype("<f4").tobytes(),
                        model_id=self._engine.model_id,
                        speech_seconds=round(voice.speech_s, 3),
                        quality=voice.quality,
                        created_at=now,
                    )
                )
            yield samples
        except BaseException:
            self._delete_blobs([s.audio_key for s in samples])
            raise

    def _enrolled(
        self, session: Session, query: Select[tuple[Feature]]
    ) -> list[tuple[Feature, np.ndarray]]:
        """Voiceprints with their combined embeddings (samples of another model are skipped)."""
        enrolled = []
        for feature in session.scalars(query.order_by(Feature.created_at, Feature.id)):
            vectors = [
                np.frombuffer(s.embedding, dtype="<f4")
                for s in feature.samples
                if s.model_id == self._engine.model_id
            ]
            if vectors:
                enrolled.append((feature, combine(np.stack(vectors))))
        return enrolled

    def _feature_view(self, feature: Feature, creator: Account) -> FeatureView:
        expires, signature = self._links.sign(feature.id)
        return FeatureView(
            id=feature.id,
            group_id=feature.group_id,
            name=feature.name,
            desc=feature.description,
            creator=_creator(creator),
            created_at=feature.created_at,
            updated_at=feature.updated_at,
            samples=[SampleView(s.speech_seconds, s.quality) for s in feature.samples],
            audio_expires=expires,
            audio_signature=signature,
        )

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def _delete_blobs(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._blobs.delete(key)

    @staticmethod
    def _visible_group(session: Session, caller: Principal, group_id: int) -> Group:
        group = session.get(Group, group_id)
        if group is None or group.workspace_id != caller.workspace_id:
            raise NotFound(f"voiceprint group {group_id} does not exist")
        return group

    def _owned_group(self, session: Session, caller: Principal, group_id: int) -> Group:
        group = self._visible_group(session, caller, group_id)
        if group.creator_id != caller.account_id:
            raise PermissionDenied("only the creator of a voiceprint group may change or delete it")
        return group

    @staticmethod
    def _visible_feature(session: Session, group_id: int, feature_id: int) -> Feature:
        feature = session.get(Feature, feature_id)
        if feature is None or feature.group_id != group_id:
            raise NotFound(f"voiceprint {feature_id} does not exist in group {group_id}")
        return feature

    def _owned_feature(
        self, session: Session, caller: Principal, group_id: int, feature_id: int
    ) -> Feature:
        self._visible_group(session, caller, group_id)
        feature = self._visible_feature(session, group_id, feature_id)
        if feature.creator_id != caller.account_id:
            raise PermissionDenied("only the creator of a voiceprint may change or delete it")
        return feature


def _require(caller: Principal, permission: str) -> None:
    if permission not in caller.permissions:
        raise PermissionDenied(f"the token lacks the '{permission}' permission")
