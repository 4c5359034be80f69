"""Sealing what is stored in clear, or under an older data key, while the server serves.

``voiceprint keys encrypt`` moves a plaintext deployment to encryption (and,
after ``new_data_keys``, re-encrypts everything under fresh data keys). Each
sample is done on its own: its audio is sealed into a new file, the row is
switched to it on the condition that it still holds what was read, and only
then is the old file removed. So the work is idempotent, resumable and safe to
kill, as ``reembed`` is: a kill leaves at most one unreferenced file, which
``BlobStore.sweep`` (at the next start, or at the end of a later run) removes
once it is an hour old.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from voiceprint.service import audit
from voiceprint.service.audit import AuditTrail
from voiceprint.store.crypto import DamagedData
from voiceprint.store.db import erase_freed
from voiceprint.store.keyring import Keyring
from voiceprint.store.models import DataKey, Feature, Group, Sample, Workspace
from voiceprint.store.vault import Vault

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SealReport:
    done: int
    failed: int  # left as they were: missing or damaged (logged by sample id)
    seconds: float


def unsealed_samples(sessions: sessionmaker[Session]) -> list[tuple[int, int]]:
    """(sample id, workspace id) of each sample in clear or under an older data key."""
    newest = (
        select(DataKey.workspace_id, func.max(DataKey.generation).label("generation"))
        .group_by(DataKey.workspace_id)
        .subquery()
    )
    query = (
        select(Sample.id, Group.workspace_id)
        .join(Feature, Feature.id == Sample.feature_id)
        .join(Group, Group.id == Feature.group_id)
        .outerjoin(newest, newest.c.workspace_id == Group.workspace_id)
        .where(or_(Sample.key_generation.is_(None), Sample.key_generation < newest.c.generation))
        .order_by(Sample.id)
    )
    with sessions() as session:
        return [(sample_id, workspace_id) for sample_id, workspace_id in session.execute(query)]


def new_data_keys(sessions: sessionmaker[Session], keyring: Keyring) -> int:
    """A fresh data key for every workspace; the samples then count as unsealed."""
    with sessions() as session:
        workspaces = list(session.scalars(select(Workspace.id)))
    for workspace_id in workspaces:
        keyring.new_generation(workspace_id)
    return len(workspaces)


def seal_stored(
    sessions: sessionmaker[Session], vault: Vault, trail: AuditTrail, *, progress: bool = False
) -> SealReport:
    keyring = vault.keyring
    if keyring is None:
        raise ValueError("no encryption key is configured")
    started = time.perf_counter()
    done = failed = 0
    with trail.operation(audit.ENCRYPT, None):
        todo = unsealed_samples(sessions)
        for sample_id, workspace_id in tqdm(
            todo, desc="encrypting", unit="sample", disable=not progress
        ):
            try:
                done += _seal_one(sessions, vault, keyring, sample_id, workspace_id)
            except (OSError, DamagedData) as exc:
                log.warning("sample %d could not be encrypted: %s", sample_id, exc)
                failed += 1
        with sessions() as session:
            vault.sweep(session.scalars(select(Sample.audio_key)))
        erase_freed(sessions)
    return SealReport(done, failed, time.perf_counter() - started)


def _seal_one(
    sessions: sessionmaker[Session],
    vault: Vault,
    keyring: Keyring,
    sample_id: int,
    workspace_id: int,
) -> int:
    generation = keyring.current_generation(workspace_id)
    with sessions() as session:
        sample = session.get(Sample, sample_id)
        if sample is None or sample.key_generation == generation:
            return 0  # deleted or done meanwhile
        embedding = vault.embedding(sample)
        read = (sample.audio_key, sample.key_generation, sample.model_id)
    audio = vault.audio(sample)  # outside the session: a blob in the database has its own
    sealed = Sample(id=sample_id)  # holds the new values; never added to a session
    vault.fill(sealed, audio, embedding, workspace_id, generation=generation)
    with sessions() as session, session.begin():
        switched = session.execute(
            update(Sample)
            .where(
                Sample.id == sample_id,
                Sample.audio_key == read[0],
                Sample.key_generation.is_not_distinct_from(read[1]),
                Sample.model_id == read[2],  # not re-embedded meanwhile
            )
            .values(
                audio_key=sealed.audio_key,
                embedding=sealed.embedding,
                key_generation=generation,
            )
        ).rowcount
    vault.delete([read[0]] if switched else [sealed.audio_key])
    return 1 if switched else 0
