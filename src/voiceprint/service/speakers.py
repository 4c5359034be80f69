"""Voiceprints addressed by a speaker id the client chooses (xiaozhi's ``speaker_id``).

Each account gets one group, named ``GROUP_NAME``, made on first use. A speaker id
is kept in full in its voiceprint's ``desc`` (ids such as manager-api's 32-character
UUIDs do not fit the 20-character ``name``, which shows the id's first 20 characters).
The voiceprints are ordinary ones: the Coze API and the console see them as they
see any other, and every operation goes through ``VoiceprintService``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from voiceprint.auth import permissions as perm
from voiceprint.auth.tokens import Principal
from voiceprint.service import access
from voiceprint.service.errors import InvalidParameter
from voiceprint.service.recordings import AudioUpload
from voiceprint.service.voiceprints import VoiceprintService
from voiceprint.store.models import Feature, Group

GROUP_NAME = "xiaozhi"
GROUP_DESC = "Voiceprints of the xiaozhi API; each desc is the speaker_id"
NAME_LENGTH = 20
MAX_SPEAKER_ID = 255  # voiceprint-api's VARCHAR(255)


@dataclass(frozen=True)
class Identified:
    """The best candidate, if one reached the match threshold, and its 0-100 score."""

    speaker_id: str | None
    score: float


def speaker_id_of(text: str) -> str:
    """A speaker id as given, trimmed; refused where it could never be found again."""
    speaker_id = text.strip()
    if not speaker_id:
        raise InvalidParameter("speaker_id is empty; send the id this voice is known by")
    if len(speaker_id) > MAX_SPEAKER_ID:
        raise InvalidParameter(f"speaker_id is {len(speaker_id)} characters; at most 255")
    if "," in speaker_id or "/" in speaker_id:
        # identify splits candidates at commas and delete takes the id in the path
        raise InvalidParameter(f"speaker_id {speaker_id!r} must not contain ',' or '/'")
    return speaker_id


def speaker_ids_of(text: str) -> list[str]:
    """Comma-separated candidates, in order, without blanks or repeats."""
    ids = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not ids:
        raise InvalidParameter("speaker_ids is empty; send the candidates, comma-separated")
    return ids


class Speakers:
    def __init__(self, service: VoiceprintService, sessions: sessionmaker[Session]) -> None:
        self._service = service
        self._sessions = sessions
        # Looking up an id and creating it must not interleave (two registrations of one new
        # id would make two voiceprints); writes are rare, so they take turns.
        self._lock = threading.RLock()

    def register(self, caller: Principal, speaker_id: str, uploads: Sequence[AudioUpload]) -> int:
        """Enrol ``speaker_id`` from its recordings, replacing the voice it had."""
        with self._lock:
            group_id = self._group(caller)
            existing = [feature_id for feature_id, _ in self._voiceprints(group_id, [speaker_id])]
            if not existing:
                return self._create(caller, group_id, speaker_id, uploads)
            first, *extra = existing
            self._service.update_feature(caller, group_id, first, None, None, uploads)
            for feature_id in extra:  # one voice per id, as voiceprint-api keeps it
                self._service.delete_feature(caller, group_id, feature_id)
            return first

    def add_ids(self, caller: Principal, speaker_ids: Sequence[str]) -> list[str]:
        """A voiceprint without audio (to enrol later) for each id not yet known; those ids."""
        with self._lock:
            group_id = self._group(caller)
            known = {speaker_id for _, speaker_id in self._voiceprints(group_id, speaker_ids)}
            added = [s for s in dict.fromkeys(speaker_ids) if s not in known]
            for speaker_id in added:
                self._create(caller, group_id, speaker_id, [])
            return added

    def identify(
        self, caller: Principal, speaker_ids: Sequence[str], upload: AudioUpload
    ) -> Identified:
        """Who among ``speaker_ids`` is speaking: the best of them, if a match."""
        access.require(caller, perm.IDENTIFY)
        group_id = self._find_group(caller)
        if group_id is None:
            return Identified(None, 0.0)
        wanted = set(speaker_ids)
        ranked = self._service.identify(caller, group_id, upload, None).matches
        best = next((m for m in ranked if m.desc in wanted), None)
        if best is None:
            return Identified(None, 0.0)
        return Identified(best.desc if best.is_match else None, best.score)

    def delete(self, caller: Principal, speaker_id: str) -> bool:
        """Remove the voice of ``speaker_id`` for good; False if there was none."""
        access.require(caller, perm.DELETE_FEATURE)
        with self._lock:
            group_id = self._find_group(caller)
            if group_id is None:
                return False
            existing = self._voiceprints(group_id, [speaker_id])
            for feature_id, _ in existing:
                self._service.delete_feature(caller, group_id, feature_id)
            return bool(existing)

    def count(self, caller: Principal) -> int:
        """How many voiceprints the caller's group holds (0 before the first)."""
        access.require(caller, perm.LIST_FEATURES)
        group_id = self._find_group(caller)
        if group_id is None:
            return 0
        with self._sessions() as session:
            return session.scalar(select(func.count()).where(Feature.group_id == group_id)) or 0

    def unvoiced(self, caller: Principal, speaker_ids: Sequence[str]) -> list[str]:
        """Which of ``speaker_ids`` have a voiceprint here but no recording in it yet."""
        group_id = self._find_group(caller)
        if group_id is None:
            return []
        with self._sessions() as session:
            empty = set(
                session.scalars(
                    select(Feature.description).where(
                        Feature.group_id == group_id,
                        Feature.description.in_(speaker_ids),
                        ~Feature.samples.any(),
                    )
                )
            )
        return [s for s in speaker_ids if s in empty]

    def _create(
        self, caller: Principal, group_id: int, speaker_id: str, uploads: Sequence[AudioUpload]
    ) -> int:
        name = speaker_id[:NAME_LENGTH]  # what people see; the desc keeps the id in full
        feature_id = self._service.create_feature(
            caller, group_id, name, speaker_id, uploads
        ).feature_id
        return feature_id

    def _group(self, caller: Principal) -> int:
        """The caller's group, made now if it has none (call with the lock held)."""
        found = self._find_group(caller)
        if found is not None:
            return found
        return self._service.create_group(caller, GROUP_NAME, GROUP_DESC)

    def _find_group(self, caller: Principal) -> int | None:
        with self._sessions() as session:
            return session.scalar(
                select(Group.id)
                .where(
                    Group.workspace_id == caller.workspace_id,
                    Group.creator_id == caller.account_id,
                    Group.name == GROUP_NAME,
                )
                .order_by(Group.created_at, Group.id)
                .limit(1)
            )

    def _voiceprints(self, group_id: int, speaker_ids: Sequence[str]) -> list[tuple[int, str]]:
        """(voiceprint id, speaker id) of the group's voiceprints for ``speaker_ids``, oldest
        first."""
        with self._sessions() as session:
            rows = session.execute(
                select(Feature.id, Feature.description)
                .where(Feature.group_id == group_id, Feature.description.in_(speaker_ids))
                .order_by(Feature.created_at, Feature.id)
            )
            return [(feature_id, desc) for feature_id, desc in rows]
