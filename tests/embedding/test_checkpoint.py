from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest

from voiceprint.embedding.checkpoint import CheckpointError, load_checkpoint


def _zip_with_pickle(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    return path


def test_refuses_pickles_that_name_other_classes(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    path = _zip_with_pickle(tmp_path / "evil.ckpt", pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match=r"builtins\.print"):
        load_checkpoint(path)


def test_refuses_non_zip(tmp_path: Path) -> None:
    path = tmp_path / "x.ckpt"
    path.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_plain_containers_load(tmp_path: Path) -> None:
    path = _zip_with_pickle(tmp_path / "ok.ckpt", pickle.dumps({"count": 3, "names": ["a"]}))
    assert load_checkpoint(path) == {"count": 3, "names": ["a"]}
