"""`voiceprint import-xiaozhi`: a voiceprint-api's ids come over, the operator's recordings
enrol theirs, and the xiaozhi API of a running server then answers for them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.api.conftest import Server, start_sqlite
from tests.conftest import read_speech, run_cli, speech_files, wav_bytes

DUMP = Path(__file__).resolve().parents[1] / "fixtures" / "xiaozhi" / "voiceprints.sql"
UUIDS = ["a1b2c3d4e5f60718293a4b5c6d7e8f90", "7c9e6679742540de944be07fc1f90ae7"]
READER = "1998"  # LibriSpeech, recorded as test1
MANDARIN = "f5e74fed2d88"  # Common Voice zh-CN, MP3 as published, recorded as 张三


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Room for the four imported ids in one group.
    yield from start_sqlite(tmp_path_factory, "xiaozhi-import", max_features_per_group="10")


@pytest.fixture(scope="module")
def key(server: Server) -> str:
    return server.token("xiaozhi", workspace="default")


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What an operator kept: test1.wav, a folder of 张三's MP3s, and one of nobody listed."""
    folder = tmp_path_factory.mktemp("kept-audio")
    parts = [read_speech(p) for p in speech_files("librispeech", READER)[:2]]
    joined = np.concatenate([samples for samples, _ in parts])
    (folder / "test1.wav").write_bytes(wav_bytes(joined, parts[0][1]))
    (folder / "张三").mkdir()
    for path in speech_files("commonvoice_zh", MANDARIN)[:3]:
        (folder / "张三" / path.name).write_bytes(path.read_bytes())
    (folder / "stray.wav").write_bytes(wav_bytes(*read_speech(speech_files("librispeech")[0])))
    return folder


def _identify(server: Server, key: str, candidates: list[str], audio: bytes) -> dict:
    response = httpx.post(
        f"{server.url}/voiceprint/identify",
        headers={"Authorization": f"Bearer {key}"},
        data={"speaker_ids": ",".join(candidates)},
        files={"file": ("audio.wav", audio, "audio/wav")},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _total(server: Server, key: str) -> int:
    response = httpx.get(f"{server.url}/voiceprint/health", params={"key": key})
    return response.json()["total_voiceprints"]


def test_needs_the_account_of_the_key(server: Server) -> None:
    done = run_cli(
        server.data_dir, "import-xiaozhi", str(DUMP), "--user", "nobody",
        database_url=server.database_url,
    )  # fmt: skip
    assert done.returncode == 1
    assert "voiceprint token create --user nobody" in done.stderr


def test_import_with_the_operators_recordings(server: Server, key: str, audio_dir: Path) -> None:
    done = run_cli(
        server.data_dir, "import-xiaozhi", str(DUMP), "--audio-dir", str(audio_dir),
        database_url=server.database_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    assert "read 4 voiceprints (192-dimensional" in out
    assert "new ids here: 4" in out and "enrolled from recordings: 2" in out
    must_enrol = out.split("must enrol again")[1]
    assert all(u in must_enrol for u in UUIDS) and "test1" not in must_enrol
    assert "left out:\n  stray" in out
    assert _total(server, key) == 4

    everyone = ["test1", "张三", *UUIDS]
    reader_probe = wav_bytes(*read_speech(speech_files("librispeech", READER)[5]))
    assert _identify(server, key, everyone, reader_probe)["speaker_id"] == "test1"
    mandarin_probe = speech_files("commonvoice_zh", MANDARIN)[6].read_bytes()
    assert _identify(server, key, everyone, mandarin_probe)["speaker_id"] == "张三"
    # Without a voice, the imported ids match nobody until their people enrol.
    assert _identify(server, key, UUIDS, reader_probe) == {"speaker_id": "", "score": 0.0}


def test_import_again_changes_nothing(server: Server, key: str) -> None:
    done = run_cli(server.data_dir, "import-xiaozhi", str(DUMP), database_url=server.database_url)
    assert done.returncode == 0, done.stderr
    assert "new ids here: 0" in done.stdout and "enrolled from recordings: 0" in done.stdout
    assert all(u in done.stdout.split("must enrol again")[1] for u in UUIDS)
    assert _total(server, key) == 4
