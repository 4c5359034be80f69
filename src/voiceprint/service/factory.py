"""Assemble the service from settings: database, keys and audio store, models, scorer.

``load_models`` is the one place that pulls the model files and builds the
voice engine and scorer from them; the server, the CLI and the benchmarks all
go through it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from voiceprint.config import Settings
from voiceprint.embedding.provision import ModelPaths, pull_models
from voiceprint.engine import VoiceEngine
from voiceprint.scoring.scorer import Calibration, Scorer
from voiceprint.service.audit import AuditTrail, ResultCode, unclassified
from voiceprint.service.inference import InferenceGate
from voiceprint.service.recordings import Recordings
from voiceprint.service.reembed import reembed
from voiceprint.service.voiceprints import VoiceprintService
from voiceprint.store.blobs import Blobs, BlobStore, DatabaseBlobs
from voiceprint.store.db import make_engine, make_session_factory, migrate
from voiceprint.store.keyring import Keyring, configured_master_key
from voiceprint.store.models import Sample
from voiceprint.store.vault import Vault

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Models:
    paths: ModelPaths
    voice: VoiceEngine
    scorer: Scorer


@dataclass
class Runtime:
    service: VoiceprintService
    models: Models
    sessions: sessionmaker[Session]
    database: Engine


def open_database(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    database = make_engine(settings.sqlalchemy_url)
    migrate(database)
    return database, make_session_factory(database)


def open_vault(settings: Settings, sessions: sessionmaker[Session]) -> Vault:
    """The stored audio and embeddings, sealed with the configured key; refuses a wrong or
    missing one (``EncryptionKeyError``)."""
    keyring = Keyring.open(sessions, configured_master_key(settings))
    blobs: Blobs = (
        DatabaseBlobs(sessions)
        if settings.blob_store == "database"
        else BlobStore(settings.audio_dir)
    )
    return Vault(blobs, keyring)


def load_models(
    settings: Settings, *, calibration: Path | None = None, progress: bool = True
) -> Models:
    """Pull the model files if needed, then load the voice engine and the scorer.

    ``calibration`` replaces the model's packaged calibration (for evaluations), with
    the ``cohort.npy`` that ``voiceprint calibrate`` wrote beside it, if any.
    """
    paths = pull_models(settings.model_dir, settings.model, progress=progress)
    voice = VoiceEngine.from_paths(
        paths, threads=settings.inference_threads, spinning=settings.inference_spinning
    )
    fitted = Calibration.load(calibration or paths.calibration)
    beside = calibration.with_name("cohort.npy") if calibration else None
    cohort_file = beside if beside and beside.is_file() else paths.cohort
    cohort = np.load(cohort_file) if fitted.method != "cosine" else None
    scorer = Scorer(cohort, fitted)
    return Models(paths, voice, scorer)


def build_runtime(
    settings: Settings, models: Models | None = None, result_code: ResultCode = unclassified
) -> Runtime:
    """The service; ``result_code`` names the code a caller is answered for an exception
    (the API passes its table), for the audit trail."""
    database, sessions = open_database(settings)
    vault = open_vault(settings, sessions)
    if not vault.encrypted:
        log.warning(
            "no encryption key is set: recordings and voiceprints are stored in clear "
            "(set VOICEPRINT_ENCRYPTION_KEY; see docs/security.md)"
        )
    models = models or load_models(settings)
    with sessions() as session:
        vault.sweep(session.scalars(select(Sample.audio_key)))
    trail = AuditTrail(sessions, result_code)
    if settings.reembed_on_start:
        report = reembed(sessions, vault, models.voice, trail)
        if report.done or report.remeasured or report.failed:
            log.info(
                "re-embedded %d samples for %s, measured %d again (%d failed) in %.1f s",
                report.done,
                models.voice.model_id,
                report.remeasured,
                report.failed,
                report.seconds,
            )
    gate = InferenceGate(settings.inference_workers, settings.inference_queue)
    service = VoiceprintService(
        settings=settings,
        session_factory=sessions,
        recordings=Recordings(models.voice, gate, vault, settings.max_audio_seconds),
        scorer=models.scorer,
        audit_trail=trail,
    )
    return Runtime(service, models, sessions, database)
