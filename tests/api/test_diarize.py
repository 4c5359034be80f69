"""speaker_diarize through a real server, on conversations built from real recordings."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import soundfile
import soxr

from tests.api.conftest import Server
from tests.conftest import DATA, read_speech, speech_files, wav_bytes
from voiceprint.eval import conversations
from voiceprint.eval.corpus import load_corpus
from voiceprint.eval.der import score
from voiceprint.service.factory import Models

PREFIX = "/v1/audio/voiceprint_groups"
PEOPLE = ("librispeech/1688", "librispeech/2033", "librispeech/3080")


@pytest.fixture(scope="module")
def api(sqlite_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sqlite_server.url,
        headers={"Authorization": f"Bearer {sqlite_server.token('diarist')}"},
        timeout=120,
    ) as client:
        yield client


@pytest.fixture(scope="module")
def conversation(models: Models) -> conversations.Conversation:
    by_speaker: dict[str, list] = {}
    for u in load_corpus(DATA / "index.tsv"):
        key = f"{u.set}/{u.speaker}"
        if key in PEOPLE:
            by_speaker.setdefault(key, []).append(u)
    return conversations.build(
        by_speaker, models.voice.detector, random.Random(3), speakers=3, turns=8
    )


def _wav(wave: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_who_spoke_when_with_names(
    api: httpx.Client, conversation: conversations.Conversation
) -> None:
    group = api.post(PREFIX, json={"name": "meeting"}).json()["data"]["id"]
    enrolled = {}
    for person in PEOPLE[:2]:  # the third stays a stranger
        clip = wav_bytes(*read_speech(speech_files("librispeech", person.split("/")[1])[0]))
        created = api.post(
            f"{PREFIX}/{group}/features", data={"name": person[-4:]}, files={"file": clip}
        )
        enrolled[person] = created.json()["data"]["id"]

    body = api.post(
        f"{PREFIX}/{group}/speaker_diarize", files={"file": _wav(conversation.wave)}
    ).json()
    assert body["code"] == 0, body
    data = body["data"]
    assert abs(data["duration_ms"] - len(conversation.wave) / 16) < 20
    segments = data["segments"]
    assert [s["start_ms"] for s in segments] == sorted(s["start_ms"] for s in segments)
    assert len(data["speakers"]) == 3
    hyp = [
        (s["start_ms"] * 16, s["end_ms"] * 16, s["feature_id"] or s["speaker"]) for s in segments
    ]
    ref = [(t.start, t.end, enrolled.get(t.speaker, "stranger")) for t in conversation.turns]
    # collar 0.5: 0.25 s each side of a boundary
    assert score(ref, hyp, len(conversation.wave), collar=0.5).der < 0.10
    named = {s["feature_id"]: s for s in data["speakers"] if s["match"]}
    assert set(named) == set(enrolled.values())
    assert all(s["feature_score_list"] for s in data["speakers"])
    stranger = [s for s in data["speakers"] if not s["match"]]
    assert (
        len(stranger) == 1
        and stranger[0]["feature_id"] == ""
        and stranger[0]["speaker"].startswith("S")
    )

    rttm = api.post(
        f"{PREFIX}/{group}/speaker_diarize",
        files={"file": _wav(conversation.wave)},
        data={"format": "rttm"},
    )
    assert rttm.headers["content-type"].startswith("text/plain")
    lines = rttm.text.strip().splitlines()
    assert len(lines) == len(segments) and all(line.startswith("SPEAKER ") for line in lines)


def test_a_known_number_of_speakers_is_honoured(
    api: httpx.Client, conversation: conversations.Conversation
) -> None:
    group = api.post(PREFIX, json={"name": "two"}).json()["data"]["id"]
    data = api.post(
        f"{PREFIX}/{group}/speaker_diarize",
        files={"file": _wav(conversation.wave)},
        data={"num_speakers": "2"},
    ).json()["data"]
    assert len(data["speakers"]) == 2
    assert all(not s["match"] and s["feature_score_list"] == [] for s in data["speakers"])


def test_bad_diarize_requests_get_documented_codes(
    api: httpx.Client, sqlite_server: Server
) -> None:
    group = api.post(PREFIX, json={"name": "bad"}).json()["data"]["id"]
    url = f"{PREFIX}/{group}/speaker_diarize"
    assert api.post(url, files={"file": b"\x89PNG" + bytes(100)}).json()["code"] == 4301
    assert (
        api.post(url, files={"file": b"x" * 10}, data={"num_speakers": "0"}).json()["code"] == 4000
    )
    assert api.post(url, files={"file": b"x" * 10}, data={"format": "xml"}).json()["code"] == 4000
    assert (
        api.post(f"{PREFIX}/7000000000000000001/speaker_diarize", files={"file": b"x" * 10}).json()[
            "code"
        ]
        == 4200
    )
    # Bigger than an identify may be (4 MB), well within the diarize limit.
    long = np.tile(read_speech(speech_files("librispeech", "1688")[0])[0], 10)[: 150 * 16000]
    answer = api.post(url, files={"file": wav_bytes(long, 16000)}).json()
    assert answer["code"] == 0 and answer["data"]["duration_ms"] == 150000
    silence = wav_bytes(np.zeros(3 * 16000, dtype=np.float32), 16000)
    empty = api.post(url, files={"file": silence}).json()
    assert (
        empty["code"] == 0 and empty["data"]["segments"] == [] and empty["data"]["speakers"] == []
    )


def test_a_meeting_of_distant_talkers_does_not_come_back_empty(api: httpx.Client) -> None:
    # The AMI opening EN2001b: 5.8 s of distant speech, none of it above the VAD's threshold.
    path = DATA / "conversations" / "ami_EN2001b_first30s.wav"
    group = api.post(PREFIX, json={"name": "far"}).json()["data"]["id"]
    data = api.post(f"{PREFIX}/{group}/speaker_diarize", files={"file": path.read_bytes()}).json()[
        "data"
    ]
    assert data["segments"] and len(data["speakers"]) >= 1
    reference = [(28.47, 30.0)]  # where three of the four speak at once
    assert any(
        s["start_ms"] / 1000 < end and s["end_ms"] / 1000 > start
        for s in data["segments"]
        for start, end in reference
    )


# Held-out callers of ``telephone`` (real lines) whose calls the wide-band clustering
# threshold answered as one speaker.
CALLS = (
    ("caller_9730af69f2", "caller_cde6d32720"),
    ("caller_8c8a2a8b5c", "caller_e4395ae8ab"),
    ("caller_98b8076fec", "caller_ccff09da67"),
)


def _call(models: Models, first: str, second: str) -> tuple[bytes, dict[str, list]]:
    """An 8 kHz call of two callers taking turns (up to 6, 6, 5, 5 s of their first
    call's speech, half a second apart), and where each caller's turns lie (seconds)."""
    calls = {}
    for who in (first, second):
        wave, rate = read_speech(speech_files("telephone", who)[0])
        assert rate == 8000
        segments = models.voice.detector.segments(soxr.resample(wave, rate, 16000))
        calls[who] = wave[segments[0].start // 2 :]  # from where the speech starts

    pause = np.zeros(4000, np.float32)
    wave, turns, at = [], {first: [], second: []}, 0
    for who, skip, seconds in [(first, 0, 6), (second, 0, 6), (first, 6, 5), (second, 6, 5)]:
        piece = calls[who][skip * 8000 : (skip + seconds) * 8000]
        wave += [piece, pause]
        turns[who].append((at / 8000, (at + len(piece)) / 8000))
        at += len(piece) + len(pause)
    return wav_bytes(np.concatenate(wave), 8000), turns


@pytest.fixture(scope="module")
def calls(api: httpx.Client) -> str:
    """An empty group the calls are diarized against (the test server allows few groups)."""
    return api.post(PREFIX, json={"name": "calls"}).json()["data"]["id"]


@pytest.mark.parametrize(("first", "second"), CALLS)
def test_two_callers_on_phone_lines_are_told_apart(
    api: httpx.Client, models: Models, calls: str, first: str, second: str
) -> None:
    body, turns = _call(models, first, second)
    data = api.post(f"{PREFIX}/{calls}/speaker_diarize", files={"file": body}).json()["data"]
    assert len(data["speakers"]) == 2
    # Most of the speech answered inside each caller's turns is one speaker's, a
    # different one for each caller.
    mostly = []
    for spans in turns.values():
        held: dict[str, float] = {}
        for s in data["segments"]:
            held[s["speaker"]] = held.get(s["speaker"], 0.0) + sum(
                max(0.0, min(s["end_ms"] / 1000, end) - max(s["start_ms"] / 1000, start))
                for start, end in spans
            )
        speaker = max(held, key=held.__getitem__)
        assert held[speaker] >= 0.8 * sum(held.values())
        mostly.append(speaker)
    assert mostly[0] != mostly[1]
