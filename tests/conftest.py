"""Shared fixtures: the real speech corpus and the real models."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from voiceprint.config import get_settings
from voiceprint.embedding.provision import ModelPaths
from voiceprint.engine import VoiceEngine
from voiceprint.service.factory import Models, load_models

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def run_cli(
    data_dir: Path, *args: str, database_url: str | None = None, **settings: str
) -> subprocess.CompletedProcess[str]:
    """``voiceprint ARGS`` in a subprocess on ``data_dir`` (SQLite there unless a URL is given)."""
    env = {
        **os.environ,
        "VOICEPRINT_DATA_DIR": str(data_dir),
        "VOICEPRINT_MODEL_DIR": str(get_settings().model_dir),
        **{f"VOICEPRINT_{name.upper()}": value for name, value in settings.items()},
    }
    env.pop("VOICEPRINT_DATABASE_URL", None)
    if database_url:
        env["VOICEPRINT_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "voiceprint.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "it") -> None:
    """Poll ``condition`` until it holds: for what a server writes after it has answered
    (log lines, metrics counted once the response is sent, files)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:g} s for {what}")
        time.sleep(0.05)


def speech_files(set_name: str, speaker: str | None = None) -> list[Path]:
    with (DATA / "index.tsv").open() as f:
        rows = csv.DictReader(f, delimiter="\t")
        return [
            DATA / r["path"]
            for r in rows
            if r["set"] == set_name and (speaker is None or r["speaker"] == speaker)
        ]


def read_speech(path: Path) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(path, dtype="float32")
    return samples, rate


def wav_bytes(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def call_in_16_bits(speaker: str = "caller_009a374c6c") -> bytes:
    """A real call resampled to 16 kHz, 6 dB quieter, stored as a 16-bit WAV with TPDF
    dither (what common tools do): the dither's noise fills the band above 4 kHz."""
    wave, rate = read_speech(speech_files("telephone", speaker)[0])
    wide = soxr.resample(wave, rate, 16_000).astype(np.float32) * 0.5
    step = 2.0**-15
    dither = np.random.default_rng(0).triangular(-step, 0.0, step, len(wide))
    return wav_bytes(np.clip(wide + dither, -1.0, 1.0), 16_000)


@cache
def models_of(name: str) -> Models:
    """A model as the server loads it, once for the whole run."""
    settings = get_settings().model_copy(update={"inference_threads": 2, "model": name})
    return load_models(settings, progress=False)


@pytest.fixture(scope="session")
def models() -> Models:
    """The default model (VOICEPRINT_MODEL, else campplus-zh-en)."""
    return models_of(get_settings().model)


@pytest.fixture(scope="session")
def model_paths(models: Models) -> ModelPaths:
    return models.paths


@pytest.fixture(scope="session")
def engine(models: Models) -> VoiceEngine:
    return models.voice
