"""Migrations on a database that already holds voiceprints, on SQLite and PostgreSQL:
existing groups and voiceprints start at generation and revision 0 (0004), existing samples
are marked to be measured again (0006), and each downgrades."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text

from tests.api.conftest import postgres_database
from voiceprint.store.db import MIGRATIONS, make_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    sqlite = iter([f"sqlite:///{tmp_path / 'v.db'}"])
    for url in sqlite if request.param == "sqlite" else postgres_database():
        engine = make_engine(url)
        yield engine
        engine.dispose()


def _to(engine: Engine, revision: str, downgrade: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if downgrade else command.upgrade)(config, revision)


def test_0004_starts_existing_groups_at_generation_zero(database: Engine) -> None:
    _to(database, "0003")
    with database.begin() as db:
        db.execute(text("INSERT INTO workspaces VALUES (1, 'w', 0)"))
        db.execute(text("INSERT INTO accounts VALUES (2, 1, 'a', 0)"))
        db.execute(text("INSERT INTO voiceprint_groups VALUES (3, 1, 2, 'g', '', 0, 0)"))
        db.execute(text("INSERT INTO voiceprint_features VALUES (4, 3, 2, 'f', '', 0, 0, NULL)"))
    _to(database, "head")
    with database.connect() as db:
        assert db.execute(text("SELECT generation FROM voiceprint_groups")).scalar_one() == 0
        assert db.execute(text("SELECT revision FROM voiceprint_features")).scalar_one() == 0
    _to(database, "0003", downgrade=True)
    columns = {c["name"] for c in inspect(database).get_columns("voiceprint_features")}
    assert "revision" not in columns and "last_used_at" in columns


def test_0006_marks_existing_samples_to_be_measured_again(database: Engine) -> None:
    _to(database, "0005")
    with database.begin() as db:
        db.execute(text("INSERT INTO workspaces VALUES (1, 'w', 0)"))
        db.execute(text("INSERT INTO accounts VALUES (2, 1, 'a', 0)"))
        db.execute(text("INSERT INTO voiceprint_groups VALUES (3, 1, 2, 'g', '', 0, 0, 0)"))
        db.execute(text("INSERT INTO voiceprint_features VALUES (4, 3, 2, 'f', '', 0, 0, NULL, 0)"))
        db.execute(
            text(
                "INSERT INTO voiceprint_samples (id, feature_id, audio_key, audio_format, "
                "embedding, model_id, speech_seconds, quality, created_at) "
                "VALUES (5, 4, 'k', 'wav', :e, 'm', 3.0, '{}', 0)"
            ),
            {"e": b"\0"},
        )
    _to(database, "head")
    with database.connect() as db:
        assert db.execute(text("SELECT quality_revision FROM voiceprint_samples")).scalar_one() == 1
    _to(database, "0005", downgrade=True)
    columns = {c["name"] for c in inspect(database).get_columns("voiceprint_samples")}
    assert "quality_revision" not in columns and "source_rate" in columns
