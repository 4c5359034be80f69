"""Reads that the recognition path needs, each in a fixed number of statements."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Row, select
from sqlalchemy.orm import Session

from voiceprint.scoring.ranking import Candidate
from voiceprint.scoring.scorer import Voices
from voiceprint.service.errors import StaleVoiceprints
from voiceprint.store.models import Feature, Group, Sample
from voiceprint.store.vault import Vault

# Voiceprints read and combined at once: bounds what a large group's read holds in memory.
BATCH = 2000
# Ids one statement carries at most: databases bound a statement's values (SQLite 32766).
IDS_PER_STATEMENT = 1000


@dataclass(frozen=True)
class Enrolled:
    """Voiceprints in enrolment order, each with its combined embedding."""

    candidates: list[Candidate]
    created_at: np.ndarray  # int64, as stored
    revisions: np.ndarray  # int64: the group generation each last changed at
    voices: Voices


def named(session: Session, feature_ids: Sequence[int]) -> dict[int, Candidate]:
    """The voiceprints of ``feature_ids`` that exist, by id."""
    ids = [int(i) for i in feature_ids]
    found: dict[int, Candidate] = {}
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        rows = session.execute(
            select(Feature.id, Feature.group_id, Feature.name, Feature.description).where(
                Feature.id.in_(ids[start : start + IDS_PER_STATEMENT])
            )
        )
        found.update((row.id, Candidate(*row)) for row in rows)
    return found


def generations(session: Session, group_ids: Sequence[int]) -> dict[int, int]:
    """The generation of each group of ``group_ids`` that exists."""
    found: dict[int, int] = {}
    for start in range(0, len(group_ids), IDS_PER_STATEMENT):
        chunk = group_ids[start : start + IDS_PER_STATEMENT]
        found.update(
            session.execute(select(Group.id, Group.generation).where(Group.id.in_(chunk))).all()
        )
    return found


def enrolled(
    session: Session, vault: Vault, model_id: str, where: ColumnElement[bool]
) -> tuple[list[Candidate], Voices]:
    """Voiceprints matching ``where``, in enrolment order, and their combined embeddings
    (opened from the ``vault``, in memory only)."""
    parts = list(enrolled_batches(session, vault, model_id, where))
    candidates = [c for part in parts for c in part.candidates]
    return candidates, Voices.concat([part.voices for part in parts])


def enrolled_batches(
    session: Session, vault: Vault, model_id: str, where: ColumnElement[bool]
) -> Iterator[Enrolled]:
    """The voiceprints matching ``where`` that have samples, in enrolment order, in
    batches of up to ``BATCH``.

    One statement whatever the group's size, its rows streamed. A voiceprint with a
    sample of another model is refused by name (``StaleVoiceprints``, after the last
    batch) rather than scored with it or silently skipped.
    """
    rows = session.execute(
        select(
            Feature.id.label("feature_id"),
            Feature.group_id,
            Feature.name,
            Feature.description,
            Feature.created_at,
            Feature.revision,
            Sample.id.label("sample_id"),
            Sample.embedding,
            Sample.key_generation,
            Sample.model_id,
            Sample.quality,
        )
        .join(Sample, Sample.feature_id == Feature.id)
        .where(where)
        .order_by(Feature.created_at, Feature.id, Sample.id)
        .execution_options(yield_per=BATCH)
    )
    features = (list(samples) for _, samples in itertools.groupby(rows, lambda r: r.feature_id))
    stale: list[int] = []
    while batch := list(itertools.islice(features, BATCH)):
        current = [all(s.model_id == model_id for s in samples) for samples in batch]
        fresh = [samples for samples, ok in zip(batch, current, strict=True) if ok]
        stale += [
            samples[0].feature_id for samples, ok in zip(batch, current, strict=True) if not ok
        ]
        yield Enrolled(
            [Candidate(s[0].feature_id, s[0].group_id, s[0].name, s[0].description) for s in fresh],
            np.asarray([s[0].created_at for s in fresh], np.int64),
            np.asarray([s[0].revision for s in fresh], np.int64),
            _combined(vault, fresh),
        )
    if stale:
        raise StaleVoiceprints(stale, model_id)


def _combined(vault: Vault, features: list[list[Row[Any]]]) -> Voices:
    """One voiceprint of each feature's sample rows."""
    if not features:
        return Voices.concat([])
    samples = [s for rows in features for s in rows]
    voices = Voices.of(
        np.stack(
            [vault.open_embedding(s.sample_id, s.embedding, s.key_generation) for s in samples]
        ),
        [bool(s.quality.get("narrowband")) for s in samples],
    )
    return voices.combined_runs(np.array([len(rows) for rows in features]))
