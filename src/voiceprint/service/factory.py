"""Assemble the service from settings: database, audio store, models, scorer.

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
from voiceprint.service.inference import InferenceGate
from voiceprint.service.recordings import Recordings
from voiceprint.service.reembed import reembed
from voiceprint.service.voiceprints import VoiceprintService
from voiceprint.store.blobs import BlobStore
from voiceprint.store.db import make_engine, make_session_factory, migrate
from voiceprint.store.models import Sample

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


def load_models(
    settings: Settings, *, calibration: Path | None = None, progress: bool = True
) -> Models:
    """Pull the model files if needed, then load the voice engine and the scorer.

    ``calibration`` replaces the model's packaged calibration (for evaluations).
    """
    paths = pull_models(settings.model_dir, settings.model, progress=progress)
    voice = VoiceEngine.from_paths(paths, threads=settings.inference_threads)
    fitted = Calibration.load(calibration or paths.calibration)
    cohort = np.load(paths.cohort) if fitted.method == "asnorm" else None
    scorer = Scorer(cohort, fitted)
    return Models(paths, voice, scorer)


def build_runtime(settings: Settings, models: Models | None = None) -> Runtime:
    database, sessions = open_database(settings)
    models = models or load_models(settings)
    blobs = BlobStore(settings.audio_dir)
    with sessions() as session:
        blobs.sweep(session.scalars(select(Sample.audio_key)))
    if settings.reembed_on_start:
        report = reembed(sessions, blobs, models.voice)
        if report.done or report.failed:
            log.info(
                "re-embedded %d samples for %s (%d failed) in %.1f s",
                report.done,
                models.voice.model_id,
                report.failed,
                report.seconds,
            )
    gate = InferenceGate(settings.inference_workers, settings.inference_queue)
    service = VoiceprintService(
        settings=settings,
        session_factory=sessions,
        recordings=Recordings(models.voice, gate, blobs, settings.max_audio_seconds),
        scorer=models.scorer,
    )
    return Runtime(service, models, sessions, database)
