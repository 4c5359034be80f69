"""Retention: a match in identify or verify marks a voiceprint used, and with
VOICEPRINT_EXPIRE_UNUSED_DAYS the voiceprints unused that long are deleted as a delete does
(audio, embedding and all), each with its audit row. The clock is moved, not waited for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import read_speech, speech_files, wav_bytes
from tests.service import caller
from voiceprint.clock import now
from voiceprint.config import Settings
from voiceprint.service import voiceprints
from voiceprint.service.factory import Models, Runtime, build_runtime
from voiceprint.service.recordings import AudioUpload
from voiceprint.store.crypto import generate_key
from voiceprint.store.models import AuditEvent, Feature, Sample

DAY = 86400


@pytest.fixture
def runtime(tmp_path: Path, models: Models) -> Iterator[Runtime]:
    settings = Settings(data_dir=tmp_path, expire_unused_days=30, encryption_key=generate_key())
    built = build_runtime(settings, models)
    yield built
    built.database.dispose()


def _recording(speaker: str, index: int) -> AudioUpload:
    return AudioUpload(wav_bytes(*read_speech(speech_files("librispeech", speaker)[index])))


def test_voiceprints_unused_for_the_set_days_are_deleted(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = runtime.service
    alice = caller(runtime)
    group = service.create_group(alice, "family", "")
    enrolled_at = now()
    ids = {
        s: service.create_feature(alice, group, s, "", [_recording(s, 0)]).feature_id
        for s in ("1688", "2033", "3080")
    }
    audio_dir = service.settings.audio_dir
    assert len(list(audio_dir.glob("*/*"))) == 3

    # Twenty days on, 1688 is identified and 2033 verified; 3080 is not matched.
    monkeypatch.setattr(voiceprints, "now", lambda: enrolled_at + 20 * DAY)
    assert service.identify(alice, group, _recording("1688", 1), top_k=1).matches[0].is_match
    assert service.verify(alice, group, ids["2033"], _recording("2033", 1)).matches[0].is_match
    assert not service.verify(alice, group, ids["1688"], _recording("3080", 1)).matches[0].is_match
    with runtime.sessions() as session:
        used = dict(session.execute(select(Feature.id, Feature.last_used_at)).all())
    assert used == {
        ids["1688"]: enrolled_at + 20 * DAY,
        ids["2033"]: enrolled_at + 20 * DAY,
        ids["3080"]: None,
    }

    assert service.expire_unused(at=enrolled_at + 29 * DAY) == 0
    assert service.expire_unused(at=enrolled_at + 31 * DAY) == 1  # 3080: enrolled, never used
    assert service.expire_unused(at=enrolled_at + 31 * DAY) == 0
    with runtime.sessions() as session:
        assert set(session.scalars(select(Feature.id))) == {ids["1688"], ids["2033"]}
        assert session.scalar(select(Sample).where(Sample.feature_id == ids["3080"])) is None
    assert len(list(audio_dir.glob("*/*"))) == 2
    assert service.expire_unused(at=enrolled_at + 51 * DAY) == 2
    assert list(audio_dir.glob("*/*")) == []
    assert service.identify(alice, group, _recording("1688", 2), top_k=1).matches == []

    with runtime.sessions() as session:
        expired = list(session.scalars(select(AuditEvent).where(AuditEvent.operation == "expire")))
    assert sorted(e.feature_id for e in expired) == sorted(ids.values())
    assert all(
        e.result_code == 0 and e.group_id == group and e.workspace_id == alice.workspace_id
        for e in expired
    )


def test_off_by_default(runtime: Runtime, models: Models) -> None:
    service = runtime.service
    alice = caller(runtime)
    group = service.create_group(alice, "family", "")
    service.create_feature(alice, group, "a", "", [_recording("1688", 0)])
    settings = Settings(
        data_dir=service.settings.data_dir, encryption_key=service.settings.encryption_key
    )
    off = build_runtime(settings, models)
    try:
        assert off.service.settings.expire_unused_days == 0
        assert off.service.expire_unused(at=now() + 10_000 * DAY) == 0
    finally:
        off.database.dispose()
