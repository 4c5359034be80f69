"""The audio store: complete files or none, unguessable keys, leftovers swept."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import speech_files
from voiceprint.store.blobs import BlobStore


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
