"""Conformance through the official Coze SDK: code written for api.coze.cn, base URL changed.

Runs once against SQLite and once against a fresh PostgreSQL database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cozepy import AsyncCoze, AsyncTokenAuth, Coze, CozeAPIError, TokenAuth

from tests.api.conftest import MAX_FEATURES_PER_GROUP, MAX_GROUPS_PER_WORKSPACE, Server
from tests.conftest import speech_files

# Three LibriSpeech speakers with ten recordings each: enrol one, identify with another.
SPEAKERS = ("1688", "2033", "3005")


def _clip(speaker: str, index: int) -> Path:
    return speech_files("librispeech", speaker)[index]


def _client(server: Server, token: str) -> Coze:
    return Coze(auth=TokenAuth(token), base_url=server.url)


def _code(exc: pytest.ExceptionInfo[CozeAPIError]) -> int:
    return exc.value.code  # type: ignore[return-value]


def _enrol(coze: Coze, group_id: str, speaker: str, index: int = 0) -> str:
    with _clip(speaker, index).open("rb") as f:
        return coze.audio.voiceprint_groups.features.create(
            group_id=group_id, name=f"spk-{speaker}", desc=f"LibriSpeech {speaker}", file=f
        ).id


def test_group_lifecycle_and_filters(server: Server) -> None:
    coze = _client(server, server.token("alice"))
    groups = coze.audio.voiceprint_groups
    first = groups.create(name="family", desc="at home").id
    second = groups.create(name="office").id
    assert first.isdigit() and second.isdigit() and first != second

    page = groups.list(page_size=10)
    assert page.total == 2
    assert [g.id for g in page.items] == [second, first]  # newest first
    item = page.items[1]
    assert (item.name, item.desc, item.feature_count, item.icon_url) == ("family", "at home", 0, "")
    assert item.user_info.name == "alice" and item.user_info.id.isdigit()
    assert isinstance(item.created_at, int) and item.created_at > 1_700_000_000

    assert [g.id for g in groups.list(name="fam").items] == [first]
    assert [g.id for g in groups.list(group_id=second).items] == [second]
    assert groups.list(user_id=item.user_info.id).total == 2
    with pytest.raises(CozeAPIError) as exc:
        groups.list(user_id="12345").items  # noqa: B018
    assert _code(exc) == 4101

    groups.update(group_id=first, name="household")
    groups.update(group_id=first, desc="")
    updated = groups.list(group_id=first).items[0]
    assert (updated.name, updated.desc) == ("household", "")
    assert updated.updated_at >= updated.created_at

    groups.delete(group_id=first)
    assert [g.id for g in groups.list().items] == [second]
    with pytest.raises(CozeAPIError) as exc:
        groups.delete(group_id=first)
    assert _code(exc) == 4200


def test_paging_walks_every_page(server: Server) -> None:
    groups = _client(server, server.token("pager")).audio.voiceprint_groups
    created = [groups.create(name=f"g{i}").id for i in range(5)]
    page = groups.list(page_num=1, page_size=2)
    assert page.total == 5 and len(page.items) == 2
    assert [g.id for g in groups.list(page_num=3, page_size=2).items] == [created[0]]
    assert groups.list(page_num=4, page_size=2).items == []
    # The SDK's iterator follows pages until one is empty.
    assert [g.id for g in groups.list(page_size=2)] == created[::-1]


def test_voiceprints_identify_update_delete(server: Server) -> None:
    coze = _client(server, server.token("bob"))
    group_id = coze.audio.voiceprint_groups.create(name="speakers").id
    features = coze.audio.voiceprint_groups.features
    ids = {speaker: _enrol(coze, group_id, speaker) for speaker in SPEAKERS}

    listed = features.list(group_id=group_id, page_size=2)
    assert listed.total == 3 and len(listed.items) == 2
    every = list(features.list(group_id=group_id, page_size=2))
    assert {f.id for f in every} == set(ids.values())
    assert all(f.group_id == group_id and f.user_info.name == "bob" for f in every)
    group = coze.audio.voiceprint_groups.list(group_id=group_id).items[0]
    assert group.feature_count == 3

    for speaker in SPEAKERS:
        with _clip(speaker, 1).open("rb") as f:
            result = coze.audio.voiceprint_groups.speaker_identify(group_id=group_id, file=f)
        scores = result.feature_score_list
        assert len(scores) == 3
        assert scores[0].feature_id == ids[speaker], f"speaker {speaker} not ranked first"
        assert scores[0].feature_name == f"spk-{speaker}"
        assert scores[0].score >= 50 > scores[1].score
        assert [s.score for s in scores] == sorted((s.score for s in scores), reverse=True)
        assert all(0 <= s.score <= 100 for s in scores)

    # cozepy 0.20 puts top_k into a multipart part as given, and httpx only accepts text
    # there, so SDK users pass it as a string; the server reads it as a number either way.
    with _clip(SPEAKERS[0], 2).open("rb") as f:
        top = coze.audio.voiceprint_groups.speaker_identify(group_id=group_id, file=f, top_k="1")
    assert [s.feature_id for s in top.feature_score_list] == [ids[SPEAKERS[0]]]

    # Rename only (the SDK sends JSON), then nothing at all (JSON {}).
    target = ids[SPEAKERS[0]]
    features.update(group_id=group_id, feature_id=target, name="renamed", desc="new desc")
    features.update(group_id=group_id, feature_id=target)
    renamed = next(f for f in features.list(group_id=group_id) if f.id == target)
    assert (renamed.name, renamed.desc) == ("renamed", "new desc")

    # Replace the audio with another speaker's: the voiceprint now matches that speaker.
    with _clip(SPEAKERS[1], 3).open("rb") as f:
        features.update(group_id=group_id, feature_id=target, file=f)
    with _clip(SPEAKERS[0], 1).open("rb") as f:
        after = coze.audio.voiceprint_groups.speaker_identify(group_id=group_id, file=f)
    assert next(s for s in after.feature_score_list if s.feature_id == target).score < 50

    files_before = len(server.audio_files())
    features.delete(group_id=group_id, feature_id=target)
    assert len(server.audio_files()) == files_before - 1
    assert features.list(group_id=group_id).total == 2


def test_identify_in_empty_group_returns_empty_list(server: Server) -> None:
    coze = _client(server, server.token("carol"))
    group_id = coze.audio.voiceprint_groups.create(name="empty").id
    with _clip(SPEAKERS[0], 0).open("rb") as f:
        result = coze.audio.voiceprint_groups.speaker_identify(group_id=group_id, file=f)
    assert result.feature_score_list == []


def test_feature_and_group_quotas(server: Server) -> None:
    coze = _client(server, server.token("dave"))
    group_id = coze.audio.voiceprint_groups.create(name="full").id
    for _ in range(MAX_FEATURES_PER_GROUP):
        _enrol(coze, group_id, SPEAKERS[0])
    with pytest.raises(CozeAPIError) as exc:
        _enrol(coze, group_id, SPEAKERS[1])
    assert _code(exc) == 4304
    assert "at most" in str(exc.value) or "most allowed" in str(exc.value)

    for i in range(MAX_GROUPS_PER_WORKSPACE - 1):
        coze.audio.voiceprint_groups.create(name=f"more{i}")
    with pytest.raises(CozeAPIError) as exc:
        coze.audio.voiceprint_groups.create(name="one too many")
    assert _code(exc) == 4305


def test_only_creators_change_what_they_created(server: Server) -> None:
    workspace = "shared-team"
    owner = _client(server, server.token("owner", workspace))
    colleague = _client(server, server.token("colleague", workspace))
    group_id = owner.audio.voiceprint_groups.create(name="team").id
    feature_id = _enrol(owner, group_id, SPEAKERS[0])

    # Colleagues see and use the group...
    assert [g.id for g in colleague.audio.voiceprint_groups.list().items] == [group_id]
    with _clip(SPEAKERS[0], 1).open("rb") as f:
        result = colleague.audio.voiceprint_groups.speaker_identify(group_id=group_id, file=f)
    assert result.feature_score_list[0].feature_id == feature_id
    # ...and may add their own voiceprints, but not edit the owner's.
    own = _enrol(colleague, group_id, SPEAKERS[1])
    colleague.audio.voiceprint_groups.features.update(group_id=group_id, feature_id=own, name="x")
    for call in (
        lambda: colleague.audio.voiceprint_groups.update(group_id=group_id, name="mine"),
        lambda: colleague.audio.voiceprint_groups.delete(group_id=group_id),
        lambda: colleague.audio.voiceprint_groups.features.update(
            group_id=group_id, feature_id=feature_id, name="mine"
        ),
        lambda: colleague.audio.voiceprint_groups.features.delete(
            group_id=group_id, feature_id=feature_id
        ),
    ):
        with pytest.raises(CozeAPIError) as exc:
            call()
        assert _code(exc) == 4101


def test_other_workspaces_see_nothing(server: Server) -> None:
    owner = _client(server, server.token("owner2"))
    stranger = _client(server, server.token("stranger"))
    group_id = owner.audio.voiceprint_groups.create(name="private").id
    feature_id = _enrol(owner, group_id, SPEAKERS[0])

    assert stranger.audio.voiceprint_groups.list().total == 0
    assert stranger.audio.voiceprint_groups.list(group_id=group_id).total == 0
    with _clip(SPEAKERS[0], 1).open("rb") as f:
        audio = f.read()
    for call in (
        lambda: stranger.audio.voiceprint_groups.features.list(group_id=group_id).items,
        lambda: stranger.audio.voiceprint_groups.update(group_id=group_id, name="x"),
        lambda: stranger.audio.voiceprint_groups.delete(group_id=group_id),
        lambda: stranger.audio.voiceprint_groups.features.delete(
            group_id=group_id, feature_id=feature_id
        ),
        lambda: stranger.audio.voiceprint_groups.speaker_identify(group_id=group_id, file=audio),
    ):
        with pytest.raises(CozeAPIError) as exc:
            call()
        assert _code(exc) == 4200
        assert "private" not in str(exc.value)


def test_bad_tokens_and_missing_permissions(server: Server) -> None:
    with pytest.raises(CozeAPIError) as exc:
        _client(server, "vp_123_not-a-real-secret").audio.voiceprint_groups.create(name="x")
    assert _code(exc) == 4100
    with pytest.raises(CozeAPIError) as exc:
        _client(server, "garbage").audio.voiceprint_groups.list().items  # noqa: B018
    assert _code(exc) == 4100

    expired = server.token("eve", expires_days=-1)
    with pytest.raises(CozeAPIError) as exc:
        _client(server, expired).audio.voiceprint_groups.create(name="x")
    assert _code(exc) == 4100

    reader = _client(server, server.token("reader", permissions="listVoiceprintGroup"))
    assert reader.audio.voiceprint_groups.list().total == 0
    with pytest.raises(CozeAPIError) as exc:
        reader.audio.voiceprint_groups.create(name="x")
    assert _code(exc) == 4101
    assert "createVoiceprintGroup" in str(exc.value)


def test_group_deletion_removes_audio_and_embeddings(server: Server) -> None:
    coze = _client(server, server.token("frank"))
    group_id = coze.audio.voiceprint_groups.create(name="temp").id
    before = set(server.audio_files())
    for speaker in SPEAKERS[:2]:
        _enrol(coze, group_id, speaker)
    added = set(server.audio_files()) - before
    assert len(added) == 2
    coze.audio.voiceprint_groups.delete(group_id=group_id)
    assert not any(path.exists() for path in added)

    from sqlalchemy import func, select

    from voiceprint.store.models import Feature, Sample

    with server._db.connect() as conn:
        assert conn.scalar(select(func.count()).where(Feature.group_id == int(group_id))) == 0
        keys = {p.name for p in added}
        assert conn.scalar(select(func.count()).where(Sample.audio_key.in_(keys))) == 0


async def test_async_client(server: Server) -> None:
    coze = AsyncCoze(auth=AsyncTokenAuth(server.token("grace")), base_url=server.url)
    groups = coze.audio.voiceprint_groups
    group_id = (await groups.create(name="async")).id
    with _clip(SPEAKERS[2], 0).open("rb") as f:
        feature_id = (
            await groups.features.create(group_id=group_id, name="voice", file=f.read())
        ).id
    page = await groups.features.list(group_id=group_id)
    assert [f.id for f in page.items] == [feature_id]
    with _clip(SPEAKERS[2], 1).open("rb") as f:
        result = await groups.speaker_identify(group_id=group_id, file=f.read(), top_k="5")
    assert result.feature_score_list[0].feature_id == feature_id
    assert result.feature_score_list[0].score >= 50
    await groups.features.delete(group_id=group_id, feature_id=feature_id)
    await groups.delete(group_id=group_id)
    assert (await groups.list()).total == 0
