"""Move stored voiceprints to the model the server runs, from their original recordings.

Every sample keeps its original audio, so a change of model never asks anyone
to enrol again: each sample whose embedding another model made is decoded,
analysed and embedded anew, and written back in its own small transaction,
on the condition that it still holds the old model's embedding. A sample whose
quality report an earlier revision of the analysis measured (``QUALITY_REVISION``)
is measured again the same way, without embedding it again: its narrow-band flag
decides which curve scores it. So the work
is idempotent (a second run finds nothing to do), resumable and safe to kill
at any moment (what was committed stays done; the rest is found next time),
and two processes doing it at once only duplicate effort. A run that finds anything
to re-embed or measure again writes one audit row.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from voiceprint.audio.decode import decode_audio
from voiceprint.audio.errors import AudioError
from voiceprint.audio.limits import SAMPLE_RATE
from voiceprint.engine import QUALITY_REVISION, SpeechPolicy, VoiceEngine
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
    done: int  # embedded again (another model had)
    failed: int  # left as they were: missing or undecodable audio (logged by sample id)
    seconds: float
    remeasured: int = 0  # only their quality report measured again (an earlier analysis had)

    @property
    def per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


def stale_samples(sessions: sessionmaker[Session], model_id: str) -> list[int]:
    """Ids of the samples another model embedded or an earlier analysis measured, oldest
    first."""
    with sessions() as session:
        query = (
            select(Sample.id)
            .where(or_(Sample.model_id != model_id, Sample.quality_revision < QUALITY_REVISION))
            .order_by(Sample.id)
        )
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
    done = failed = remeasured = 0
    for sample_id in tqdm(
        stale,
        desc="re-embedding",
        unit="sample",
        disable=not progress,
    ):
        with sessions() as session:
            sample = session.get(Sample, sample_id)
            if sample is None or (
                sample.model_id == voice.model_id and sample.quality_revision >= QUALITY_REVISION
            ):
                continue  # deleted or done meanwhile (by this analysis or a newer one)
            old_model, old_revision = sample.model_id, sample.quality_revision
            quality, feature_id = dict(sample.quality), sample.feature_id
            rate, channels = sample.source_rate or SAMPLE_RATE, sample.source_channels or 1
        try:
            audio = decode_audio(vault.audio(sample), sample_rate=rate, channels=channels)
            if old_model == voice.model_id:
                embedding, examined = None, voice.examine(audio, _AGAIN).quality
            else:
                analysed = voice.analyse(audio, _AGAIN)
                embedding, examined = analysed.embedding, analysed.quality
        except (OSError, AudioError, DamagedData) as exc:
            log.warning("sample %d could not be re-embedded: %s", sample_id, exc)
            failed += 1
            continue
        measured = {k: v for k, v in examined.items() if v is not None}
        values = {
            "model_id": voice.model_id,
            "quality": {**quality, **measured},
            "quality_revision": QUALITY_REVISION,
        }
        if embedding is not None:
            values["embedding"] = vault.stored_embedding(sample, embedding)
        with sessions() as session, session.begin():
            updated = session.execute(
                update(Sample)
                .where(
                    Sample.id == sample_id,
                    Sample.model_id == old_model,
                    Sample.quality_revision == old_revision,
                    Sample.key_generation.is_not_distinct_from(sample.key_generation),
                )
                .values(**values)
            )
            if not updated.rowcount:
                continue  # another process changed it meanwhile: its work counts there
            group_id = session.scalar(select(Feature.group_id).where(Feature.id == feature_id))
            mark_changed(session, group_id, [feature_id])
        if embedding is None:
            remeasured += 1
        else:
            done += 1
    return ReembedReport(done, failed, time.perf_counter() - started, remeasured)
