"""The embedding index: identify answers exactly as a server without it, and sees every
change made by another server on the same database (SQLite and PostgreSQL) at its next
request; deletes leave its memory at once; the memory bound drops the least recent group."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.api.conftest import postgres_database
from tests.conftest import read_speech, speech_files, wav_bytes
from tests.service import caller
from voiceprint.auth.tokens import Principal
from voiceprint.config import Settings
from voiceprint.scoring.ranking import Recognition
from voiceprint.service.factory import Models, Runtime, build_runtime, open_vault
from voiceprint.service.index import EmbeddingIndex
from voiceprint.service.recordings import AudioUpload
from voiceprint.store.crypto import generate_key
from voiceprint.store.models import Group

SPEAKERS = ("1688", "2033", "3080", "533")
KEY = generate_key()


def _recording(speaker: str, index: int) -> AudioUpload:
    wave, rate = read_speech(speech_files("librispeech", speaker)[index])
    return AudioUpload(wav_bytes(wave[: 4 * rate], rate))


@pytest.fixture(params=["sqlite", "postgresql"])
def servers(
    request: pytest.FixtureRequest, tmp_path: Path, models: Models
) -> Iterator[tuple[Runtime, Runtime]]:
    """Two servers on one database (embeddings sealed at rest): the first with the index,
    the second without."""
    urls = iter([None]) if request.param == "sqlite" else postgres_database()
    for url in urls:
        built = [
            build_runtime(
                Settings(
                    data_dir=tmp_path,
                    database_url=url,
                    encryption_key=KEY,
                    max_features_per_group=20,
                    index_max_mb=index_max_mb,
                ),
                models,
            )
            for index_max_mb in (64, 0)
        ]
        yield built[0], built[1]
        for runtime in built:
            runtime.database.dispose()


def _same_answer(indexed: Runtime, plain: Runtime, alice: Principal, group: int) -> Recognition:
    """Identify on both servers; the answers (ids, names, scores, order) are identical."""
    probe = _recording("2033", 3)
    answer = indexed.service.identify(alice, group, probe, top_k=None)
    assert answer == plain.service.identify(alice, group, probe, top_k=None)
    return answer


def test_identify_with_the_index_answers_as_without_and_sees_other_servers_changes(
    servers: tuple[Runtime, Runtime],
) -> None:
    indexed, other = servers
    alice = caller(indexed)
    group = indexed.service.create_group(alice, "staff", "")
    ids = {
        s: other.service.create_feature(alice, group, f"p{s}", "", [_recording(s, 0)]).feature_id
        for s in SPEAKERS
    }
    first = _same_answer(indexed, other, alice, group)
    assert indexed.service.index.groups() == [group]
    assert first.matches[0].feature_id == ids["2033"] and first.matches[0].is_match
    assert len(first.matches) == len(SPEAKERS)

    # Changes through the other server, each seen by the next identify.
    other.service.update_feature(alice, group, ids["2033"], "renamed", "d", [])
    assert _same_answer(indexed, other, alice, group).matches[0].name == "renamed"
    other.service.add_samples(alice, group, ids["3080"], [_recording("3080", 1)])
    after_adding = _same_answer(indexed, other, alice, group)
    assert after_adding.matches != first.matches
    other.service.delete_feature(alice, group, ids["2033"])
    after_delete = _same_answer(indexed, other, alice, group)
    assert ids["2033"] not in {m.feature_id for m in after_delete.matches}
    assert not after_delete.matches[0].is_match and len(after_delete.matches) == 3
    again = other.service.create_feature(
        alice, group, "back", "", [_recording("2033", 1)]
    ).feature_id
    back = _same_answer(indexed, other, alice, group)
    assert back.matches[0].feature_id == again and back.matches[0].is_match

    # This server's own changes, also seen by the server without an index.
    indexed.service.update_feature(alice, group, again, None, None, [_recording("2033", 2)])
    _same_answer(indexed, other, alice, group)
    held = indexed.service.index.nbytes
    indexed.service.delete_feature(alice, group, again)
    assert indexed.service.index.nbytes < held  # gone from memory before any identify
    assert again not in {m.feature_id for m in _same_answer(indexed, other, alice, group).matches}

    # A group deleted elsewhere leaves this server's memory at its next identify.
    second = indexed.service.create_group(alice, "visitors", "")
    indexed.service.create_feature(alice, second, "v", "", [_recording("1688", 1)])
    _same_answer(indexed, other, alice, second)
    assert set(indexed.service.index.groups()) == {group, second}
    other.service.delete_group(alice, group)
    _same_answer(indexed, other, alice, second)
    assert indexed.service.index.groups() == [second]


def test_the_memory_bound_drops_the_least_recently_used_group(
    tmp_path: Path, models: Models
) -> None:
    runtime = build_runtime(Settings(data_dir=tmp_path), models)
    alice = caller(runtime)
    groups = [runtime.service.create_group(alice, name, "") for name in ("a", "b", "c")]
    for group, speaker in zip(groups, SPEAKERS, strict=False):
        runtime.service.create_feature(alice, group, speaker, "", [_recording(speaker, 0)])
    vault = open_vault(runtime.service.settings, runtime.sessions)

    def held_after(bound: int, uses: list[int]) -> list[int]:
        index = EmbeddingIndex(models.scorer, vault, models.voice.model_id, bound)
        with runtime.sessions() as session:
            for group in uses:
                feature_ids, gallery = index.enrolled(session, session.get_one(Group, group))
                assert len(feature_ids) == len(gallery) == 1
        return index.groups()

    assert held_after(2**20, groups) == groups
    one = EmbeddingIndex(models.scorer, vault, models.voice.model_id, 2**20)
    with runtime.sessions() as session:
        one.enrolled(session, session.get_one(Group, groups[0]))
    # Room for two: b, the least recently used, is dropped when c comes.
    assert held_after(2 * one.nbytes, [groups[0], groups[1], groups[0], groups[2]]) == [
        groups[0],
        groups[2],
    ]
    assert held_after(one.nbytes - 1, groups) == []  # a group larger than the bound: not held
    runtime.database.dispose()


@pytest.fixture
def slow_reads(tmp_path: Path, models: Models) -> Iterator[tuple[Runtime, EmbeddingIndex, dict]]:
    """An index whose first read of a group can be held open: ``hold(group)`` makes the
    read of that group wait, after reading, until ``release`` is set."""
    runtime = build_runtime(Settings(data_dir=tmp_path), models)
    vault = open_vault(runtime.service.settings, runtime.sessions)
    index = EmbeddingIndex(models.scorer, vault, models.voice.model_id, 2**20)
    control = {"held": None, "reading": threading.Event(), "release": threading.Event()}
    load = index._load

    def held_load(session, group_id: int, generation: int):  # type: ignore[no-untyped-def]
        entry = load(session, group_id, generation)
        if group_id == control["held"]:
            control["reading"].set()
            control["release"].wait(timeout=60)
        return entry

    index._load = held_load  # type: ignore[method-assign]
    yield runtime, index, control
    control["release"].set()
    runtime.database.dispose()


def _in_thread(runtime: Runtime, index: EmbeddingIndex, group: int, answers: dict) -> Callable:
    def enrolled() -> None:
        with runtime.sessions() as session:
            answers[group] = list(index.enrolled(session, session.get_one(Group, group))[0])

    thread = threading.Thread(target=enrolled)
    thread.start()
    return thread.join


def test_a_group_being_read_keeps_no_other_group_waiting(slow_reads: tuple) -> None:
    runtime, index, control = slow_reads
    alice = caller(runtime)
    groups = [runtime.service.create_group(alice, name, "") for name in ("large", "small")]
    ids = [
        runtime.service.create_feature(
            alice, group, speaker, "", [_recording(speaker, 0)]
        ).feature_id
        for group, speaker in zip(groups, SPEAKERS, strict=False)
    ]
    control["held"] = groups[0]
    answers: dict[int, list[int]] = {}
    finish_large = _in_thread(runtime, index, groups[0], answers)
    assert control["reading"].wait(timeout=60)
    # The small group is answered while the large one is still being read.
    _in_thread(runtime, index, groups[1], answers)(timeout=60)
    assert answers == {groups[1]: [ids[1]]}
    control["release"].set()
    finish_large(timeout=60)
    assert answers[groups[0]] == [ids[0]]
    assert set(index.groups()) == set(groups)


def test_a_read_overtaken_by_a_delete_is_not_kept(slow_reads: tuple) -> None:
    runtime, index, control = slow_reads
    alice = caller(runtime)
    group = runtime.service.create_group(alice, "staff", "")
    feature = runtime.service.create_feature(
        alice, group, "p", "", [_recording("1688", 0)]
    ).feature_id
    control["held"] = group
    answers: dict[int, list[int]] = {}
    finish = _in_thread(runtime, index, group, answers)
    assert control["reading"].wait(timeout=60)
    index.forget(group, [feature])  # the voiceprint is deleted while the read is open
    control["release"].set()
    finish(timeout=60)
    assert index.groups() == []  # its vector did not stay in memory
