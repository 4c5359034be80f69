"""Changing models on a populated database: nobody enrols again, no model mixes into a score.

ECAPA -> CAM++ with `voiceprint reembed`, then back to ECAPA by re-embedding at start,
through real server processes on one SQLite database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import soxr
from sqlalchemy import select

from tests.api.conftest import Server, _start
from tests.conftest import read_speech, run_cli, speech_files, wav_bytes
from voiceprint.embedding.models import CAMPPLUS, ECAPA
from voiceprint.store.db import make_engine, make_session_factory
from voiceprint.store.models import Sample

PREFIX = "/v1/audio/voiceprint_groups"
SPEAKERS = ("1688", "2033", "3080")


@contextmanager
def _server(tmp: Path, url: str, **settings: str) -> Iterator[Server]:
    running = _start(tmp, url, **settings)
    try:
        yield next(running)
    finally:
        running.close()


def _clip(speaker: str, index: int) -> bytes:
    return wav_bytes(*read_speech(speech_files("librispeech", speaker)[index]))


def _identify(server: Server, token: str, group: str, speaker: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}{PREFIX}/{group}/speaker_identify",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": _clip(speaker, 3)},
        timeout=60,
    )


def _models_in(url: str) -> set[str]:
    with make_session_factory(make_engine(url))() as session:
        return set(session.scalars(select(Sample.model_id)))


def _assert_identifies_everyone(
    server: Server, token: str, group: str, ids: dict[str, str]
) -> None:
    for speaker in SPEAKERS:
        body = _identify(server, token, group, speaker).json()
        assert body["code"] == 0, body
        best = body["data"]["feature_score_list"][0]
        assert best["feature_id"] == ids[speaker] and best["match"] is True


def test_switching_models_keeps_every_voiceprint(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'voiceprint.db'}"
    with _server(tmp_path, url, model=ECAPA.name) as server:
        token = server.token()
        auth = {"Authorization": f"Bearer {token}"}
        group = httpx.post(f"{server.url}{PREFIX}", headers=auth, json={"name": "family"})
        group_id = group.json()["data"]["id"]
        ids = {}
        for speaker in SPEAKERS:
            created = httpx.post(
                f"{server.url}{PREFIX}/{group_id}/features",
                headers=auth,
                data={"name": speaker},
                files=[
                    ("file", ("a.wav", _clip(speaker, 0))),
                    ("file", ("b.wav", _clip(speaker, 1))),
                ],
                timeout=60,
            )
            ids[speaker] = created.json()["data"]["id"]
        _assert_identifies_everyone(server, token, group_id, ids)
    assert _models_in(url) == {ECAPA.model_id}

    # CAM++ without re-embedding at start: the old voiceprints are refused by name.
    with _server(
        tmp_path, url, model=CAMPPLUS.name, reembed_on_start="false", max_features_per_group="4"
    ) as server:
        body = _identify(server, token, group_id, "1688").json()
        assert body["code"] == 4307 and "voiceprint reembed" in body["msg"]
        assert all(i in body["msg"] for i in ids.values())
        verify = httpx.post(
            f"{server.url}{PREFIX}/{group_id}/features/{ids['1688']}/verify",
            headers=auth,
            files={"file": _clip("1688", 3)},
            timeout=60,
        )
        assert verify.status_code == 409 and verify.json()["code"] == 4307
        # A voiceprint of this model verifies, narrow-band ones too (which are scored as
        # their group holds them: here, as they are, the rest of the group being stale).
        wave, rate = read_speech(speech_files("librispeech", "533")[0])
        narrow = wav_bytes(soxr.resample(wave, rate, 8000), 8000)
        fresh = httpx.post(
            f"{server.url}{PREFIX}/{group_id}/features",
            headers=auth,
            data={"name": "533"},
            files={"file": ("c.wav", narrow)},
            timeout=60,
        ).json()
        assert fresh["code"] == 0, fresh
        verify = httpx.post(
            f"{server.url}{PREFIX}/{group_id}/features/{fresh['data']['id']}/verify",
            headers=auth,
            files={"file": narrow},
            timeout=60,
        ).json()
        assert verify["code"] == 0 and verify["data"]["match"] is True, verify
        gone = f"{server.url}{PREFIX}/{group_id}/features/{fresh['data']['id']}"
        assert httpx.delete(gone, headers=auth).json()["code"] == 0
        listed = httpx.get(f"{server.url}{PREFIX}/{group_id}/features", headers=auth).json()
        assert listed["data"]["total"] == 3  # everything else works as before

    reembed = [tmp_path / "data", "reembed"]
    first = run_cli(*reembed, database_url=url, model=CAMPPLUS.name)
    assert first.returncode == 0, first.stderr
    assert "re-embedded 6 samples" in first.stdout and "0 left" in first.stdout
    again = run_cli(*reembed, database_url=url, model=CAMPPLUS.name)
    assert "re-embedded 0 samples" in again.stdout  # idempotent
    assert _models_in(url) == {CAMPPLUS.model_id}

    with _server(tmp_path, url, model=CAMPPLUS.name) as server:
        _assert_identifies_everyone(server, token, group_id, ids)

    # Back to ECAPA: the server re-embeds at start (the default).
    with _server(tmp_path, url, model=ECAPA.name) as server:
        _assert_identifies_everyone(server, token, group_id, ids)
    assert _models_in(url) == {ECAPA.model_id}
