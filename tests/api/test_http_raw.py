"""What the SDK hides: envelopes, statuses, headers, limits and bad input, over plain HTTP."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import soundfile

from tests.api.conftest import Server
from tests.conftest import read_speech, speech_files, wav_bytes

PREFIX = "/v1/audio/voiceprint_groups"
LOGID = re.compile(r"^\d{14}[0-9a-f]{16}$")


@pytest.fixture(scope="module")
def api(sqlite_server: Server) -> Iterator[httpx.Client]:
    token = sqlite_server.token("raw")
    with httpx.Client(
        base_url=sqlite_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        yield client


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    return read_speech(speech_files("librispeech", "2414")[0])


@pytest.fixture(scope="module")
def group_id(api: httpx.Client) -> str:
    return _ok(api.post(PREFIX, json={"name": "raw"}))["id"]


def _ok(response: httpx.Response) -> dict:
    body = response.json()
    assert response.status_code == 200 and body["code"] == 0, body
    assert body["msg"] == ""
    return body.get("data")


def _error(response: httpx.Response, code: int, status: int) -> str:
    body = response.json()
    assert (body["code"], response.status_code) == (code, status), body
    assert body["detail"]["logid"] == response.headers["x-tt-logid"]
    assert "data" not in body and "Traceback" not in body["msg"]
    assert body["msg"]
    return body["msg"]


def _enrol(api: httpx.Client, group_id: str, audio: bytes, name: str = "person") -> httpx.Response:
    return api.post(f"{PREFIX}/{group_id}/features", data={"name": name}, files={"file": audio})


def test_every_response_has_envelope_and_logid_header(api: httpx.Client) -> None:
    responses = [
        api.get(PREFIX),
        api.get("/v1/unknown/route"),
        api.patch(PREFIX),
        api.delete(f"{PREFIX}/123456"),
    ]
    logids = set()
    for response in responses:
        body = response.json()
        assert set(body) >= {"code", "msg", "detail"}
        assert body["detail"]["logid"] == response.headers["x-tt-logid"]
        assert LOGID.match(body["detail"]["logid"])
        logids.add(body["detail"]["logid"])
    assert len(logids) == len(responses)
    _error(responses[1], 4200, 404)
    assert "PATCH" in _error(responses[2], 4000, 405)
    _error(responses[3], 4200, 404)


def test_authentication_statuses(sqlite_server: Server) -> None:
    url = f"{sqlite_server.url}{PREFIX}"
    assert "Authorization" in _error(httpx.get(url), 4100, 401)
    _error(httpx.get(url, headers={"Authorization": "Basic abc"}), 4100, 401)
    _error(httpx.get(url, headers={"Authorization": "Bearer vp_99_x"}), 4100, 401)
    _error(httpx.get(url, headers={"Authorization": f"Bearer vp_{'9' * 40}_x"}), 4100, 401)
    token = sqlite_server.token("limited", permissions="createVoiceprintGroup")
    _error(httpx.get(url, headers={"Authorization": f"Bearer {token}"}), 4101, 403)


@pytest.mark.parametrize(
    "query",
    ["page_num=0", "page_size=0", "page_size=201", "page_num=abc", "group_id=-4", "group_id=x1"],
)
def test_bad_paging_and_filters_are_refused(api: httpx.Client, query: str) -> None:
    msg = _error(api.get(f"{PREFIX}?{query}"), 4000, 400)
    assert query.split("=")[0] in msg


def test_bad_bodies_and_ids(api: httpx.Client, group_id: str) -> None:
    assert "name" in _error(api.post(PREFIX, json={"name": "x" * 21}), 4000, 400)
    _error(api.post(PREFIX, json={"desc": "no name"}), 4000, 400)
    _error(api.post(PREFIX, json={"name": ""}), 4000, 400)
    _error(api.post(PREFIX, json={"name": "ok", "desc": "d" * 501}), 4000, 400)
    assert "JSON" in _error(
        api.post(PREFIX, content=b"{not json", headers={"Content-Type": "application/json"}),
        4000,
        400,
    )
    _error(api.put(f"{PREFIX}/abc", json={"name": "x"}), 4000, 400)
    _error(api.put(f"{PREFIX}/0", json={"name": "x"}), 4000, 400)
    _error(api.delete(f"{PREFIX}/{group_id}/features/notanid"), 4000, 400)
    assert "file" in _error(
        api.post(f"{PREFIX}/{group_id}/features", data={"name": "nofile"}), 4000, 400
    )
    # Twenty Chinese characters are twenty characters.
    _ok(api.put(f"{PREFIX}/{group_id}", json={"name": "声" * 20}))


def test_bad_identify_parameters(
    api: httpx.Client, group_id: str, speech: tuple[np.ndarray, int]
) -> None:
    audio = wav_bytes(*speech)
    for top_k in ("0", "-1", "many"):
        msg = _error(
            api.post(
                f"{PREFIX}/{group_id}/speaker_identify",
                data={"top_k": top_k},
                files={"file": audio},
            ),
            4000,
            400,
        )
        assert "top_k" in msg
    _error(
        api.post(
            f"{PREFIX}/{group_id}/speaker_identify",
            data={"sample_rate": "100"},
            files={"file": audio},
        ),
        4000,
        400,
    )


@pytest.mark.parametrize(
    ("make_audio", "code", "needle"),
    [
        (lambda s, r: b"", 4301, "empty"),
        (lambda s, r: wav_bytes(s, r)[:2000] + b"", 4301, "truncated"),
        (lambda s, r: b"\x89PNG\r\n\x1a\n" + bytes(20000), 4301, "PNG"),
        (lambda s, r: wav_bytes(np.zeros(r * 3, dtype=np.float32), r), 4303, "speech"),
        (lambda s, r: wav_bytes(s[: r // 5], r), 4303, "speech"),
        (lambda s, r: wav_bytes(s, 1000, "PCM_16"), 4301, "1000 Hz"),
    ],
    ids=["empty", "truncated", "png", "silence", "too-short", "lying-rate"],
)
def test_unusable_audio_is_refused_and_nothing_is_stored(
    api: httpx.Client,
    sqlite_server: Server,
    group_id: str,
    speech: tuple[np.ndarray, int],
    make_audio,  # type: ignore[no-untyped-def]
    code: int,
    needle: str,
) -> None:
    files_before = sorted(sqlite_server.audio_files())
    count_before = _ok(api.get(f"{PREFIX}/{group_id}/features"))["total"]
    msg = _error(_enrol(api, group_id, make_audio(*speech)), code, 400)
    assert needle in msg
    assert sorted(sqlite_server.audio_files()) == files_before
    assert _ok(api.get(f"{PREFIX}/{group_id}/features"))["total"] == count_before


def test_failed_update_keeps_the_old_voiceprint(
    api: httpx.Client, group_id: str, speech: tuple[np.ndarray, int]
) -> None:
    original = wav_bytes(*speech)
    feature_id = _ok(_enrol(api, group_id, original, "keeper"))["id"]
    url = f"{PREFIX}/{group_id}/features/{feature_id}"
    silence = wav_bytes(np.zeros(16000 * 3, dtype=np.float32), 16000)
    _error(api.put(url, data={"name": "changed"}, files={"file": silence}), 4303, 400)

    item = next(
        f for f in _ok(api.get(f"{PREFIX}/{group_id}/features"))["items"] if f["id"] == feature_id
    )
    assert item["name"] == "keeper"
    assert httpx.get(item["audio_url"]).content == original
    probe = read_speech(speech_files("librispeech", "2414")[1])
    result = _ok(
        api.post(
            f"{PREFIX}/{group_id}/features/{feature_id}/verify", files={"file": wav_bytes(*probe)}
        )
    )
    assert result["match"] is True and result["decision"] == "same_speaker"
    api.delete(url)


def test_audio_url_downloads_the_original_and_cannot_be_forged(
    api: httpx.Client, sqlite_server: Server, group_id: str, speech: tuple[np.ndarray, int]
) -> None:
    original = wav_bytes(*speech)
    feature_id = _ok(_enrol(api, group_id, original, "download"))["id"]
    item = next(
        f for f in _ok(api.get(f"{PREFIX}/{group_id}/features"))["items"] if f["id"] == feature_id
    )
    download = httpx.get(item["audio_url"])
    assert download.status_code == 200 and download.content == original
    assert download.headers["content-type"] == "audio/wav"

    forged = re.sub(r"signature=[0-9a-f]+", "signature=" + "0" * 32, item["audio_url"])
    _error(httpx.get(forged), 4101, 403)
    longer = re.sub(r"expires=\d+", f"expires={int(time.time()) + 10**6}", item["audio_url"])
    _error(httpx.get(longer), 4101, 403)
    # A token holder in the workspace may fetch it without a signature; a stranger may not.
    plain = f"{PREFIX}/{group_id}/features/{feature_id}/audio"
    assert api.get(plain).content == original
    stranger = sqlite_server.token("stranger")
    _error(
        httpx.get(f"{sqlite_server.url}{plain}", headers={"Authorization": f"Bearer {stranger}"}),
        4200,
        404,
    )

    api.delete(f"{PREFIX}/{group_id}/features/{feature_id}")
    _error(httpx.get(item["audio_url"]), 4200, 404)


def test_declared_oversize_body_is_refused_before_it_is_sent(
    sqlite_server: Server, group_id: str, api: httpx.Client
) -> None:
    host, port = sqlite_server.url.removeprefix("http://").split(":")
    token = api.headers["Authorization"]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (
            f"POST {PREFIX}/{group_id}/features HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 50000000\r\n\r\n"
        )
        sock.sendall(head.encode())  # no body at all: the answer must not wait for one
        reply = ""
        while '"detail"' not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk.decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413")
    assert '"code":4302' in reply


def test_streamed_oversize_body_is_cut_off(
    api: httpx.Client, group_id: str, speech: tuple[np.ndarray, int]
) -> None:
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for _ in range(64):  # 16 MB, without a Content-Length header
            sent += 1
            yield bytes(256 * 1024)
        yield b"\r\n--b--\r\n"

    try:
        response = api.post(
            f"{PREFIX}/{group_id}/features",
            content=body(),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
    except httpx.TransportError:
        pytest.fail("the server should answer 413, not drop the connection")
    _error(response, 4302, 413)


def test_file_just_over_the_limit_is_refused(
    api: httpx.Client, group_id: str, speech: tuple[np.ndarray, int]
) -> None:
    samples, rate = speech
    big = wav_bytes(np.tile(samples, 50)[: 2 * 1024 * 1024 + 10], rate)  # 20 bytes over
    assert len(big) > 4 * 1024 * 1024
    msg = _error(_enrol(api, group_id, big), 4302, 413)
    assert "4194304" in msg


def test_raw_pcm_with_declared_rate(
    api: httpx.Client, group_id: str, speech: tuple[np.ndarray, int]
) -> None:
    import soxr

    samples, rate = speech
    pcm8k = (soxr.resample(samples, rate, 8000) * 32767).astype("<i2").tobytes()
    feature_id = _ok(
        api.post(
            f"{PREFIX}/{group_id}/features",
            data={"name": "pcm", "sample_rate": "8000", "channel": "1"},
            files={"file": ("voice.pcm", pcm8k)},
        )
    )["id"]
    probe = read_speech(speech_files("librispeech", "2414")[2])
    result = _ok(
        api.post(
            f"{PREFIX}/{group_id}/features/{feature_id}/verify", files={"file": wav_bytes(*probe)}
        )
    )
    assert result["match"] is True
    api.delete(f"{PREFIX}/{group_id}/features/{feature_id}")


def test_openapi_document_describes_the_api(sqlite_server: Server) -> None:
    spec = httpx.get(f"{sqlite_server.url}/openapi.json").json()
    identify = spec["paths"][f"{PREFIX}/{{group_id}}/speaker_identify"]["post"]
    schema = identify["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"file", "top_k", "sample_rate", "channel"} <= set(schema["properties"])
    assert "IdentifyResponse" in str(identify["responses"]["200"])
    assert httpx.get(f"{sqlite_server.url}/docs").status_code == 200


def _joined(speaker: str, seconds: int) -> tuple[np.ndarray, int]:
    files = speech_files("librispeech", speaker)
    wave = np.concatenate([read_speech(p)[0] for p in files[:3]])[: seconds * 16000]
    return wave, 16000


def test_two_voices_in_an_enrolment_are_refused(api: httpx.Client, group_id: str) -> None:
    first, rate = _joined("1998", 6)
    second, _ = _joined("2414", 6)
    msg = _error(_enrol(api, group_id, wav_bytes(np.concatenate([first, second]), rate)), 4306, 400)
    assert "more than one voice" in msg


def test_several_samples_per_voiceprint(api: httpx.Client, group_id: str) -> None:
    clips = [wav_bytes(*read_speech(p)) for p in speech_files("librispeech", "3080")[:3]]
    created = api.post(
        f"{PREFIX}/{group_id}/features",
        data={"name": "multi"},
        files=[("file", ("a.wav", clips[0])), ("file", ("b.wav", clips[1]))],
    )
    data = _ok(created)
    feature_id = data["id"]
    assert [set(s["quality"]) for s in data["samples"]] == [
        {
            "duration_s",
            "speech_s",
            "level_dbfs",
            "snr_db",
            "clipping_ratio",
            "voice_consistency",
            "upper_band_db",
            "narrowband",
        }
    ] * 2
    assert not any(s["quality"]["narrowband"] for s in data["samples"])
    assert data["speech_seconds"] == pytest.approx(
        sum(s["speech_seconds"] for s in data["samples"])
    )
    added = _ok(
        api.post(f"{PREFIX}/{group_id}/features/{feature_id}/samples", files={"file": clips[2]})
    )
    assert added["id"] == feature_id and added["sample_count"] == len(added["samples"]) == 3
    assert added["samples"][:2] == data["samples"]
    assert added["speech_seconds"] == pytest.approx(
        sum(s["speech_seconds"] for s in added["samples"])
    )
    assert added["enough_speech"] is (added["speech_seconds"] >= 6.0)

    item = next(
        f for f in _ok(api.get(f"{PREFIX}/{group_id}/features"))["items"] if f["id"] == feature_id
    )
    assert len(item["samples"]) == 3
    assert all(s["quality"]["speech_s"] > 1 for s in item["samples"])
    assert httpx.get(item["audio_url"]).content == clips[0]

    probe = wav_bytes(*read_speech(speech_files("librispeech", "3080")[5]))
    result = _ok(
        api.post(f"{PREFIX}/{group_id}/features/{feature_id}/verify", files={"file": probe})
    )
    assert result["match"] is True and result["score"] >= 50
    other = wav_bytes(*read_speech(speech_files("librispeech", "533")[1]))  # 9 s
    result = _ok(
        api.post(f"{PREFIX}/{group_id}/features/{feature_id}/verify", files={"file": other})
    )
    assert result == {"score": result["score"], "match": False, "decision": "different_speaker"}
    assert result["score"] < 50

    # A miss on little speech (2.5 s, under 2 s of it speech) is no evidence of a stranger;
    # identify says so too.
    short = wav_bytes(*read_speech(speech_files("librispeech", "533")[0]))
    result = _ok(
        api.post(f"{PREFIX}/{group_id}/features/{feature_id}/verify", files={"file": short})
    )
    assert result["match"] is False and result["decision"] == "too_little_speech"
    for audio, decision in (
        (probe, "same_speaker"),
        (other, "different_speaker"),
        (short, "too_little_speech"),
    ):
        found = _ok(api.post(f"{PREFIX}/{group_id}/speaker_identify", files={"file": audio}))
        assert found["decision"] == decision
    api.delete(f"{PREFIX}/{group_id}/features/{feature_id}")


def test_enrolment_says_when_a_voiceprint_holds_too_little_speech(
    api: httpx.Client, group_id: str
) -> None:
    """The advice (6 s of speech) is answered, so a client knows to ask for more."""
    short = [
        p for p in speech_files("speechocean762", "3020") if 2.5 < soundfile.info(p).duration < 4.0
    ]
    first = _ok(_enrol(api, group_id, short[0].read_bytes()))
    assert first["speech_seconds"] < 6.0 and first["enough_speech"] is False
    added = first
    for path in short[1:]:
        added = _ok(
            api.post(
                f"{PREFIX}/{group_id}/features/{first['id']}/samples",
                files={"file": path.read_bytes()},
            )
        )
        if added["enough_speech"]:
            break
    assert added["enough_speech"] is True and added["speech_seconds"] >= 6.0
    assert 2 <= added["sample_count"] <= 4
