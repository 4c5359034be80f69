"""The vault and keyring on a real SQLite database: what is sealed opens only as itself,
under the installation's own master key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from voiceprint.clock import now
from voiceprint.store.blobs import BlobStore
from voiceprint.store.crypto import DamagedData, EncryptionKeyError, MasterKey, generate_key
from voiceprint.store.db import make_engine, make_session_factory, migrate
from voiceprint.store.ids import new_id
from voiceprint.store.keyring import Keyring, rotate
from voiceprint.store.models import Sample, Workspace
from voiceprint.store.vault import Vault


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    migrate(engine)
    yield make_session_factory(engine)
    engine.dispose()


def _workspace(sessions: sessionmaker[Session]) -> int:
    with sessions() as session, session.begin():
        workspace = Workspace(id=new_id(), name=f"w{new_id()}", created_at=now())
        session.add(workspace)
    return workspace.id


def _sample(vault: Vault, workspace_id: int, embedding: np.ndarray) -> Sample:
    sample = Sample(id=new_id())
    vault.fill(sample, b"RIFF recorded speech", embedding, workspace_id)
    return sample


def test_sealed_values_open_only_as_themselves(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    master = MasterKey.parse(generate_key(), "key")
    vault = Vault(BlobStore(tmp_path / "audio"), Keyring.open(sessions, master))
    embedding = np.arange(192, dtype=np.float32) / 7
    first, second = (_sample(vault, _workspace(sessions), embedding) for _ in range(2))
    assert vault.audio(first) == b"RIFF recorded speech"
    np.testing.assert_array_equal(vault.embedding(first), embedding)
    assert embedding.tobytes() not in first.embedding

    moved = Sample(id=second.id, embedding=first.embedding, key_generation=1)
    with pytest.raises(DamagedData, match="embedding of sample"):
        vault.embedding(moved)  # another sample's (and workspace's) embedding
    header = bytearray(first.embedding)
    header[5] ^= 1  # the workspace id in the header
    with pytest.raises(DamagedData):
        vault.embedding(Sample(id=first.id, embedding=bytes(header), key_generation=1))
    with pytest.raises(DamagedData, match="truncated"):
        vault.embedding(Sample(id=first.id, embedding=b"\x01", key_generation=1))


def test_keys_are_checked_and_rotated(sessions: sessionmaker[Session]) -> None:
    old, new = (MasterKey.parse(generate_key(), "key") for _ in range(2))
    keyring = Keyring.open(sessions, old)
    assert keyring is not None
    workspace = _workspace(sessions)
    generation = keyring.current_generation(workspace)
    sealed = keyring.seal(workspace, generation, b"voice", b"ctx")
    assert keyring.new_generation(workspace) == generation + 1

    with pytest.raises(EncryptionKeyError, match="is not the one"):
        rotate(sessions, new, old)
    assert rotate(sessions, old, new) == 2
    with pytest.raises(EncryptionKeyError, match="is not the one"):
        Keyring.open(sessions, old)
    with pytest.raises(EncryptionKeyError, match="are encrypted"):
        Keyring.open(sessions, None)
    reopened = Keyring.open(sessions, new)
    assert reopened is not None and reopened.unseal(sealed, b"ctx", "it") == b"voice"
    # The old server still holds its data keys, but may not add one under the old key.
    with pytest.raises(EncryptionKeyError):
        keyring.current_generation(_workspace(sessions))


def test_malformed_keys_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(EncryptionKeyError, match="exactly 32 bytes"):
        MasterKey.parse("not base64!", "VOICEPRINT_ENCRYPTION_KEY")
    with pytest.raises(EncryptionKeyError, match="cannot read"):
        MasterKey.read_file(tmp_path / "missing.key")
    key = tmp_path / "master.key"
    key.write_text(generate_key() + "\n")
    assert len(MasterKey.read_file(key).id) == 16
