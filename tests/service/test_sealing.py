"""`voiceprint keys encrypt` as a function: samples stored in clear are sealed one by one, a
second run finds nothing to do, and after new data keys everything is re-sealed under them;
the voiceprints still identify their speakers."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from tests.conftest import read_speech, speech_files, wav_bytes
from voiceprint.auth.tokens import authenticate, mint_token
from voiceprint.config import Settings
from voiceprint.service.audit import AuditTrail, unclassified
from voiceprint.service.encryption import new_data_keys, seal_stored, unsealed_samples
from voiceprint.service.factory import Models, build_runtime, open_vault
from voiceprint.service.recordings import AudioUpload
from voiceprint.store.crypto import generate_key
from voiceprint.store.models import Sample


def _recording(speaker: str, index: int) -> AudioUpload:
    return AudioUpload(wav_bytes(*read_speech(speech_files("librispeech", speaker)[index])))


def test_seal_then_reseal_under_new_data_keys(tmp_path: Path, models: Models) -> None:
    clear = build_runtime(Settings(data_dir=tmp_path), models)
    with clear.sessions() as session, session.begin():
        token = mint_token(session, user="alice", workspace="home").token
    with clear.sessions() as session:
        alice = authenticate(session, f"Bearer {token}")
    group = clear.service.create_group(alice, "family", "")
    ids = {
        s: clear.service.create_feature(alice, group, s, "", [_recording(s, 0)]).feature_id
        for s in ("1688", "2033")
    }
    clear.database.dispose()
    files_in_clear = {p.read_bytes() for p in (tmp_path / "audio").glob("*/*")}

    keyed = build_runtime(Settings(data_dir=tmp_path, encryption_key=generate_key()), models)
    sessions = keyed.sessions
    vault = open_vault(keyed.service.settings, sessions)
    trail = AuditTrail(sessions, unclassified)
    assert len(unsealed_samples(sessions)) == 2
    assert seal_stored(sessions, vault, trail).done == 2
    assert unsealed_samples(sessions) == [] and seal_stored(sessions, vault, trail).done == 0
    with sessions() as session:
        assert set(session.scalars(select(Sample.key_generation))) == {1}
    sealed_files = {p.read_bytes() for p in (tmp_path / "audio").glob("*/*")}
    assert len(sealed_files) == 2 and not sealed_files & files_in_clear

    assert vault.keyring is not None
    assert new_data_keys(sessions, vault.keyring) == 1
    assert len(unsealed_samples(sessions)) == 2
    assert seal_stored(sessions, vault, trail).done == 2
    with sessions() as session:
        assert set(session.scalars(select(Sample.key_generation))) == {2}
    assert len(list((tmp_path / "audio").glob("*/*"))) == 2  # the older files are gone

    for speaker, feature_id in ids.items():
        best = keyed.service.identify(alice, group, _recording(speaker, 1), top_k=1).matches[0]
        assert best.feature_id == feature_id and best.is_match
    keyed.database.dispose()
