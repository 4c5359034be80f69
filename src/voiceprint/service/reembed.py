"""Move stored voiceprints to the model the server runs, from their original recordings.

Every sample keeps its original audio, so a change of model never asks anyone
to enrol again: each sample whose embedding another model made is decoded,
analysed and embedded anew, and written back in its own small transaction,
on the condition that it still holds the old model's embedding. So the work
is idempotent (a second run finds nothing to do), resumable and safe to kill
at any moment (what was committed stays done; the rest is found next time),
and two processes doing it at once only duplicate effort. A run that re-embeds
anything writes one audit row.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from voiceprint.audio.decode import decode_audio
from voiceprint.audio.errors import AudioError
from voiceprint.audio.limits import SAMPLE_RATE
from voiceprint.engine import SpeechPolicy, VoiceEngine
from voiceprint.service import audit
from voiceprint.service.audit import AuditTrail
from voiceprint.service.index import mark_changed
from voiceprint.store.crypto import DamagedData
from voiceprint.store.models import Feature, Sample
from voiceprint.store.vault import Vault

log = logging.getLogger(__name__)

# The recording was accepted at enrolment; here it only needs embedding again.
_AGAIN = SpeechPolicy("re-embedding", min_speech_s=0.0)


@dataclass(frozen=True)
class ReembedReport:
    done: int
    failed: int  # left as they were: missing or undecodable audio (logged by sample id)
    seconds: float

    @property
    def per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


def stale_samples(sessions: sessionmaker[Session], model_id: str) -> list[int]:
    """Ids of the samples another model embedded, oldest first."""
    with sessions() as session:
        query = select(Sample.id).where(Sample.model_id != model_id).order_by(Sample.id)
        return list(session.scalars(query))


def reembed(
    sessions: sessionmaker[Session],
    vault: Vault,
    voice: VoiceEngine,
    trail: AuditTrail,
    *,
    progress: bool = False,
) -> ReembedReport:
    stale = stale_samples(sessions, voice.model_id)
    if not stale:
        return ReembedReport(0, 0, 0.0)
    with trail.operation(audit.REEMBED, None):
        return _reembed(sessions, vault, voice, stale, progress)


def _reembed(
    sessions: sessionmaker[Session],
    vault: Vault,
    voice: VoiceEngine,
    stale: list[int],
    progress: bool,
) -> ReembedReport:
    started = time.perf_counter()
    done = failed = 0
    for sample_id in tqdm(
        stale,
        desc="re-embedding",
        unit="sample",
        disable=not progress,
    ):
        with sessions() as session:
            sample = session.get(Sample, sample_id)
            if sample is None or sample.model_id == voice.model_id:
                continue  # deleted or done meanwhile
            old_model, quality = sample.model_id, dict(sample.quality)
            feature_id = sample.feature_id
            rate, channels = sample.source_rate or SAMPLE_RATE, sample.source_channels or 1
        try:
            audio = decode_audio(vault.audio(sample), sample_rate=rate, channels=channels)
            analysed = voice.analyse(audio, _AGAIN)
        except (OSError, AudioError, DamagedData) as exc:
            log.warning("sample %d could not be re-embedded: %s", sample_id, exc)
            failed += 1
            continue
        measured = {k: v for k, v in analysed.quality.items() if v is not None}
        with sessions() as session, session.begin():
            updated = session.execute(
                update(Sample)
                .where(
                    Sample.id == sample_id,
                    Sample.model_id == old_model,
                    Sample.key_generation.is_not_distinct_from(sample.key_generation),
                )
                .values(
                    embedding=vault.stored_embedding(sample, analysed.embedding),
                    model_id=voice.model_id,
                    quality={**quality, **measured},
                )
            )
            if updated.rowcount:
                group_id = session.scalar(select(Feature.group_id).where(Feature.id == feature_id))
                mark_changed(session, group_id, [feature_id])
        done += 1
    return ReembedReport(done, failed, time.perf_counter() - started)
