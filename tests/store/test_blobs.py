"""The audio stores: complete blobs or none, unguessable keys, leftovers swept; on disk and
in the database alike."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.conftest import speech_files
from voiceprint.store.blobs import BlobStore, DatabaseBlobs
from voiceprint.store.db import make_engine, make_session_factory, migrate
from voiceprint.store.models import AudioBlob


def test_put_get_delete(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "audio")
    data = speech_files("aishell", "S0150")[0].read_bytes()
    key = store.put(data)
    assert len(key) == 40 and store.get(key) == data
    assert not list((tmp_path / "audio").rglob("*.tmp"))
    store.delete(key)
    with pytest.raises(FileNotFoundError):
        store.get(key)
    store.delete(key)  # deleting twice is fine


def test_keys_cannot_escape_the_folder(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    for key in ("../../etc/passwd", "ab/../../x", ""):
        with pytest.raises(ValueError):
            store.get(key)


def test_sweep_removes_only_old_unreferenced_files(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    kept, orphan, fresh_orphan = (store.put(b"x" * 10) for _ in range(3))
    old = time.time() - 7200
    for key in (kept, orphan):
        os.utime(tmp_path / key[:2] / key, (old, old))
    assert store.sweep([kept]) == 1
    assert store.get(kept) and store.get(fresh_orphan)
    with pytest.raises(FileNotFoundError):
        store.get(orphan)


def test_the_database_store_keeps_the_same_contract(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    migrate(engine)
    store = DatabaseBlobs(make_session_factory(engine))
    data = speech_files("aishell", "S0150")[0].read_bytes()
    kept, orphan, fresh_orphan = (store.put(data) for _ in range(3))
    assert len(kept) == 40 and store.get(kept) == data
    with engine.begin() as db:
        db.execute(
            update(AudioBlob)
            .where(AudioBlob.key.in_([kept, orphan]))
            .values(created_at=int(time.time()) - 7200)
        )
    assert store.sweep([kept]) == 1
    assert store.get(kept) == data and store.get(fresh_orphan) == data
    store.delete(kept)
    store.delete(kept)  # deleting twice is fine
    for gone in (kept, orphan):
        with pytest.raises(FileNotFoundError):
            store.get(gone)
    assert not list(tmp_path.glob("audio*"))
    engine.dispose()
