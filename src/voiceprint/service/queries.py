"""Reads that the recognition path needs, each in a fixed number of statements."""

from __future__ import annotations

import numpy as np
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, selectinload

from voiceprint.scoring.ranking import Candidate
from voiceprint.scoring.scorer import Voices
from voiceprint.service.errors import StaleVoiceprints
from voiceprint.store.models import Feature
from voiceprint.store.vault import Vault


def enrolled(
    session: Session, vault: Vault, model_id: str, where: ColumnElement[bool]
) -> tuple[list[Candidate], Voices]:
    """Voiceprints matching ``where``, in enrolment order, and their combined embeddings
    (opened from the ``vault``, in memory only).

    Two statements whatever the group's size: the voiceprints, then all their
    samples. A voiceprint with a sample of another model is refused by name
    (``StaleVoiceprints``) rather than scored with it or silently skipped.
    """
    features = list(
        session.scalars(
            select(Feature)
            .where(where)
            .options(selectinload(Feature.samples))
            .order_by(Feature.created_at, Feature.id)
        )
    )
    stale = [f for f in features if any(s.model_id != model_id for s in f.samples)]
    if stale:
        raise StaleVoiceprints([f.id for f in stale], model_id)
    candidates, voiceprints = [], []
    for feature in features:
        if not feature.samples:
            continue
        samples = Voices.of(
            np.stack([vault.embedding(s) for s in feature.samples]),
            [bool(s.quality.get("narrowband")) for s in feature.samples],
        )
        candidates.append(Candidate(feature.id, feature.name, feature.description))
        voiceprints.append(samples.combined())
    return candidates, Voices.concat(voiceprints)
