"""speaker_diarize through a real server, on conversations built from real recordings."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import soundfile

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
