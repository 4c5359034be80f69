"""Groups, voiceprints and speaker identification: the operations behind the API.

Every public method takes the caller (``Principal``) first and checks access
in the order ``service.access`` documents. A unit of work either fully happens
or leaves nothing behind: audio is analysed before anything is written, and
``Recordings`` keeps files and rows in step. Each operation on biometric data
writes its row of the audit trail (``service.audit``), in its own transaction
where it changes anything.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from voiceprint.auth import permissions as perm
from voiceprint.auth.tokens import Principal
from voiceprint.clock import now
from voiceprint.config import Settings
from voiceprint.diarization.diarizer import Diarizer
from voiceprint.engine import SpeechPolicy
from voiceprint.scoring.ranking import Candidate, Match, Recognition, match, top
from voiceprint.scoring.scorer import Gallery, Scorer, Voices
from voiceprint.service import access, audit, queries
from voiceprint.service.audit import AuditTrail
from voiceprint.service.conversations import DiarizationView, DiarizeOptions, describe
from voiceprint.service.errors import (
    FeatureQuotaExceeded,
    GroupQuotaExceeded,
    InvalidParameter,
    NotFound,
    PermissionDenied,
    SampleQuotaExceeded,
    StaleVoiceprints,
)
from voiceprint.service.index import EmbeddingIndex, mark_changed
from voiceprint.service.recordings import AudioUpload, Recordings
from voiceprint.service.streams import IdentifyStream
from voiceprint.service.views import (
    EnrolmentView,
    FeatureView,
    GroupView,
    Page,
    SampleView,
    StoredAudio,
)
from voiceprint.store.db import erase_freed
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
        audit_trail: AuditTrail,
    ) -> None:
        self.settings = settings
        self._sessions = session_factory
        self._recordings = recordings
        self._scorer = scorer
        self._audit = audit_trail
        self.index = EmbeddingIndex(
            scorer, recordings.vault, recordings.model_id, settings.index_max_mb * 2**20
        )
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
        with self._audit.operation(audit.DELETE_GROUP, caller, group_id=group_id) as entry:
            access.require(caller, perm.DELETE_GROUP)
            with self._audit.transaction(entry) as session:
                access.owned_group(session, caller, group_id)
                keys = list(
                    session.scalars(
                        select(Sample.audio_key)
                        .join(Feature, Feature.id == Sample.feature_id)
                        .where(Feature.group_id == group_id)
                    )
                )
                session.execute(delete(Group).where(Group.id == group_id))
        self.index.forget(group_id)
        self._erase(keys)

    # --- voiceprints -----------------------------------------------------------------------

    def create_feature(
        self,
        caller: Principal,
        group_id: int,
        name: str,
        desc: str,
        uploads: Sequence[AudioUpload],
    ) -> EnrolmentView:
        """The new voiceprint's id and the quality report of each sample."""
        with self._audit.operation(audit.ENROL, caller, group_id=group_id) as entry:
            access.require(caller, perm.CREATE_FEATURE)
            self._check_sample_count(len(uploads))
            with self._sessions() as session:
                access.visible_group(session, caller, group_id)
            analysed = self._recordings.analyse(uploads, self._enrolment)
            created_at = now()
            entry.feature_id = new_id()
            with (
                self._recordings.storing(uploads, analysed, caller.workspace_id) as samples,
                self._quota_lock,
                self._audit.transaction(entry) as session,
            ):
                access.visible_group(session, caller, group_id, lock=True)
                count = session.scalar(select(func.count()).where(Feature.group_id == group_id))
                if count >= self.settings.max_features_per_group:
                    raise FeatureQuotaExceeded(
                        f"the group already has {count} voiceprints, the most allowed "
                        f"({self.settings.max_features_per_group}); delete one first"
                    )
                feature = Feature(
                    id=entry.feature_id,
                    group_id=group_id,
                    revision=mark_changed(session, group_id),
                    creator_id=caller.account_id,
                    name=name,
                    description=desc,
                    created_at=created_at,
                    updated_at=created_at,
                    samples=samples,
                )
                session.add(feature)
        return EnrolmentView(feature.id, [SampleView.of(s) for s in samples])

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
        with self._audit.operation(
            audit.UPDATE_VOICEPRINT, caller, group_id=group_id, feature_id=feature_id
        ) as entry:
            access.require(caller, perm.UPDATE_FEATURE)
            self._check_sample_count(len(uploads))
            with self._sessions() as session:
                access.owned_feature(session, caller, group_id, feature_id)
            analysed = self._recordings.analyse(uploads, self._enrolment) if uploads else []
            old_keys: list[str] = []
            with (
                self._recordings.storing(uploads, analysed, caller.workspace_id) as samples,
                self._audit.transaction(entry) as session,
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
                feature.revision = mark_changed(session, group_id)
        self._erase(old_keys)

    def add_samples(
        self,
        caller: Principal,
        group_id: int,
        feature_id: int,
        uploads: Sequence[AudioUpload],
    ) -> EnrolmentView:
        """Add recordings to an existing voiceprint; returns all of its samples."""
        with self._audit.operation(
            audit.ADD_SAMPLES, caller, group_id=group_id, feature_id=feature_id
        ) as entry:
            access.require(caller, perm.UPDATE_FEATURE)
            with self._sessions() as session:
                feature = access.owned_feature(session, caller, group_id, feature_id)
                self._check_sample_count(len(feature.samples) + len(uploads))
            analysed = self._recordings.analyse(uploads, self._enrolment)
            with (
                self._recordings.storing(uploads, analysed, caller.workspace_id) as samples,
                self._quota_lock,
                self._audit.transaction(entry) as session,
            ):
                feature = access.owned_feature(session, caller, group_id, feature_id, lock=True)
                self._check_sample_count(len(feature.samples) + len(samples))
                feature.samples.extend(samples)
                feature.updated_at = now()
                feature.revision = mark_changed(session, group_id)
                enrolment = EnrolmentView(feature.id, [SampleView.of(s) for s in feature.samples])
        return enrolment

    def delete_feature(self, caller: Principal, group_id: int, feature_id: int) -> None:
        with self._audit.operation(
            audit.DELETE_VOICEPRINT, caller, group_id=group_id, feature_id=feature_id
        ) as entry:
            access.require(caller, perm.DELETE_FEATURE)
            with self._audit.transaction(entry) as session:
                feature = access.owned_feature(session, caller, group_id, feature_id)
                keys = [s.audio_key for s in feature.samples]
                session.execute(delete(Feature).where(Feature.id == feature_id))
                mark_changed(session, group_id)
        self.index.forget(group_id, [feature_id])
        self._erase(keys)

    def feature_audio(self, caller: Principal, group_id: int, feature_id: int) -> StoredAudio:
        """The first stored recording, for a caller who may list voiceprints."""
        with self._audit.operation(
            audit.DOWNLOAD, caller, group_id=group_id, feature_id=feature_id
        ):
            access.require(caller, perm.LIST_FEATURES)
            with self._sessions() as session:
                access.visible_group(session, caller, group_id)
                sample = self._first_sample(session, group_id, feature_id)
            return self._recordings.read(sample)

    def linked_audio(self, group_id: int, feature_id: int) -> StoredAudio:
        """The first stored recording, for a link whose signature the caller has checked."""
        with self._audit.operation(
            audit.DOWNLOAD_LINK, None, group_id=group_id, feature_id=feature_id
        ) as entry:
            with self._sessions() as session:
                group = session.get(Group, group_id)
                entry.workspace_id = group.workspace_id if group is not None else None
                sample = self._first_sample(session, group_id, feature_id)
            return self._recordings.read(sample)

    @staticmethod
    def _first_sample(session: Session, group_id: int, feature_id: int) -> Sample:
        """The voiceprint's first sample; its audio is read once the session is closed, as a
        recording stored in the database takes a connection of its own (two held at once by
        each of many downloads could exhaust the pool)."""
        feature = access.feature_in_group(session, group_id, feature_id)
        if not feature.samples:
            raise NotFound(f"voiceprint {feature_id} has no stored audio")
        return feature.samples[0]

    # --- recognition -----------------------------------------------------------------------

    def identify(
        self, caller: Principal, group_id: int, upload: AudioUpload, top_k: int | None
    ) -> Recognition:
        with self._audit.operation(audit.IDENTIFY, caller, group_id=group_id) as entry:
            access.require(caller, perm.IDENTIFY)
            return self._identify(entry, caller, [group_id], upload, top_k)

    def identify_across(
        self, caller: Principal, group_ids: Sequence[int], upload: AudioUpload, top_k: int | None
    ) -> Recognition:
        """Identify among the voiceprints of several of the caller's groups at once (beyond
        Coze): ``top_k`` over all of them, decided among all of them (the calibration's bar
        for their number), ties in the order of ``group_ids``. Audited as one identify,
        naming the group and voiceprint of the best match, if any."""
        with self._audit.operation(audit.IDENTIFY, caller) as entry:
            access.require(caller, perm.IDENTIFY)
            most = self.settings.max_groups_per_identify
            if not 1 <= len(group_ids) <= most:
                raise InvalidParameter(
                    f"group_ids must name 1 to {most} groups; got {len(group_ids)}"
                )
            return self._identify(entry, caller, group_ids, upload, top_k)

    def _identify(
        self,
        entry: audit.Entry,
        caller: Principal,
        group_ids: Sequence[int],
        upload: AudioUpload,
        top_k: int | None,
    ) -> Recognition:
        """Identify among the groups' voiceprints, for a caller allowed to identify."""
        with self._sessions() as session:
            groups = [access.visible_group(session, caller, g) for g in dict.fromkeys(group_ids)]
            feature_ids, voiceprints = self._indexed(session, groups)
        if not len(feature_ids):
            return Recognition([], speech_s=0.0)
        (probe,) = self._recordings.analyse([upload], self._identification)
        scores = self._scorer.scores(Voices.of(probe.embedding, probe.narrowband), voiceprints)
        rows = top(scores, top_k)
        with self._sessions() as session:
            named = queries.named(session, feature_ids[rows])
        # One deleted since the index was read is gone for good: not answered.
        answered = [r for r in rows if feature_ids[r] in named]
        ranked = [match(named[feature_ids[r]], scores[r]) for r in answered]
        matched = [m for m in ranked if m.is_match]
        if matched:
            entry.group_id = matched[0].group_id
        self._record_use(entry, matched)
        return Recognition(ranked, probe.speech_s)

    def diarize(
        self, caller: Principal, group_id: int, upload: AudioUpload, options: DiarizeOptions
    ) -> DiarizationView:
        """Who spoke when in a recording, named from the group's voiceprints where they match."""
        with self._audit.operation(audit.DIARIZE, caller, group_id=group_id):
            access.require(caller, perm.IDENTIFY)
            with self._sessions() as session:
                group = access.visible_group(session, caller, group_id)
                candidates, voiceprints = self._named(session, group)
            conversation = self._recordings.diarize(
                upload, self._diarizer, options, self.settings.max_diarize_seconds
            )
            return describe(conversation, candidates, voiceprints, self._scorer, options.top_k)

    def open_stream(self, caller: Principal, group_id: int) -> IdentifyStream:
        """A live stream identified against the group's voiceprints as they are now; the
        caller reports its end (``close_stream``)."""
        with self._audit.operation(audit.STREAM_OPENED, caller, group_id=group_id):
            access.require(caller, perm.IDENTIFY)
            with self._sessions() as session:
                group = access.visible_group(session, caller, group_id)
                candidates, voiceprints = self._named(session, group)
            return IdentifyStream(self._recordings.voice, self._scorer, candidates, voiceprints)

    def close_stream(self, caller: Principal, group_id: int) -> None:
        """Record the end of a stream ``open_stream`` opened."""
        with self._audit.operation(audit.STREAM_CLOSED, caller, group_id=group_id):
            pass

    def verify(
        self, caller: Principal, group_id: int, feature_id: int, upload: AudioUpload
    ) -> Recognition:
        """1:1 check of a recording against one voiceprint."""
        with self._audit.operation(
            audit.VERIFY, caller, group_id=group_id, feature_id=feature_id
        ) as entry:
            access.require(caller, perm.IDENTIFY)
            with self._sessions() as session:
                group = access.visible_group(session, caller, group_id)
                feature = access.feature_in_group(session, group_id, feature_id)
                candidates, voiceprint = self._enrolled(session, Feature.id == feature.id)
                if candidates and voiceprint.narrowband.all():
                    enrolled = self._as_in_its_group(session, group, feature.id, voiceprint)
                else:
                    enrolled = self._scorer.gallery(voiceprint)
            if not candidates:
                raise NotFound(f"voiceprint {feature_id} has no recordings to compare with")
            (probe,) = self._recordings.analyse([upload], self._verification)
            probe_voice = Voices.of(probe.embedding, probe.narrowband)
            result = match(candidates[0], self._scorer.scores(probe_voice, enrolled)[0])
            self._record_use(entry, [result] if result.is_match else [])
        return Recognition([result], probe.speech_s)

    # --- retention -------------------------------------------------------------------------

    def expire_unused(self, at: int | None = None) -> int:
        """Delete, as a delete does, every voiceprint unused for ``expire_unused_days`` at
        time ``at`` (now); each is one audit row. Returns how many were deleted."""
        days = self.settings.expire_unused_days
        if days <= 0:
            return 0
        cutoff = (now() if at is None else at) - days * 86400
        unused = or_(
            Feature.last_used_at < cutoff,
            Feature.last_used_at.is_(None) & (Feature.created_at < cutoff),
        )
        with self._sessions() as session:
            expired = session.execute(
                select(Feature.id, Feature.group_id, Group.workspace_id)
                .join(Group, Group.id == Feature.group_id)
                .where(unused)
            ).all()
        deleted = 0
        for feature_id, group_id, workspace_id in expired:
            with self._audit.operation(
                audit.EXPIRE, None, group_id=group_id, feature_id=feature_id,
                workspace_id=workspace_id,
            ) as entry, self._audit.transaction(entry) as session:  # fmt: skip
                keys = list(
                    session.scalars(select(Sample.audio_key).where(Sample.feature_id == feature_id))
                )
                gone = session.execute(delete(Feature).where(Feature.id == feature_id, unused))
                if not gone.rowcount:  # used or deleted meanwhile
                    entry.void()
                    continue
                mark_changed(session, group_id)
            self.index.forget(group_id, [feature_id])
            self._erase(keys)
            deleted += 1
        return deleted

    def _erase(self, keys: Sequence[str]) -> None:
        """Remove for good what a committed delete left: the audio files, freed pages."""
        self._recordings.delete(keys)
        if keys:
            erase_freed(self._sessions)

    def _indexed(self, session: Session, groups: Sequence[Group]) -> tuple[np.ndarray, Gallery]:
        """The ids and gallery of the groups' voiceprints, group after group."""
        parts = [self.index.enrolled(session, group) for group in groups]
        feature_ids = np.concatenate([ids for ids, _ in parts])
        return feature_ids, Gallery.concat([gallery for _, gallery in parts if len(gallery)])

    def _as_in_its_group(
        self, session: Session, group: Group, feature_id: int, voiceprint: Voices
    ) -> Gallery:
        """A narrow-band voiceprint prepared as its group's gallery holds it: marked as of a
        phone line where the group's voices say they share one (``Scorer.grouped``); as it
        is while other voiceprints of the group wait to be re-embedded for this model."""
        try:
            feature_ids, gallery = self._indexed(session, [group])
        except StaleVoiceprints:
            return self._scorer.gallery(voiceprint)
        row = np.flatnonzero(feature_ids == feature_id)
        return gallery.take(row) if len(row) else self._scorer.gallery(voiceprint)

    def _named(self, session: Session, group: Group) -> tuple[list[Candidate], Gallery]:
        """Every voiceprint of the group with its name, and the gallery."""
        feature_ids, gallery = self._indexed(session, [group])
        named = queries.named(session, feature_ids)
        present = np.array([i in named for i in feature_ids], dtype=bool)
        if not present.all():  # deleted since the index was read
            feature_ids, gallery = feature_ids[present], gallery.take(np.flatnonzero(present))
        return [named[i] for i in feature_ids], gallery

    def _enrolled(
        self, session: Session, where: ColumnElement[bool]
    ) -> tuple[list[Candidate], Voices]:
        return queries.enrolled(session, self._recordings.vault, self.model_id, where)

    def _record_use(self, entry: audit.Entry, matched: Sequence[Match]) -> None:
        """Audit the recognition and note when each voiceprint matched; an identify names
        its best match only (never one that did not match)."""
        if entry.feature_id is None and matched:
            entry.feature_id = matched[0].feature_id
        with self._audit.transaction(entry) as session:
            if matched:
                session.execute(
                    update(Feature)
                    .where(Feature.id.in_([m.feature_id for m in matched]))
                    .values(last_used_at=now())
                )

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
