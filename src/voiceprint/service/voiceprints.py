"""Groups, voiceprints and speaker identification: the operations behind the API.

Every public method takes the caller (``Principal``) first and checks access
in the order ``service.access`` documents. A unit of work either fully happens
or leaves nothing behind: audio is analysed before anything is written, and
``Recordings`` keeps files and rows in step.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from voiceprint.auth import permissions as perm
from voiceprint.auth.tokens import Principal
from voiceprint.clock import now
from voiceprint.config import Settings
from voiceprint.diarization.diarizer import Diarizer
from voiceprint.engine import SpeechPolicy
from voiceprint.scoring.ranking import Recognition, match, rank
from voiceprint.scoring.scorer import Scorer, Voices
from voiceprint.service import access, queries
from voiceprint.service.conversations import DiarizationView, DiarizeOptions, describe
from voiceprint.service.errors import (
    FeatureQuotaExceeded,
    GroupQuotaExceeded,
    NotFound,
    PermissionDenied,
    SampleQuotaExceeded,
)
from voiceprint.service.recordings import AudioUpload, Recordings
from voiceprint.service.streams import IdentifyStream
from voiceprint.service.views import FeatureView, GroupView, Page, SampleView, StoredAudio
from voiceprint.store.ids import new_id
from voiceprint.store.models import Account, Feature, Group, Sample, Workspace


class VoiceprintService:
    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: sessionmaker[Session],
        recordings: Recordings,
        scorer: Scorer,
    ) -> None:
        self.settings = settings
        self._sessions = session_factory
        self._recordings = recordings
        self._scorer = scorer
        self._diarizer = Diarizer(recordings.voice)
        self._enrolment = SpeechPolicy(
            "enrolment", settings.min_enroll_speech_s, check_enrolment=True
        )
        self._identification = SpeechPolicy("identification", settings.min_probe_speech_s)
        self._verification = SpeechPolicy("verification", settings.min_probe_speech_s)
        # Quota checks and inserts must not interleave: across processes the parent row is
        # locked (PostgreSQL); SQLite has no row locks, so within this process a lock serves.
        self._quota_lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._recordings.model_id

    # --- groups ----------------------------------------------------------------------------

    def create_group(self, caller: Principal, name: str, desc: str) -> int:
        access.require(caller, perm.CREATE_GROUP)
        created_at = now()
        with self._quota_lock, self._transaction() as session:
            session.get(Workspace, caller.workspace_id, with_for_update=True)
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
                created_at=created_at,
                updated_at=created_at,
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
        access.require(caller, perm.LIST_GROUPS)
        if user_id is not None and user_id != caller.account_id:
            raise PermissionDenied("user_id may only be your own account id")
        conditions = [Group.workspace_id == caller.workspace_id]
        if name_prefix:
            escaped = name_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            # ilike: case-insensitive on SQLite and PostgreSQL alike (plain LIKE is not).
            conditions.append(Group.name.ilike(f"{escaped}%", escape="\\"))
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
        items = [GroupView.of(group, account, count) for group, account, count in rows]
        return items, total or 0

    def update_group(
        self, caller: Principal, group_id: int, name: str | None, desc: str | None
    ) -> None:
        access.require(caller, perm.UPDATE_GROUP)
        with self._transaction() as session:
            group = access.owned_group(session, caller, group_id)
            if name is not None:
                group.name = name
            if desc is not None:
                group.description = desc
            group.updated_at = now()

    def delete_group(self, caller: Principal, group_id: int) -> None:
        access.require(caller, perm.DELETE_GROUP)
        with self._transaction() as session:
            access.owned_group(session, caller, group_id)
            keys = list(
                session.scalars(
                    select(Sample.audio_key)
                    .join(Feature, Feature.id == Sample.feature_id)
                    .where(Feature.group_id == group_id)
                )
            )
            session.execute(delete(Group).where(Group.id == group_id))
        self._recordings.delete(keys)

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
        access.require(caller, perm.CREATE_FEATURE)
        self._check_sample_count(len(uploads))
        with self._sessions() as session:
            access.visible_group(session, caller, group_id)
        analysed = self._recordings.analyse(uploads, self._enrolment)
        created_at = now()
        with (
            self._recordings.storing(uploads, analysed) as samples,
            self._quota_lock,
            self._transaction() as session,
        ):
            access.visible_group(session, caller, group_id, lock=True)
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
                created_at=created_at,
                updated_at=created_at,
                samples=samples,
            )
            session.add(feature)
        return feature.id, [SampleView.of(s) for s in samples]

    def list_features(
        self, caller: Principal, group_id: int, page: Page
    ) -> tuple[list[FeatureView], int]:
        access.require(caller, perm.LIST_FEATURES)
        with self._sessions() as session:
            access.visible_group(session, caller, group_id)
            total = session.scalar(select(func.count()).where(Feature.group_id == group_id))
            rows = session.execute(
                page.apply(
                    select(Feature, Account)
                    .join(Account, Account.id == Feature.creator_id)
                    .where(Feature.group_id == group_id)
                    .options(selectinload(Feature.samples))
                    .order_by(Feature.created_at.desc(), Feature.id.desc())
                )
            ).all()
            items = [FeatureView.of(feature, account) for feature, account in rows]
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
        access.require(caller, perm.UPDATE_FEATURE)
        self._check_sample_count(len(uploads))
        with self._sessions() as session:
            access.owned_feature(session, caller, group_id, feature_id)
        analysed = self._recordings.analyse(uploads, self._enrolment) if uploads else []
        old_keys: list[str] = []
        with (
            self._recordings.storing(uploads, analysed) as samples,
            self._transaction() as session,
        ):
            feature = access.owned_feature(session, caller, group_id, feature_id)
            if name is not None:
                feature.name = name
            if desc is not None:
                feature.description = desc
            if samples:
                old_keys = [s.audio_key for s in feature.samples]
                feature.samples = samples
            feature.updated_at = now()
        self._recordings.delete(old_keys)

    def add_samples(
        self,
        caller: Principal,
        group_id: int,
        feature_id: int,
        uploads: Sequence[AudioUpload],
    ) -> int:
        """Add recordings to an existing voiceprint; returns how many samples it now has."""
        access.require(caller, perm.UPDATE_FEATURE)
        with self._sessions() as session:
            feature = access.owned_feature(session, caller, group_id, feature_id)
            self._check_sample_count(len(feature.samples) + len(uploads))
        analysed = self._recordings.analyse(uploads, self._enrolment)
        with (
            self._recordings.storing(uploads, analysed) as samples,
            self._quota_lock,
            self._transaction() as session,
        ):
            feature = access.owned_feature(session, caller, group_id, feature_id, lock=True)
            self._check_sample_count(len(feature.samples) + len(samples))
            feature.samples.extend(samples)
            feature.updated_at = now()
            return len(feature.samples)

    def delete_feature(self, caller: Principal, group_id: int, feature_id: int) -> None:
        access.require(caller, perm.DELETE_FEATURE)
        with self._transaction() as session:
            feature = access.owned_feature(session, caller, group_id, feature_id)
            keys = [s.audio_key for s in feature.samples]
            session.execute(delete(Feature).where(Feature.id == feature_id))
        self._recordings.delete(keys)

    def feature_audio(self, caller: Principal, group_id: int, feature_id: int) -> StoredAudio:
        """The first stored recording, for a caller who may list voiceprints."""
        access.require(caller, perm.LIST_FEATURES)
        with self._sessions() as session:
            access.visible_group(session, caller, group_id)
        return self.linked_audio(group_id, feature_id)

    def linked_audio(self, group_id: int, feature_id: int) -> StoredAudio:
        """The first stored recording, for a link whose signature the caller has checked."""
        with self._sessions() as session:
            feature = access.feature_in_group(session, group_id, feature_id)
            if not feature.samples:
                raise NotFound(f"voiceprint {feature_id} has no stored audio")
            return self._recordings.read(feature.samples[0])

    # --- recognition -----------------------------------------------------------------------

    def identify(
        self, caller: Principal, group_id: int, upload: AudioUpload, top_k: int | None
    ) -> Recognition:
        access.require(caller, perm.IDENTIFY)
        with self._sessions() as session:
            access.visible_group(session, caller, group_id)
            candidates, voiceprints = queries.enrolled(
                session, self.model_id, Feature.group_id == group_id
            )
        if not candidates:
            return Recognition([], speech_s=0.0)
        (probe,) = self._recordings.analyse([upload], self._identification)
        scores = self._scorer.scores(Voices.of(probe.embedding, probe.narrowband), voiceprints)
        return Recognition(rank(candidates, scores, top_k), probe.speech_s)

    def diarize(
        self, caller: Principal, group_id: int, upload: AudioUpload, options: DiarizeOptions
    ) -> DiarizationView:
        """Who spoke when in a recording, named from the group's voiceprints where they match."""
        access.require(caller, perm.IDENTIFY)
        with self._sessions() as session:
            access.visible_group(session, caller, group_id)
            candidates, voiceprints = queries.enrolled(
                session, self.model_id, Feature.group_id == group_id
            )
        conversation = self._recordings.diarize(
            upload, self._diarizer, options, self.settings.max_diarize_seconds
        )
        return describe(conversation, candidates, voiceprints, self._scorer, options.top_k)

    def open_stream(self, caller: Principal, group_id: int) -> IdentifyStream:
        """A live stream identified against the group's voiceprints as they are now."""
        access.require(caller, perm.IDENTIFY)
        with self._sessions() as session:
            access.visible_group(session, caller, group_id)
            candidates, voiceprints = queries.enrolled(
                session, self.model_id, Feature.group_id == group_id
            )
        return IdentifyStream(self._recordings.voice, self._scorer, candidates, voiceprints)

    def verify(
        self, caller: Principal, group_id: int, feature_id: int, upload: AudioUpload
    ) -> Recognition:
        """1:1 check of a recording against one voiceprint."""
        access.require(caller, perm.IDENTIFY)
        with self._sessions() as session:
            feature = access.visible_feature(session, caller, group_id, feature_id)
            candidates, voiceprint = queries.enrolled(
                session, self.model_id, Feature.id == feature.id
            )
        if not candidates:
            raise NotFound(f"voiceprint {feature_id} has no recordings to compare with")
        (probe,) = self._recordings.analyse([upload], self._verification)
        probe_voice = Voices.of(probe.embedding, probe.narrowband)
        score = self._scorer.scores(probe_voice, voiceprint)[0]
        return Recognition([match(candidates[0], score)], probe.speech_s)

    def _check_sample_count(self, count: int) -> None:
        limit = self.settings.max_samples_per_feature
        if count > limit:
            raise SampleQuotaExceeded(
                f"a voiceprint holds at most {limit} recordings and this one would have "
                f"{count}; replace its audio (PUT) instead of adding more"
            )

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session
