"""The service layer called directly, as the routes call it: real SQLite, models and speech."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import read_speech, speech_files, wav_bytes
from tests.service import caller
from voiceprint.audio.errors import NotEnoughSpeech
from voiceprint.config import Settings
from voiceprint.service.errors import (
    FeatureQuotaExceeded,
    NotFound,
    PermissionDenied,
)
from voiceprint.service.factory import Models, Runtime, build_runtime
from voiceprint.service.recordings import AudioUpload
from voiceprint.service.views import Page

SPEAKERS = ("1688", "2033", "3080")


@pytest.fixture
def runtime(tmp_path: Path, models: Models) -> Iterator[Runtime]:
    settings = Settings(data_dir=tmp_path, max_features_per_group=3)
    built = build_runtime(settings, models)
    yield built
    built.database.dispose()


def _recording(speaker: str, index: int) -> AudioUpload:
    samples, rate = read_speech(speech_files("librispeech", speaker)[index])
    return AudioUpload(wav_bytes(samples, rate))


def _audio_files(runtime: Runtime) -> list[Path]:
    return [p for p in runtime.service.settings.audio_dir.glob("*/*") if p.is_file()]


def test_enrol_then_identify_and_verify_the_right_person(runtime: Runtime) -> None:
    service = runtime.service
    alice = caller(runtime, "alice", "home")
    group = service.create_group(alice, "family", "")
    ids = {
        s: service.create_feature(alice, group, f"p{s}", "", [_recording(s, 0)]).feature_id
        for s in SPEAKERS
    }
    for speaker in SPEAKERS:
        matches = service.identify(alice, group, _recording(speaker, 1), top_k=None).matches
        assert matches[0].feature_id == ids[speaker]
        assert matches[0].is_match and not any(m.is_match for m in matches[1:])
        assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    assert len(service.identify(alice, group, _recording("1688", 2), top_k=1).matches) == 1

    (same,) = service.verify(alice, group, ids["2033"], _recording("2033", 2)).matches
    (other,) = service.verify(alice, group, ids["2033"], _recording("3080", 2)).matches
    assert same.is_match and same.score >= 50
    assert not other.is_match and other.score < 50

    features, total = service.list_features(alice, group, Page(1, 10))
    assert total == 3 and {f.id for f in features} == set(ids.values())
    assert all(f.samples[0].speech_seconds > 1 for f in features)


def test_refused_enrolment_leaves_nothing_behind(runtime: Runtime) -> None:
    service = runtime.service
    alice = caller(runtime, "alice", "home")
    group = service.create_group(alice, "family", "")
    silence = AudioUpload(wav_bytes(np.zeros(3 * 16000, dtype=np.float32), 16000))
    with pytest.raises(NotEnoughSpeech, match="needed for enrolment"):
        service.create_feature(alice, group, "nobody", "", [_recording("1688", 0), silence])
    assert service.list_features(alice, group, Page(1, 10)) == ([], 0)
    assert _audio_files(runtime) == []


def test_quota_holds_and_deleting_frees_a_place_and_the_audio(runtime: Runtime) -> None:
    service = runtime.service
    alice = caller(runtime, "alice", "home")
    group = service.create_group(alice, "family", "")
    ids = [
        service.create_feature(alice, group, s, "", [_recording(s, 0)]).feature_id for s in SPEAKERS
    ]
    with pytest.raises(FeatureQuotaExceeded, match="already has 3 voiceprints"):
        service.create_feature(alice, group, "one more", "", [_recording("533", 0)])
    assert len(_audio_files(runtime)) == 3

    service.delete_feature(alice, group, ids[0])
    assert len(_audio_files(runtime)) == 2
    with pytest.raises(NotFound):
        service.feature_audio(alice, group, ids[0])
    service.create_feature(alice, group, "533", "", [_recording("533", 0)])

    service.delete_group(alice, group)
    assert _audio_files(runtime) == []
    with pytest.raises(NotFound):
        service.list_features(alice, group, Page(1, 10))


def test_other_workspaces_see_nothing_and_only_creators_edit(runtime: Runtime) -> None:
    service = runtime.service
    alice = caller(runtime, "alice", "home")
    bob = caller(runtime, "bob", "home")  # same workspace, not the creator
    mallory = caller(runtime, "mallory", "elsewhere")
    reader = caller(runtime, "rita", "home", permissions="listVoiceprintGroup")
    group = service.create_group(alice, "family", "")
    feature = service.create_feature(alice, group, "alice", "", [_recording("1688", 0)]).feature_id

    assert service.feature_audio(bob, group, feature).data[:4] == b"RIFF"
    with pytest.raises(PermissionDenied, match="only the creator"):
        service.update_group(bob, group, "renamed", None)
    with pytest.raises(PermissionDenied, match="only the creator"):
        service.delete_feature(bob, group, feature)

    for call in (
        lambda: service.update_group(mallory, group, "x", None),
        lambda: service.list_features(mallory, group, Page(1, 10)),
        lambda: service.feature_audio(mallory, group, feature),
        lambda: service.identify(mallory, group, _recording("1688", 1), None),
    ):
        with pytest.raises(NotFound, match=f"group {group} does not exist"):
            call()
    assert service.list_groups(mallory, Page(1, 10)) == ([], 0)

    assert service.list_groups(reader, Page(1, 10))[1] == 1
    with pytest.raises(PermissionDenied, match="lacks the 'createVoiceprintGroup' permission"):
        service.create_group(reader, "mine", "")
    with pytest.raises(PermissionDenied, match="identifyInVoiceprintGroup"):
        service.identify(reader, group, _recording("1688", 1), None)


def test_replacing_the_audio_replaces_every_sample_and_file(runtime: Runtime) -> None:
    service = runtime.service
    alice = caller(runtime, "alice", "home")
    group = service.create_group(alice, "family", "")
    feature = service.create_feature(alice, group, "x", "", [_recording("1688", 0)]).feature_id
    assert len(service.add_samples(alice, group, feature, [_recording("1688", 1)]).samples) == 2
    before = set(_audio_files(runtime))
    service.update_feature(alice, group, feature, "renamed", None, [_recording("2033", 0)])
    (view,), _ = service.list_features(alice, group, Page(1, 10))
    assert view.name == "renamed" and len(view.samples) == 1
    after = set(_audio_files(runtime))
    assert len(after) == 1 and not after & before
    assert service.identify(alice, group, _recording("2033", 1), None).matches[0].is_match
