"""Two server processes on one PostgreSQL database (and one shared audio folder) behave as one
service: quotas hold exactly when creates race across them, and either serves the other's
audio and signed links. With the recordings in the database, two servers with separate data
folders (two machines) answer alike, audio and signed links included."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest

from tests.api.conftest import (
    MAX_FEATURES_PER_GROUP,
    MAX_GROUPS_PER_WORKSPACE,
    Server,
    _start,
    postgres_database,
)
from tests.conftest import read_speech, speech_files, wav_bytes

PREFIX = "/v1/audio/voiceprint_groups"
MAX_SAMPLES = 3
PUBLIC = "http://voiceprint.example"


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    tmp = tmp_path_factory.mktemp("replicas")
    for url in postgres_database():
        with ExitStack() as stack:
            servers = []
            for _ in range(2):
                running = _start(tmp, url, max_samples_per_feature=str(MAX_SAMPLES))
                stack.callback(running.close)
                servers.append(next(running))
            yield servers


def _race(replicas: list[Server], token: str, n: int, send) -> list[int]:  # type: ignore[no-untyped-def]
    """``n`` requests at once, alternating between the replicas; their codes."""
    targets = itertools.cycle(replicas)
    jobs = [next(targets) for _ in range(n)]

    def one(server: Server) -> int:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            return send(client).json()["code"]

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, jobs))


def _clip(index: int) -> bytes:
    wave, rate = read_speech(speech_files("librispeech", "2033")[index])
    return wav_bytes(wave[: 3 * rate], rate)


def _enrol(on: Server, by: Server, auth: dict[str, str], clip: bytes) -> tuple[str, str]:
    """A new group made on one server and a voiceprint of ``clip`` enrolled in it on another."""
    group = httpx.post(f"{on.url}{PREFIX}", json={"name": "shared"}, headers=auth).json()
    created = httpx.post(
        f"{by.url}{PREFIX}/{group['data']['id']}/features",
        data={"name": "x"},
        files={"file": clip},
        headers=auth,
        timeout=60,
    ).json()
    return group["data"]["id"], created["data"]["id"]


def test_quotas_are_exact_across_replicas(replicas: list[Server]) -> None:
    token = replicas[0].token()
    codes = _race(replicas, token, 16, lambda c: c.post(PREFIX, json={"name": "g"}))
    assert codes.count(0) == MAX_GROUPS_PER_WORKSPACE
    assert codes.count(4305) == 16 - MAX_GROUPS_PER_WORKSPACE

    auth = {"Authorization": f"Bearer {token}"}
    group = httpx.get(f"{replicas[1].url}{PREFIX}", headers=auth).json()["data"]["items"][0]["id"]
    clip = _clip(0)
    codes = _race(
        replicas,
        token,
        8,
        lambda c: c.post(f"{PREFIX}/{group}/features", data={"name": "v"}, files={"file": clip}),
    )
    assert codes.count(0) == MAX_FEATURES_PER_GROUP
    assert codes.count(4304) == 8 - MAX_FEATURES_PER_GROUP

    listed = httpx.get(f"{replicas[0].url}{PREFIX}/{group}/features", headers=auth).json()
    feature = listed["data"]["items"][0]["id"]
    codes = _race(
        replicas,
        token,
        6,
        lambda c: c.post(f"{PREFIX}/{group}/features/{feature}/samples", files={"file": clip}),
    )
    assert codes.count(0) == MAX_SAMPLES - 1  # it had one recording
    assert codes.count(4308) == 6 - (MAX_SAMPLES - 1)


def test_either_replica_serves_the_others_audio_and_links(replicas: list[Server]) -> None:
    token = replicas[0].token()
    auth = {"Authorization": f"Bearer {token}"}
    first, second = replicas
    clip = _clip(1)
    group_id, feature = _enrol(first, first, auth, clip)
    item = httpx.get(f"{first.url}{PREFIX}/{group_id}/features", headers=auth).json()["data"][
        "items"
    ][0]
    link = item["audio_url"].replace(first.url, second.url)
    assert httpx.get(link).content == clip  # signed by one replica, honoured by the other
    direct = httpx.get(f"{second.url}{PREFIX}/{group_id}/features/{feature}/audio", headers=auth)
    assert direct.content == clip
    identified = httpx.post(
        f"{second.url}{PREFIX}/{group_id}/speaker_identify",
        files={"file": _clip(2)},
        headers=auth,
        timeout=60,
    ).json()
    assert identified["data"]["feature_score_list"][0]["feature_id"] == feature


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    """Two servers as on two machines: one PostgreSQL database, recordings stored in it
    (VOICEPRINT_BLOB_STORE=database), each its own data folder, one public URL (a load
    balancer's)."""
    for url in postgres_database():
        with ExitStack() as stack:
            servers = []
            for name in ("machine-a", "machine-b"):
                running = _start(
                    tmp_path_factory.mktemp(name), url, blob_store="database", public_url=PUBLIC
                )
                stack.callback(running.close)
                servers.append(next(running))
            yield servers


def test_servers_sharing_only_postgresql_answer_alike(machines: list[Server]) -> None:
    a, b = machines
    auth = {"Authorization": f"Bearer {a.token()}"}

    def both(method: str, path: str, **kwargs: object) -> list[httpx.Response]:
        return [
            httpx.request(method, f"{s.url}{path}", headers=auth, timeout=60, **kwargs)  # type: ignore[arg-type]
            for s in machines
        ]

    clip = _clip(1)
    gid, fid = _enrol(a, b, auth, clip)

    lists = [r.json()["data"] for r in both("GET", f"{PREFIX}/{gid}/features")]
    links = [data["items"][0].pop("audio_url") for data in lists]
    assert lists[0] == lists[1] and lists[0]["total"] == 1
    # A link's expiry counts from the second it was made, which may differ between the two
    # answers: the path is the same, and each server's link is honoured by both.
    assert len({link.partition("?")[0] for link in links}) == 1
    for audio_url in links:
        assert audio_url.startswith(PUBLIC)
        for server in machines:  # the signed link, as the load balancer would pass it on
            assert httpx.get(audio_url.replace(PUBLIC, server.url)).content == clip
    assert [r.content for r in both("GET", f"{PREFIX}/{gid}/features/{fid}/audio")] == [clip] * 2
    probe = _clip(2)
    identify = f"{PREFIX}/{gid}/speaker_identify"
    answers = [r.json()["data"] for r in both("POST", identify, files={"file": probe})]
    assert answers[0] == answers[1] and answers[0]["feature_score_list"][0]["feature_id"] == fid
    assert not [p for s in machines for p in (s.data_dir / "audio").rglob("*") if p.is_file()]

    assert httpx.delete(f"{a.url}{PREFIX}/{gid}/features/{fid}", headers=auth).json()["code"] == 0
    gone = [r.json()["code"] for r in both("GET", f"{PREFIX}/{gid}/features/{fid}/audio")]
    assert gone == [4200, 4200]
    after = [r.json()["data"] for r in both("POST", identify, files={"file": probe})]
    assert after == [{"feature_score_list": [], "decision": "different_speaker"}] * 2
