"""The voiceprint-api contract of xiaozhi-esp32-server, through a real server and real speech.

Requests are shaped as the xiaozhi server's ``voiceprint_provider.py`` and its manager-api
send them: the key from ``/voiceprint/health?key=...``, ``Authorization: Bearer <key>``,
multipart ``speaker_id``/``speaker_ids`` + ``file`` (``audio.wav``). On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.api.conftest import Server
from tests.api.test_console import browser_page  # noqa: F401 (a fixture)
from tests.conftest import read_speech, speech_files, wav_bytes
from voiceprint.api.xiaozhi import client_score

COZE = "/v1/audio/voiceprint_groups"
# speaker_id -> LibriSpeech reader: a short id, a manager-api UUID (32 characters), Chinese.
PEOPLE = {"test1": "1688", "3f2a9c41d5e84b7f9a0c6e1d2b3a4f50": "2033", "张三": "3005"}
STRANGER = "2414"
NEWCOMER = "533"  # re-registers as test1


def _recording(speaker: str, index: int) -> bytes:
    return wav_bytes(*read_speech(speech_files("librispeech", speaker)[index]))


def _enrolment(speaker: str) -> bytes:
    """Two of the reader's recordings in one WAV, as a person reads for an enrolment."""
    parts = [read_speech(p) for p in speech_files("librispeech", speaker)[:2]]
    return wav_bytes(np.concatenate([samples for samples, _ in parts]), parts[0][1])


@pytest.fixture(scope="module")
def key(server: Server) -> str:
    return server.token("xiaozhi")


@pytest.fixture(scope="module")
def client(server: Server, key: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
        yield http


def _register(client: httpx.Client, speaker_id: str, audio: bytes) -> httpx.Response:
    files = {"file": ("VoicePrint.WAV", audio, "audio/wav")}
    return client.post("/voiceprint/register", data={"speaker_id": speaker_id}, files=files)


def _identify_raw(client: httpx.Client, speaker_ids: str, audio: bytes) -> httpx.Response:
    files = {"file": ("audio.wav", audio, "audio/wav")}
    return client.post("/voiceprint/identify", data={"speaker_ids": speaker_ids}, files=files)


def _identify(client: httpx.Client, speaker_ids: list[str], audio: bytes) -> dict:
    response = _identify_raw(client, ",".join(speaker_ids), audio)
    assert response.status_code == 200, response.text
    return response.json()


def _health(server: Server, key: str) -> dict:
    response = httpx.get(f"{server.url}/voiceprint/health", params={"key": key})
    assert response.status_code == 200, response.text
    return response.json()


def _refused(response: httpx.Response, status: int, code: int) -> str:
    body = response.json()
    assert (response.status_code, body.get("code")) == (status, code), body
    assert body["logid"] == response.headers["x-tt-logid"]
    assert body["detail"] and "Traceback" not in body["detail"]
    return body["detail"]


def _coze_voices(server: Server, key: str) -> dict[str, dict]:
    """The xiaozhi group's voiceprints as the Coze API lists them, by desc (the speaker_id)."""
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as coze:
        groups = coze.get(COZE, params={"name": "xiaozhi"}).json()["data"]["items"]
        assert len(groups) == 1, groups
        listed = coze.get(f"{COZE}/{groups[0]['id']}/features", params={"page_size": 50})
        return {item["desc"]: item for item in listed.json()["data"]["items"]}


def test_score_mapping_puts_the_client_threshold_on_our_decision() -> None:
    assert client_score(50.0) == 0.4
    assert client_score(49.99) < 0.4 < client_score(50.01)
    assert (client_score(0.0), client_score(25.0), client_score(100.0)) == (0.0, 0.2, 1.0)
    assert client_score(75.0) == 0.7
    scores = [client_score(s / 4) for s in range(401)]
    assert scores == sorted(scores)


def test_health_before_any_voiceprint(server: Server, key: str) -> None:
    assert _health(server, key) == {"total_voiceprints": 0, "status": "healthy"}


def test_register_three_people(client: httpx.Client, server: Server, key: str) -> None:
    for speaker_id, reader in PEOPLE.items():
        response = _register(client, speaker_id, _enrolment(reader))
        assert response.status_code == 200, response.text
        assert response.json() == {"success": True, "msg": f"已登记: {speaker_id}"}
    assert _health(server, key)["total_voiceprints"] == 3


def test_identify_each_from_another_recording(client: httpx.Client) -> None:
    candidates = [*PEOPLE, "nobody-enrolled"]
    for speaker_id, reader in PEOPLE.items():
        found = _identify(client, candidates, _recording(reader, 5))
        assert found["speaker_id"] == speaker_id, found
        assert 0.4 <= found["score"] <= 1.0


def test_only_the_candidates_sent_are_considered(client: httpx.Client) -> None:
    others = [s for s in PEOPLE if s != "test1"]
    found = _identify(client, others, _recording(PEOPLE["test1"], 6))
    assert found["speaker_id"] == "" and found["score"] < 0.4, found


def test_a_stranger_is_nobody(client: httpx.Client) -> None:
    found = _identify(client, list(PEOPLE), _recording(STRANGER, 0))
    assert found["speaker_id"] == "", found
    assert 0.0 <= found["score"] < 0.4  # the xiaozhi client's default threshold agrees


def test_identify_with_no_voiceprint_for_the_candidates(client: httpx.Client) -> None:
    found = _identify(client, ["someone", "else"], _recording(STRANGER, 0))
    assert found == {"speaker_id": "", "score": 0.0}


def test_the_coze_api_sees_the_same_voices(client: httpx.Client, server: Server, key: str) -> None:
    voices = _coze_voices(server, key)
    assert set(voices) == set(PEOPLE)
    uuid = "3f2a9c41d5e84b7f9a0c6e1d2b3a4f50"
    assert voices[uuid]["name"] == uuid[:20] and voices["张三"]["name"] == "张三"
    probe = _recording(PEOPLE["张三"], 7)
    group_id = voices["张三"]["group_id"]
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as coze:
        answer = coze.post(
            f"{COZE}/{group_id}/speaker_identify", data={"top_k": "1"}, files={"file": probe}
        ).json()
    (best,) = answer["data"]["feature_score_list"]
    assert best["feature_id"] == voices["张三"]["id"]
    assert _identify(client, list(PEOPLE), probe) == {
        "speaker_id": "张三",
        "score": client_score(best["score"]),
    }


def test_the_console_shows_them(browser_page, key: str, server: Server) -> None:  # noqa: F811
    page, _, _ = browser_page
    page.goto(f"{server.url}/console/")
    page.fill("#token", key)
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("tr[data-group='xiaozhi']")
    page.click("tr[data-group='xiaozhi'] a")
    for speaker_id in PEOPLE:
        page.wait_for_selector(f"tr[data-voice='{speaker_id[:20]}']")


def test_register_again_replaces_the_voice(client: httpx.Client, server: Server, key: str) -> None:
    before = _coze_voices(server, key)["test1"]
    stored = len(server.audio_files())
    assert _register(client, "test1", _enrolment(NEWCOMER)).status_code == 200
    after = _coze_voices(server, key)["test1"]
    assert after["id"] == before["id"] and len(after["samples"]) == 1
    assert len(server.audio_files()) == stored  # the old recording is gone
    assert _identify(client, list(PEOPLE), _recording(NEWCOMER, 5))["speaker_id"] == "test1"
    old_voice = _identify(client, list(PEOPLE), _recording(PEOPLE["test1"], 5))
    assert old_voice["speaker_id"] == "", old_voice
    assert _health(server, key)["total_voiceprints"] == 3


def test_delete(client: httpx.Client, server: Server, key: str) -> None:
    stored = len(server.audio_files())
    response = client.delete("/voiceprint/张三")
    assert response.status_code == 200
    assert response.json() == {"success": True, "msg": "已删除: 张三"}
    assert len(server.audio_files()) == stored - 1
    assert _health(server, key)["total_voiceprints"] == 2
    assert "张三" not in _coze_voices(server, key)
    found = _identify(client, list(PEOPLE), _recording(PEOPLE["张三"], 5))
    assert found["speaker_id"] == ""
    assert "张三" in _refused(client.delete("/voiceprint/张三"), 404, 4200)


def test_a_wrong_key_gets_401(server: Server, key: str) -> None:
    url = server.url
    wrong = key[:-4] + "abcd"
    audio = {"file": ("audio.wav", _recording(STRANGER, 0), "audio/wav")}
    bearer = {"Authorization": f"Bearer {wrong}"}
    answers = [
        httpx.get(f"{url}/voiceprint/health", params={"key": wrong}),
        httpx.get(f"{url}/voiceprint/health"),
        httpx.post(
            f"{url}/voiceprint/register", data={"speaker_id": "x"}, files=audio, headers=bearer
        ),
        httpx.post(f"{url}/voiceprint/identify", data={"speaker_ids": "x"}, files=audio),
        httpx.delete(f"{url}/voiceprint/test1", headers=bearer),
    ]
    for response in answers:
        _refused(response, 401, 4100)


def test_bad_input_gets_a_clear_error(client: httpx.Client) -> None:
    samples, rate = read_speech(speech_files("librispeech", STRANGER)[0])
    not_audio = _register(client, "bad", b"RIFF....WAVEfmt this is no audio at all" * 40)
    assert "truncated" in _refused(not_audio, 400, 4301)
    silence = _register(client, "quiet", wav_bytes(np.zeros(rate * 3, dtype="float32"), rate))
    assert "speech" in _refused(silence, 400, 4303)
    too_short = wav_bytes(samples[: rate // 4], rate)  # a quarter of a second
    assert "speech" in _refused(_identify_raw(client, "test1", too_short), 400, 4303)
    no_file = client.post("/voiceprint/register", data={"speaker_id": "x"})
    assert "file" in _refused(no_file, 400, 4000)
    no_id = client.post("/voiceprint/register", files={"file": wav_bytes(samples, rate)})
    assert "speaker_id" in _refused(no_id, 400, 4000)
    blank = _identify_raw(client, " , ", wav_bytes(samples, rate))
    assert "speaker_ids" in _refused(blank, 400, 4000)
    comma = _register(client, "a,b", wav_bytes(samples, rate))
    assert "','" in _refused(comma, 400, 4000)
