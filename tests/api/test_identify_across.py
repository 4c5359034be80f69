"""Identify across groups (beyond Coze), through HTTP on SQLite and PostgreSQL: top_k over
all the groups named, decided among all their voiceprints (the same scores as one group
holding them all), each match naming its group; bad group_ids get 4000. Another
workspace's groups: tests/api/test_tenant_isolation.py."""

from __future__ import annotations

import httpx

from tests.api.conftest import Server
from tests.conftest import read_speech, speech_files, wav_bytes

PREFIX = "/v1/audio/voiceprint_groups"
ACROSS = "/v1/audio/speaker_identify"


def _clip(speaker: str, index: int) -> bytes:
    wave, rate = read_speech(speech_files("librispeech", speaker)[index])
    return wav_bytes(wave[: 4 * rate], rate)


def _group(client: httpx.Client, speakers: tuple[str, ...]) -> str:
    group = client.post(PREFIX, json={"name": "g"}).json()["data"]["id"]
    for speaker in speakers:
        created = client.post(
            f"{PREFIX}/{group}/features", data={"name": speaker}, files={"file": _clip(speaker, 0)}
        ).json()
        assert created["code"] == 0, created
    return group


def test_identify_across_groups_decides_among_all_their_voiceprints(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.token()}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        family, friends = _group(client, ("1688", "2033")), _group(client, ("3080",))
        together = _group(client, ("1688", "2033", "3080"))
        probe = _clip("3080", 1)

        answer = client.post(
            ACROSS, data={"group_ids": f"{family},{friends}", "top_k": "2"}, files={"file": probe}
        ).json()
        assert answer["code"] == 0, answer
        matches = answer["data"]["feature_score_list"]
        assert matches[0]["feature_name"] == "3080" and len(matches) == 2
        assert matches[0]["group_id"] == friends and matches[0]["match"]
        assert answer["data"]["decision"] == "same_speaker"

        # The same recordings in one group: the same scores (the bar for 3 voiceprints).
        one = client.post(f"{PREFIX}/{together}/speaker_identify", files={"file": probe}).json()
        in_one = {m["feature_name"]: m["score"] for m in one["data"]["feature_score_list"]}
        every = client.post(
            ACROSS, data={"group_ids": f"{friends},{family}"}, files={"file": probe}
        ).json()["data"]["feature_score_list"]
        assert {m["feature_name"]: m["score"] for m in every} == in_one
        assert {m["group_id"] for m in every} == {family, friends}
        # Alone in its group, the same voiceprint is decided among 1: a different score.
        alone = client.post(f"{PREFIX}/{friends}/speaker_identify", files={"file": probe}).json()
        assert alone["data"]["feature_score_list"][0]["score"] != in_one["3080"]

        for group_ids in ("", "x", f"{family},", "-1", f"{family};{friends}"):
            bad = client.post(ACROSS, data={"group_ids": group_ids}, files={"file": probe})
            assert (bad.status_code, bad.json()["code"]) == (400, 4000), group_ids
        missing = client.post(ACROSS, data={"top_k": "1"}, files={"file": probe})
        assert missing.json()["code"] == 4000 and "group_ids" in missing.json()["msg"]
        too_many = ",".join([family] * 101)
        assert (
            client.post(ACROSS, data={"group_ids": too_many}, files={"file": probe}).json()["code"]
            == 4000
        )
