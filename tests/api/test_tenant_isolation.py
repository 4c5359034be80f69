"""Tenants apart, on every endpoint: another workspace's token gets exactly what a missing id
gets (4200, same words), learns no name and no audio; another user of the same workspace
may look but not change (4101)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.api.conftest import Server
from tests.conftest import read_speech, speech_files, wav_bytes

PREFIX = "/v1/audio/voiceprint_groups"
MISSING = "7000000000000000001"
SECRET_NAMES = ("Secret Family", "Grandma Li")

Call = Callable[[httpx.Client, str, str], httpx.Response]


def _clip() -> bytes:
    wave, rate = read_speech(speech_files("librispeech", "3080")[0])
    return wav_bytes(wave[: 4 * rate], rate)


CLIP = _clip()

# Every endpoint that names a group (and maybe a voiceprint), as a call of (client, group, feature).
CALLS: dict[str, Call] = {
    "update group": lambda c, g, f: c.put(f"{PREFIX}/{g}", json={"name": "x"}),
    "delete group": lambda c, g, f: c.delete(f"{PREFIX}/{g}"),
    "create voiceprint": lambda c, g, f: c.post(
        f"{PREFIX}/{g}/features", data={"name": "x"}, files={"file": CLIP}
    ),
    "list voiceprints": lambda c, g, f: c.get(f"{PREFIX}/{g}/features"),
    "update voiceprint": lambda c, g, f: c.put(f"{PREFIX}/{g}/features/{f}", json={"name": "x"}),
    "delete voiceprint": lambda c, g, f: c.delete(f"{PREFIX}/{g}/features/{f}"),
    "add samples": lambda c, g, f: c.post(
        f"{PREFIX}/{g}/features/{f}/samples", files={"file": CLIP}
    ),
    "download audio": lambda c, g, f: c.get(f"{PREFIX}/{g}/features/{f}/audio"),
    "identify": lambda c, g, f: c.post(f"{PREFIX}/{g}/speaker_identify", files={"file": CLIP}),
    "verify": lambda c, g, f: c.post(f"{PREFIX}/{g}/features/{f}/verify", files={"file": CLIP}),
    "identify across groups": lambda c, g, f: c.post(
        "/v1/audio/speaker_identify", data={"group_ids": g}, files={"file": CLIP}
    ),
}
EDITS = ("update group", "delete group", "update voiceprint", "delete voiceprint", "add samples")


@pytest.fixture(scope="module")
def world(server: Server) -> dict[str, object]:
    owner = server.token("owner", workspace="acme")
    headers = {"Authorization": f"Bearer {owner}"}
    group = httpx.post(f"{server.url}{PREFIX}", json={"name": SECRET_NAMES[0]}, headers=headers)
    group_id = group.json()["data"]["id"]
    created = httpx.post(
        f"{server.url}{PREFIX}/{group_id}/features",
        data={"name": SECRET_NAMES[1]},
        files={"file": CLIP},
        headers=headers,
        timeout=60,
    )
    return {
        "group": group_id,
        "feature": created.json()["data"]["id"],
        "outsider": server.token("mallory", workspace="evil-corp"),
        "colleague": server.token("bob", workspace="acme"),
    }


def _client(server: Server, token: object) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


@pytest.mark.parametrize("name", list(CALLS))
def test_another_workspace_learns_nothing(server: Server, world: dict, name: str) -> None:
    call = CALLS[name]
    group, feature = world["group"], world["feature"]
    with _client(server, world["outsider"]) as outsider:
        real = call(outsider, group, feature)
        missing = call(outsider, MISSING, MISSING)
    assert (real.status_code, real.json()["code"]) == (404, 4200)
    assert (missing.status_code, missing.json()["code"]) == (404, 4200)
    assert real.json()["msg"].replace(group, "ID").replace(feature, "ID") == missing.json()[
        "msg"
    ].replace(MISSING, "ID")
    assert not any(secret in real.text for secret in SECRET_NAMES)
    assert real.content[:4] != b"RIFF"


def test_another_workspace_cannot_find_the_group_in_lists(server: Server, world: dict) -> None:
    with _client(server, world["outsider"]) as outsider:
        listed = outsider.get(f"{PREFIX}?group_id={world['group']}").json()
        named = outsider.get(f"{PREFIX}?name=Secret").json()
    assert listed["data"] == {"items": [], "total": 0}
    assert named["data"] == {"items": [], "total": 0}


@pytest.mark.parametrize("name", EDITS)
def test_a_colleague_may_not_change_what_is_not_theirs(
    server: Server, world: dict, name: str
) -> None:
    with _client(server, world["colleague"]) as colleague:
        response = CALLS[name](colleague, world["group"], world["feature"])
    assert (response.status_code, response.json()["code"]) == (403, 4101)
    assert "only the creator" in response.json()["msg"]


@pytest.mark.parametrize(
    "name", ["list voiceprints", "download audio", "identify", "verify", "identify across groups"]
)
def test_a_colleague_may_look(server: Server, world: dict, name: str) -> None:
    with _client(server, world["colleague"]) as colleague:
        response = CALLS[name](colleague, world["group"], world["feature"])
    assert response.status_code == 200
