"""Assemble the service from settings: database, audio store, models, scorer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from voiceprint.config import Settings
from voiceprint.embedding.provision import pull_models
from voiceprint.engine import VoiceEngine
from voiceprint.scoring.scorer import Calibration, Scorer
from voiceprint.service.inference import InferenceGate
from voiceprint.service.links import LinkSigner
from voiceprint.service.voiceprints import VoiceprintService
from voiceprint.store.blobs import BlobStore
from voiceprint.store.db import make_engine, make_session_factory, migrate
from voiceprint.store.models import Sample


@dataclass
class Runtime:
    service: VoiceprintService
    sessions: sessionmaker[Session]
    database: Engine


def open_database(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    database = make_engine(settings.sqlalchemy_url)
    migrate(database)
    return database, make_session_factory(database)


def build_runtime(settings: Settings, engine: VoiceEngine | None = None) -> Runtime:
    database, sessions = open_database(settings)
    paths = pull_models(settings.model_dir)
    engine = engine or VoiceEngine.load(settings.model_dir, threads=settings.inference_threads)
    blobs = BlobStore(settings.audio_dir)
    with sessions() as session:
        blobs.sweep(session.scalars(select(Sample.audio_key)))
    service = VoiceprintService(
        settings=settings,
        session_factory=sessions,
        blobs=blobs,
        engine=engine,
        scorer=Scorer(np.load(paths.cohort), Calibration.load()),
        gate=InferenceGate(settings.inference_workers, settings.inference_queue),
        links=LinkSigner(sessions, settings.audio_url_ttl_seconds),
    )
    return Runtime(service, sessions, database)
