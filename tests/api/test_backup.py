"""Backup and restore: a populated SQLite server exported while it runs, imported into a new
PostgreSQL database, and every API answer compared before and after."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import soxr

from tests.api.conftest import Server, _start, postgres_database
from tests.conftest import read_speech, run_cli, speech_files, wav_bytes
from voiceprint.store.crypto import generate_key

PREFIX = "/v1/audio/voiceprint_groups"
KEY = generate_key()


def _populate(server: Server, token: str) -> str:
    auth = {"Authorization": f"Bearer {token}"}
    group = httpx.post(f"{server.url}{PREFIX}", json={"name": "family", "desc": "d"}, headers=auth)
    gid = group.json()["data"]["id"]
    for speaker in ("1688", "2033"):
        clip = wav_bytes(*read_speech(speech_files("librispeech", speaker)[0]))
        httpx.post(
            f"{server.url}{PREFIX}/{gid}/features",
            data={"name": speaker},
            files={"file": clip},
            headers=auth,
            timeout=60,
        )
    wave, rate = read_speech(speech_files("librispeech", "3080")[0])
    pcm = (soxr.resample(wave, rate, 8000) * 32767).astype("<i2").tobytes()
    created = httpx.post(
        f"{server.url}{PREFIX}/{gid}/features", data={"name": "pcm", "sample_rate": "8000"},
        files={"file": pcm}, headers=auth, timeout=60,
    )  # fmt: skip
    extra = wav_bytes(*read_speech(speech_files("librispeech", "3080")[1]))
    httpx.post(
        f"{server.url}{PREFIX}/{gid}/features/{created.json()['data']['id']}/samples",
        files={"file": extra},
        headers=auth,
        timeout=60,
    )
    return gid


def _answers(server: Server, token: str, gid: str) -> dict:
    auth = {"Authorization": f"Bearer {token}"}
    groups = httpx.get(f"{server.url}{PREFIX}", headers=auth).json()["data"]
    features = httpx.get(f"{server.url}{PREFIX}/{gid}/features", headers=auth).json()["data"]
    audio = {
        f["id"]: httpx.get(
            f"{server.url}{PREFIX}/{gid}/features/{f['id']}/audio", headers=auth
        ).content
        for f in features["items"]
    }
    for f in features["items"]:
        f.pop("audio_url")  # signed with each installation's own secret
    probe = wav_bytes(*read_speech(speech_files("librispeech", "3080")[3]))
    identify = httpx.post(
        f"{server.url}{PREFIX}/{gid}/speaker_identify", files={"file": probe}, data={"top_k": "3"},
        headers=auth, timeout=60,
    ).json()["data"]  # fmt: skip
    return {"groups": groups, "features": features, "audio": audio, "identify": identify}


def test_export_while_running_then_import_into_postgresql(tmp_path: Path) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    running = _start(tmp_path / "a", source_url, encryption_key=KEY)
    source = next(running)
    try:
        token = source.token("alice", workspace="home")
        source.token("bob", workspace="elsewhere")
        gid = _populate(source, token)
        before = _answers(source, token, gid)
        archive = tmp_path / "backup.zip"
        exported = run_cli(
            source.data_dir, "export", str(archive), "--with-tokens", database_url=source_url,
            encryption_key=KEY,
        )  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        assert "4 voiceprint_samples" in exported.stdout and "4 recordings" in exported.stdout
        assert "(encrypted)" in exported.stdout
        recording = wav_bytes(*read_speech(speech_files("librispeech", "1688")[0]))
        assert recording[len(recording) // 2 :][:64] not in archive.read_bytes()
    finally:
        running.close()

    for target_url in postgres_database():
        keyless = run_cli(tmp_path / "b" / "data", "import", str(archive), database_url=target_url)
        assert keyless.returncode == 1 and "VOICEPRINT_ENCRYPTION_KEY" in keyless.stderr
        restored = run_cli(
            tmp_path / "b" / "data", "import", str(archive), database_url=target_url,
            encryption_key=KEY,
        )  # fmt: skip
        assert restored.returncode == 0, restored.stderr
        again = run_cli(
            tmp_path / "b" / "data", "import", str(archive), database_url=target_url,
            encryption_key=KEY,
        )  # fmt: skip
        assert again.returncode == 1 and "not empty" in again.stderr
        running = _start(tmp_path / "b", target_url, encryption_key=KEY)
        target = next(running)
        try:
            after = _answers(target, token, gid)  # the same token: exported with --with-tokens
        finally:
            running.close()
    assert after["groups"] == before["groups"]
    assert after["features"] == before["features"]
    assert after["audio"] == before["audio"]
    assert after["identify"] == before["identify"]
    assert before["identify"]["feature_score_list"][0]["feature_name"] == "pcm"
    assert np.isclose(
        before["identify"]["feature_score_list"][0]["score"],
        after["identify"]["feature_score_list"][0]["score"],
    )


def test_an_archive_in_clear_only_when_asked(tmp_path: Path) -> None:
    """Without a key the archive would hold every recording in clear: refused without
    --plaintext; with it, the recordings are there as sent."""
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    running = _start(tmp_path, source_url)
    source = next(running)
    try:
        _populate(source, source.token("alice"))
    finally:
        running.close()
    archive = tmp_path / "clear.zip"
    refused = run_cli(source.data_dir, "export", str(archive), database_url=source_url)
    assert refused.returncode == 1 and "--plaintext" in refused.stderr
    assert not archive.exists()
    clear = run_cli(source.data_dir, "export", str(archive), "--plaintext", database_url=source_url)
    assert clear.returncode == 0 and "(in clear)" in clear.stdout, clear.stderr
    recording = wav_bytes(*read_speech(speech_files("librispeech", "1688")[0]))
    assert recording[len(recording) // 2 :][:64] in archive.read_bytes()
