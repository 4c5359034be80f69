"""Inference runs beside the event loop, and overload is refused clearly, over real HTTP."""

from __future__ import annotations

import threading

import httpx
import numpy as np

from tests.api.conftest import Server
from tests.conftest import read_speech, speech_files, wav_bytes

PREFIX = "/v1/audio/voiceprint_groups"


def _long_probe() -> bytes:
    """About 60 s of one speaker: an identify that takes the engine a while."""
    waves = [read_speech(p)[0] for p in speech_files("librispeech", "1688")]
    return wav_bytes(np.concatenate(waves)[: 60 * 16000], 16000)


def _setup(server: Server) -> tuple[httpx.Client, str]:
    client = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token()}"}, timeout=120
    )
    group = client.post(PREFIX, json={"name": "busy"}).json()["data"]["id"]
    enrol = wav_bytes(*read_speech(speech_files("librispeech", "2033")[0]))
    assert (
        client.post(f"{PREFIX}/{group}/features", data={"name": "x"}, files={"file": enrol}).json()[
            "code"
        ]
        == 0
    )
    return client, group


def test_other_requests_are_served_while_inference_runs(unqueued_server: Server) -> None:
    client, group = _setup(unqueued_server)
    probe = _long_probe()
    events: list[str] = []
    started = threading.Event()

    def identify() -> None:
        started.set()
        response = client.post(f"{PREFIX}/{group}/speaker_identify", files={"file": probe})
        events.append(f"identify {response.json()['code']}")

    worker = threading.Thread(target=identify)
    worker.start()
    started.wait()
    while worker.is_alive():  # ask for health until the identify comes back
        health = httpx.get(f"{unqueued_server.url}/health", timeout=5)
        assert health.status_code == 200
        events.append("health")
    worker.join()
    # Health was answered, more than once, while the long identify was running.
    assert events.index("identify 0") >= 2
    assert events[:2] == ["health", "health"]


def test_overload_is_refused_with_4013_not_queued(unqueued_server: Server) -> None:
    client, group = _setup(unqueued_server)
    probe = _long_probe()
    codes: list[tuple[int, int]] = []
    lock = threading.Lock()

    def identify() -> None:
        response = client.post(f"{PREFIX}/{group}/speaker_identify", files={"file": probe})
        with lock:
            codes.append((response.status_code, response.json()["code"]))

    threads = [threading.Thread(target=identify) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (200, 0) in codes
    assert (429, 4013) in codes
    assert set(codes) <= {(200, 0), (429, 4013)}


def test_rate_limit_per_token_when_configured(unqueued_server: Server) -> None:
    limited = httpx.Client(
        base_url=unqueued_server.url,
        headers={"Authorization": f"Bearer {unqueued_server.token()}"},
    )
    codes = [limited.get(PREFIX).json()["code"] for _ in range(31)]
    assert codes[:30] == [0] * 30
    response = limited.get(PREFIX)
    assert (response.status_code, response.json()["code"]) == (429, 4013)
    assert "30 requests per minute" in response.json()["msg"]
    # Another token has its own allowance.
    other = httpx.get(
        f"{unqueued_server.url}{PREFIX}",
        headers={"Authorization": f"Bearer {unqueued_server.token()}"},
    )
    assert other.json()["code"] == 0
