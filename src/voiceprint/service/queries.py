"""Reads that the recognition path needs, each in a fixed number of statements."""

from __future__ import annotations

import numpy as np
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, selectinload

from voiceprint.scoring.ranking import Candidate
from voiceprint.scoring.scorer import combine
from voiceprint.store.models import Feature


def enrolled(
    session: Session, model_id: str, where: ColumnElement[bool]
) -> list[tuple[Candidate, np.ndarray]]:
    """Voiceprints matching ``where``, in enrolment order, each with its combined embedding.

    Two statements whatever the group's size: the voiceprints, then all their
    samples. Samples made by another model are left out.
    """
    features = session.scalars(
        select(Feature)
        .where(where)
        .options(selectinload(Feature.samples))
        .order_by(Feature.created_at, Feature.id)
    )
    result = []
    for feature in features:
        vectors = [
            np.frombuffer(s.embedding, dtype="<f4")
            for s in feature.samples
            if s.model_id == model_id
        ]
        if vectors:
            candidate = Candidate(feature.id, feature.name, feature.description)
            result.append((candidate, combine(np.stack(vectors))))
    return result
