"""The live identify stream through a real server and a real WebSocket client."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.api.conftest import Server, start_sqlite
from tests.conftest import read_speech, speech_files, wav_bytes
from voiceprint.audio.vad import speech_only
from voiceprint.service.factory import Models

PREFIX = "/v1/audio/voiceprint_groups"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_sqlite(tmp_path_factory, "live", max_streams="2", stream_idle_timeout_s="3")


def _speech(speaker: str, index: int) -> np.ndarray:
    return read_speech(speech_files("librispeech", speaker)[index])[0]


@pytest.fixture(scope="module")
def setup(live: Server) -> dict[str, str]:
    token = live.token()
    auth = {"Authorization": f"Bearer {token}"}
    group = httpx.post(f"{live.url}{PREFIX}", json={"name": "live"}, headers=auth).json()["data"][
        "id"
    ]
    ids = {}
    for speaker in ("1688", "2033"):
        clip = wav_bytes(_speech(speaker, 0), 16000)
        created = httpx.post(
            f"{live.url}{PREFIX}/{group}/features", data={"name": speaker}, files={"file": clip},
            headers=auth, timeout=60,
        )  # fmt: skip
        ids[speaker] = created.json()["data"]["id"]
    return {"token": token, "group": group, **ids}


def _url(live: Server, group: str) -> str:
    return live.url.replace("http://", "ws://") + f"{PREFIX}/{group}/speaker_identify/stream"


def _open(live: Server, setup: dict[str, str], group: str | None = None) -> ClientConnection:
    auth = {"Authorization": f"Bearer {setup['token']}"}
    return connect(_url(live, group or setup["group"]), additional_headers=auth)


def _append(ws: ClientConnection, pcm: bytes, chunk: int = 6400) -> None:
    for i in range(0, len(pcm), chunk):
        delta = base64.b64encode(pcm[i : i + chunk]).decode()
        ws.send(
            json.dumps(
                {"id": str(i), "event_type": "input_audio_buffer.append", "data": {"delta": delta}}
            )
        )


def _until(ws: ClientConnection, event_type: str) -> list[dict]:
    events = []
    while True:
        event = json.loads(ws.recv(timeout=60))
        assert event["detail"]["logid"]
        events.append(event)
        if event["event_type"] == event_type:
            return events


def _finals(events: list[dict]) -> list[dict]:
    """The data of the final speaker_identify.segment events."""
    return [
        e["data"]
        for e in events
        if e["event_type"] == "speaker_identify.segment" and e["data"]["final"]
    ]


def _pcm(wave: np.ndarray) -> bytes:
    return (np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes()


def test_turns_are_named_as_they_end(live: Server, setup: dict[str, str]) -> None:
    pause = np.zeros(16000, np.float32)
    first, second = _speech("1688", 1)[: 6 * 16000], _speech("2033", 1)[: 6 * 16000]
    with _open(live, setup) as ws:
        created = json.loads(ws.recv(timeout=30))
        assert created["event_type"] == "speaker_identify.created"
        assert created["data"]["input_audio"]["sample_rate"] == 16000
        _append(ws, _pcm(np.concatenate([first, pause, second, pause])))
        ws.send(json.dumps({"id": "end", "event_type": "input_audio_buffer.complete"}))
        events = _until(ws, "input_audio_buffer.completed")
    kinds = [e["event_type"] for e in events]
    assert (
        "input_audio_buffer.speech_started" in kinds
        and "input_audio_buffer.speech_stopped" in kinds
    )
    segments = [e["data"] for e in events if e["event_type"] == "speaker_identify.segment"]
    assert any(not s["final"] for s in segments)  # interim answers while a turn goes on
    finals = [s for s in segments if s["final"] and s["match"]]
    named = {(s["start_ms"] < 6000, s["feature_score_list"][0]["feature_id"]) for s in finals}
    assert named == {(True, setup["1688"]), (False, setup["2033"])}
    assert all(s["end_ms"] > s["start_ms"] for s in segments)


def test_a_change_of_speaker_without_a_pause_gets_a_final_each(
    live: Server, setup: dict[str, str], models: Models
) -> None:
    def speech(speaker: str) -> np.ndarray:  # 6 s of speech, its own pauses left out
        wave = _speech(speaker, 1)
        return speech_only(wave, models.voice.detector.segments(wave))[: 6 * 16000]

    with _open(live, setup) as ws:
        json.loads(ws.recv(timeout=30))
        _append(ws, _pcm(np.concatenate([speech("1688"), speech("2033"), np.zeros(16000)])))
        ws.send(json.dumps({"id": "end", "event_type": "input_audio_buffer.complete"}))
        events = _until(ws, "input_audio_buffer.completed")
    stops = [e for e in events if e["event_type"] == "input_audio_buffer.speech_stopped"]
    assert len(stops) == 1  # one turn: the VAD heard no pause
    finals = _finals(events)
    assert [f["feature_score_list"][0]["feature_id"] for f in finals if f["match"]] == [
        setup["1688"],
        setup["2033"],
    ]
    assert abs(finals[1]["start_ms"] - 6000) < 1000
    assert finals[0]["end_ms"] == finals[1]["start_ms"]
    assert finals[-1]["end_ms"] == stops[0]["data"]["offset_ms"]


def test_the_part_before_a_change_is_answered_before_the_turn_ends(
    live: Server, setup: dict[str, str], models: Models
) -> None:
    def speech(speaker: str) -> np.ndarray:
        wave = _speech(speaker, 1)
        return speech_only(wave, models.voice.detector.segments(wave))[: 6 * 16000]

    first = speech("2033")
    with _open(live, setup) as ws:
        json.loads(ws.recv(timeout=30))
        _append(ws, _pcm(np.concatenate([first, speech("1688"), np.zeros(16000)])))
        ws.send(json.dumps({"id": "end", "event_type": "input_audio_buffer.complete"}))
        events = _until(ws, "input_audio_buffer.completed")
    kinds = [e["event_type"] for e in events]
    stopped = kinds.index("input_audio_buffer.speech_stopped")
    before = _finals(events[:stopped])  # answered while the turn went on
    assert len(before) == 1 and abs(before[0]["end_ms"] - len(first) / 16) < 300
    assert before[0]["feature_score_list"][0]["feature_id"] == setup["2033"]
    after = _finals(events[stopped:])
    assert [f["feature_score_list"][0]["feature_id"] for f in after if f["match"]] == [
        setup["1688"]
    ]
    assert after[0]["start_ms"] == before[0]["end_ms"]


def test_a_change_the_segmentation_does_not_hear_is_answered_before_the_turn_ends(
    live: Server, setup: dict[str, str], models: Models
) -> None:
    """Two men reading, whom the segmentation hears as one voice (tests/diarization/
    test_changes.py): the turn's windows tell them apart."""

    def talk(speaker: str) -> np.ndarray:  # 5 s of recordings not enrolled, pauses cut out
        waves = [read_speech(path)[0] for path in speech_files("librispeech", speaker)[1:]]
        speech = [speech_only(w, models.voice.detector.segments(w)) for w in waves]
        return np.concatenate(speech)[: 5 * 16000]

    with _open(live, setup) as ws:
        json.loads(ws.recv(timeout=30))
        _append(ws, _pcm(np.concatenate([talk("1688"), talk("1998"), np.zeros(16000)])))
        ws.send(json.dumps({"id": "end", "event_type": "input_audio_buffer.complete"}))
        events = _until(ws, "input_audio_buffer.completed")
    kinds = [e["event_type"] for e in events]
    assert kinds.count("input_audio_buffer.speech_stopped") == 1  # one turn
    before = _finals(events[: kinds.index("input_audio_buffer.speech_stopped")])
    # The windows place a change to within their hop, 0.75 s.
    assert len(before) == 1 and abs(before[0]["end_ms"] - 5000) < 750
    assert before[0]["feature_score_list"][0]["feature_id"] == setup["1688"]


def test_g711_at_8khz_and_the_query_string_token(live: Server, setup: dict[str, str]) -> None:
    import soxr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop  # the standard library's G.711 encoder: an independent reference

    wave = soxr.resample(_speech("2033", 2)[: 5 * 16000], 16000, 8000)
    mulaw = audioop.lin2ulaw(_pcm(wave), 2)
    url = _url(live, setup["group"]) + "?authorization=" + quote(f"Bearer {setup['token']}")
    with connect(url) as ws:
        json.loads(ws.recv(timeout=30))
        config = {
            "input_audio": {"format": "pcm", "codec": "g711u", "sample_rate": 8000, "channel": 1}
        }
        ws.send(json.dumps({"id": "u", "event_type": "speaker_identify.update", "data": config}))
        updated = _until(ws, "speaker_identify.updated")[-1]
        assert updated["data"]["input_audio"]["codec"] == "g711u"
        _append(ws, mulaw, chunk=1600)
        ws.send(json.dumps({"id": "end", "event_type": "input_audio_buffer.complete"}))
        events = _until(ws, "input_audio_buffer.completed")
    finals = _finals(events)
    assert finals and all(f["feature_score_list"][0]["feature_id"] == setup["2033"] for f in finals)


def test_bad_messages_get_error_events_and_the_stream_goes_on(
    live: Server, setup: dict[str, str]
) -> None:
    with _open(live, setup) as ws:
        json.loads(ws.recv(timeout=30))
        bad = [
            "{not json",
            json.dumps({"event_type": "input_audio_buffer.dance"}),
            json.dumps({"event_type": "input_audio_buffer.append", "data": {"delta": "@@@"}}),
            json.dumps(
                {
                    "event_type": "speaker_identify.update",
                    "data": {"input_audio": {"format": "mp3"}},
                }
            ),
            json.dumps(
                {
                    "event_type": "speaker_identify.update",
                    "data": {"input_audio": {"sample_rate": 1}},
                }
            ),
            "x" * (1024 * 1024 + 1),
        ]
        codes = []
        for message in bad:
            ws.send(message)
            event = json.loads(ws.recv(timeout=30))
            assert event["event_type"] == "error" and event["data"]["msg"]
            codes.append(event["data"]["code"])
        assert codes == [4000, 4000, 4000, 4301, 4301, 4302]
        # Still usable: a second of speech, then complete.
        _append(ws, _pcm(_speech("1688", 2)[: 3 * 16000]))
        ws.send(json.dumps({"event_type": "input_audio_buffer.complete"}))
        assert _until(ws, "input_audio_buffer.completed")


def test_audio_far_ahead_of_real_time_is_refused(live: Server, setup: dict[str, str]) -> None:
    with _open(live, setup) as ws:
        json.loads(ws.recv(timeout=30))
        _append(ws, _pcm(np.zeros(25 * 16000, np.float32)), chunk=32000 * 5)
        errors = [e for e in _until(ws, "error") if e["event_type"] == "error"]
        assert errors[0]["data"]["code"] == 4013 and "real time" in errors[0]["data"]["msg"]


def test_refused_connections_are_closed_with_the_code(live: Server, setup: dict[str, str]) -> None:
    for headers, group, code in (
        ({"Authorization": "Bearer vp_1_nope"}, setup["group"], 4100),
        ({"Authorization": f"Bearer {setup['token']}"}, "7000000000000000001", 4200),
        ({}, setup["group"], 4100),
    ):
        with connect(_url(live, group), additional_headers=headers) as ws:
            event = json.loads(ws.recv(timeout=30))
            assert event["event_type"] == "error" and event["data"]["code"] == code
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=30)
            assert closed.value.rcvd.code == code


def test_capacity_and_idle_timeout(live: Server, setup: dict[str, str]) -> None:
    with _open(live, setup) as first, _open(live, setup) as second:
        json.loads(first.recv(timeout=30))
        json.loads(second.recv(timeout=30))
        with _open(live, setup) as third:
            event = json.loads(third.recv(timeout=30))
            assert (
                event["data"]["code"] == 4013
                and "maximum of 2 live streams" in event["data"]["msg"]
            )
            with pytest.raises(ConnectionClosed) as closed:
                third.recv(timeout=30)
            assert closed.value.rcvd.code == 1013
        idle = json.loads(first.recv(timeout=30))  # nothing sent for 3 s
        assert idle["event_type"] == "error" and "no message for 3 s" in idle["data"]["msg"]


def test_an_ogg_opus_stream(live: Server, setup: dict[str, str]) -> None:
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, _speech("2033", 3)[: 6 * 16000], 16000, format="OGG", subtype="OPUS")
    with _open(live, setup) as ws:
        json.loads(ws.recv(timeout=30))
        config = {"input_audio": {"format": "ogg"}}
        ws.send(json.dumps({"event_type": "speaker_identify.update", "data": config}))
        assert _until(ws, "speaker_identify.updated")[-1]["data"]["input_audio"]["format"] == "ogg"
        _append(ws, buffer.getvalue(), chunk=2000)
        ws.send(json.dumps({"event_type": "input_audio_buffer.complete"}))
        events = _until(ws, "input_audio_buffer.completed")
    finals = _finals(events)
    assert finals and all(f["feature_score_list"][0]["feature_id"] == setup["2033"] for f in finals)
    assert max(f["end_ms"] for f in finals) > 4000
