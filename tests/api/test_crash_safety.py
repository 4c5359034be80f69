"""SIGKILL the real server while clients create, add samples, replace audio and delete;
restart it and check that nothing acknowledged was lost and no audio blob, file or
database row, is missing or left over (bench/crash_safety.py: many more)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import postgres_database
from tests.api.crash_cycles import iterate, restartable, run_cycles
from voiceprint.store.crypto import generate_key

CYCLES = 3


@pytest.mark.parametrize(
    ("database", "encrypted", "blobs"),
    [
        ("sqlite", False, "files"),
        ("postgresql", False, "files"),
        # Sealing happens before either store writes, so one encrypted case covers it.
        ("sqlite", True, "database"),
        ("postgresql", False, "database"),
    ],
)
def test_acknowledged_writes_survive_kills(
    tmp_path: Path, database: str, encrypted: bool, blobs: str
) -> None:
    urls = (
        postgres_database()
        if database == "postgresql"
        else iter([f"sqlite:///{tmp_path / 'vp.db'}"])
    )
    settings = {"blob_store": blobs}
    if encrypted:
        settings["encryption_key"] = generate_key()
    for url in urls:
        report = run_cycles(restartable(tmp_path, url, **settings), CYCLES)
        print("\n".join(iterate(report)))
        assert report.cycles == CYCLES and report.writes_acknowledged >= CYCLES
        assert report.lost == [] and report.resurrected == []
        assert report.dangling_samples == 0 and report.voiceprints_without_samples == 0
        assert report.leftovers_swept == 0
