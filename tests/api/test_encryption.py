"""Encryption at rest against a real server on SQLite and PostgreSQL: real speech enrolled
with a key set leaves no recording bytes and no embedding floats in clear anywhere; a missing
or wrong key is refused at start; a flipped byte is a typed error; a key rotation under
identify traffic loses no request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import text

from tests.api.conftest import Server, _start, postgres_database
from tests.conftest import read_speech, run_cli, speech_files, wav_bytes
from voiceprint.audio.decode import decode_audio
from voiceprint.engine import SpeechPolicy, VoiceEngine
from voiceprint.store.crypto import MasterKey, generate_key
from voiceprint.store.db import make_engine

PREFIX = "/v1/audio/voiceprint_groups"
KEY_A = generate_key()
KEY_B = generate_key()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sealed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(f"sealed-{request.param}")
    if request.param == "sqlite":
        yield from _start(tmp, f"sqlite:///{tmp / 'voiceprint.db'}", encryption_key=KEY_A)
    else:
        for url in postgres_database():
            yield from _start(tmp, url, encryption_key=KEY_A)


def _clip(speaker: str, index: int = 0) -> bytes:
    return wav_bytes(*read_speech(speech_files("librispeech", speaker)[index]))


def _enrol(server: Server, auth: dict[str, str], gid: str, name: str, clip: bytes) -> str:
    created = httpx.post(
        f"{server.url}{PREFIX}/{gid}/features", data={"name": name}, files={"file": clip},
        headers=auth, timeout=60,
    ).json()  # fmt: skip
    assert created["code"] == 0, created
    return created["data"]["id"]


def _identify(server: Server, auth: dict[str, str], gid: str, clip: bytes) -> dict:
    return httpx.post(
        f"{server.url}{PREFIX}/{gid}/speaker_identify", files={"file": clip}, headers=auth,
        timeout=60,
    ).json()  # fmt: skip


def _has_floats(blob: bytes, embedding: np.ndarray, run: int = 8) -> bool:
    """Whether ``run`` consecutive values of ``embedding`` lie in ``blob`` as float32, at any
    byte offset (close, not equal: a store in clear need not hold exactly our numbers)."""
    target = embedding[:run].astype(np.float32)
    for offset in range(4):
        usable = (len(blob) - offset) // 4 * 4
        values = np.frombuffer(blob[offset : offset + usable], dtype="<f4")
        for i in np.flatnonzero(np.isclose(values, target[0], rtol=1e-3, atol=1e-6)):
            window = values[i : i + run]
            if len(window) == run and np.allclose(window, target, rtol=1e-3, atol=1e-5):
                return True
    return False


def _pieces(clip: bytes) -> list[bytes]:
    """Three 48-byte pieces of the recording's samples (past the WAV header)."""
    return [clip[at : at + 48] for at in (len(clip) // 4, len(clip) // 2, 3 * len(clip) // 4)]


def _stored_bytes(server: Server) -> dict[str, bytes]:
    """Everything the installation keeps: files of the data folder (and the SQLite file
    with its journal), or every value of every PostgreSQL table."""
    found = {str(p): p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file()}
    if server.database_url.startswith("sqlite"):
        db = Path(server.database_url.split("///", 1)[1])
        for path in db.parent.glob(db.name + "*"):
            found[str(path)] = path.read_bytes()
        return found
    engine = make_engine(server.database_url)
    with engine.connect() as connection:
        tables = connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
        for table in list(tables):
            values = bytearray()
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    values += value if isinstance(value, bytes) else str(value).encode()
            found[f"table {table}"] = bytes(values)
    engine.dispose()
    return found


def _embedding(engine: VoiceEngine, clip: bytes) -> np.ndarray:
    policy = SpeechPolicy("enrolment", 1.0, check_enrolment=True)
    return engine.analyse(decode_audio(clip), policy).embedding


def test_the_search_finds_recordings_and_embeddings_stored_in_clear(
    sqlite_server: Server, engine: VoiceEngine
) -> None:
    """The check below can fail: on a server without a key it finds both."""
    auth = {"Authorization": f"Bearer {sqlite_server.token()}"}
    gid = httpx.post(f"{sqlite_server.url}{PREFIX}", json={"name": "g"}, headers=auth)
    clip = _clip("1688")
    _enrol(sqlite_server, auth, gid.json()["data"]["id"], "a", clip)
    stored = b"".join(_stored_bytes(sqlite_server).values())
    assert all(piece in stored for piece in _pieces(clip))
    assert _has_floats(stored, _embedding(engine, clip))
    warnings = [line for line in sqlite_server.log.read_text().splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "no encryption key is set" in warnings[0]


def test_nothing_in_clear_with_a_key(sealed: Server, engine: VoiceEngine) -> None:
    auth = {"Authorization": f"Bearer {sealed.token()}"}
    gid = httpx.post(f"{sealed.url}{PREFIX}", json={"name": "g"}, headers=auth).json()["data"]["id"]
    clips = {speaker: _clip(speaker) for speaker in ("1688", "2033")}
    ids = {speaker: _enrol(sealed, auth, gid, speaker, clip) for speaker, clip in clips.items()}
    for place, data in _stored_bytes(sealed).items():
        for speaker, clip in clips.items():
            assert not any(piece in data for piece in _pieces(clip)), (place, speaker)
            assert not _has_floats(data, _embedding(engine, clip)), (place, speaker)
    assert "no encryption key" not in sealed.log.read_text()
    # Opened in memory, the same as ever: the audio as sent, the right speaker found.
    audio = httpx.get(f"{sealed.url}{PREFIX}/{gid}/features/{ids['1688']}/audio", headers=auth)
    assert audio.content == clips["1688"]
    best = _identify(sealed, auth, gid, _clip("2033", 2))["data"]["feature_score_list"][0]
    assert best["feature_id"] == ids["2033"] and best["score"] >= 50


def test_missing_malformed_or_wrong_key_is_refused_at_start(sealed: Server) -> None:
    url = sealed.database_url
    missing = run_cli(sealed.data_dir, "serve", "--port", "1", database_url=url)
    assert missing.returncode == 2
    assert "encrypted" in missing.stderr and "VOICEPRINT_ENCRYPTION_KEY" in missing.stderr
    malformed = run_cli(sealed.data_dir, "serve", database_url=url, encryption_key="c2hvcnQ=")
    assert malformed.returncode == 2 and "exactly 32 bytes" in malformed.stderr
    wrong = run_cli(sealed.data_dir, "serve", database_url=url, encryption_key=KEY_B)
    assert wrong.returncode == 2
    assert MasterKey.parse(KEY_B, "").id in wrong.stderr and "is not the one" in wrong.stderr
    assert "Traceback" not in missing.stderr + malformed.stderr + wrong.stderr


def _flipped(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


def test_a_flipped_byte_is_a_typed_error(sealed: Server) -> None:
    auth = {"Authorization": f"Bearer {sealed.token()}"}
    gid = httpx.post(f"{sealed.url}{PREFIX}", json={"name": "g"}, headers=auth).json()["data"]["id"]
    before = set(sealed.audio_files())
    fid = _enrol(sealed, auth, gid, "a", _clip("1688"))
    (audio_file,) = set(sealed.audio_files()) - before
    audio_file.write_bytes(_flipped(audio_file.read_bytes()))
    download = httpx.get(f"{sealed.url}{PREFIX}/{gid}/features/{fid}/audio", headers=auth)
    assert download.status_code == 500 and download.json()["code"] == 4309
    assert "integrity" in download.json()["msg"]

    engine = make_engine(sealed.database_url)
    with engine.begin() as connection:
        (embedding,) = connection.execute(
            text("SELECT embedding FROM voiceprint_samples WHERE feature_id = :f"), {"f": int(fid)}
        ).one()
        connection.execute(
            text("UPDATE voiceprint_samples SET embedding = :e WHERE feature_id = :f"),
            {"e": _flipped(bytes(embedding)), "f": int(fid)},
        )
    engine.dispose()
    identify = _identify(sealed, auth, gid, _clip("1688", 1))
    assert identify["code"] == 4309 and "data" not in identify


def test_rotation_under_identify_traffic(sealed: Server, tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {sealed.token()}"}
    gid = httpx.post(f"{sealed.url}{PREFIX}", json={"name": "g"}, headers=auth).json()["data"]["id"]
    fid = _enrol(sealed, auth, gid, "a", _clip("2033"))
    probe = _clip("2033", 1)
    expected = _identify(sealed, auth, gid, probe)["data"]
    answers: list[dict] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            answers.append(_identify(sealed, auth, gid, probe))

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        new_key = tmp_path / "new.key"
        new_key.write_text(KEY_B)
        rotated = run_cli(
            sealed.data_dir, "keys", "rotate", "--new-key-file", str(new_key),
            database_url=sealed.database_url, encryption_key=KEY_A,
        )  # fmt: skip
        assert rotated.returncode == 0, rotated.stderr
        assert MasterKey.parse(KEY_B, "").id in rotated.stdout
        count, deadline = len(answers), time.monotonic() + 60
        while len(answers) < count + 2 and time.monotonic() < deadline and worker.is_alive():
            time.sleep(0.1)  # a couple more answers after the rotation
    finally:
        stop.set()
        worker.join(timeout=120)
    assert len(answers) >= 3
    assert all(a["code"] == 0 and a["data"] == expected for a in answers)

    old = run_cli(sealed.data_dir, "serve", database_url=sealed.database_url, encryption_key=KEY_A)
    assert old.returncode == 2 and "is not the one" in old.stderr
    # A fresh server with the new key reads what the old key sealed.
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "data").symlink_to(sealed.data_dir)
    restarted = _start(tmp_path / "b", sealed.database_url, encryption_key=KEY_B)
    server = next(restarted)
    try:
        assert _identify(server, auth, gid, probe)["data"] == expected
        audio = httpx.get(f"{server.url}{PREFIX}/{gid}/features/{fid}/audio", headers=auth)
        assert audio.content == _clip("2033")
    finally:
        restarted.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'voiceprint.db'}"
    else:
        yield from postgres_database()


def test_a_plaintext_deployment_moves_to_encryption_while_serving(
    database: str, tmp_path: Path, engine: VoiceEngine
) -> None:
    running = _start(tmp_path, database)
    server = next(running)
    try:
        auth = {"Authorization": f"Bearer {server.token()}"}
        gid = httpx.post(f"{server.url}{PREFIX}", json={"name": "g"}, headers=auth)
        gid = gid.json()["data"]["id"]
        clips = {speaker: _clip(speaker) for speaker in ("1688", "2033")}
        for speaker, clip in clips.items():
            _enrol(server, auth, gid, speaker, clip)
        probe = _clip("2033", 1)
        expected = _identify(server, auth, gid, probe)["data"]
    finally:
        running.close()

    running = _start(tmp_path, database, encryption_key=KEY_A)
    server = next(running)
    try:
        assert _identify(server, auth, gid, probe)["data"] == expected  # both kinds are read
        answers: list[dict] = []
        stop = threading.Event()

        def traffic() -> None:
            while not stop.is_set():
                answers.append(_identify(server, auth, gid, probe))

        worker = threading.Thread(target=traffic)
        worker.start()
        try:
            moved = run_cli(
                server.data_dir, "keys", "encrypt", database_url=database, encryption_key=KEY_A
            )
        finally:
            stop.set()
            worker.join(timeout=120)
        assert moved.returncode == 0, moved.stderr
        assert "encrypted 2 samples" in moved.stdout and "0 left" in moved.stdout
        assert answers and all(a["code"] == 0 and a["data"] == expected for a in answers)
        again = run_cli(
            server.data_dir, "keys", "encrypt", database_url=database, encryption_key=KEY_A
        )
        assert again.returncode == 0 and "encrypted 0 samples" in again.stdout
        for place, data in _stored_bytes(server).items():
            for speaker, clip in clips.items():
                assert not any(piece in data for piece in _pieces(clip)), (place, speaker)
                assert not _has_floats(data, _embedding(engine, clip)), (place, speaker)
        assert _identify(server, auth, gid, probe)["data"] == expected
    finally:
        running.close()
