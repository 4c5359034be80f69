"""Each workspace's data keys, unwrapped by the master key and held in memory.

The installation records the id of its master key (``server_secrets``), so a
server started with another key, or with none, is refused before it reads
anything. All data keys are unwrapped at start: a server keeps serving while
``rotate`` rewraps them under a new master key (it needs the new key only at
its next start). A sealed value begins with a header naming the workspace and
key generation that sealed it, so reading needs no lookup of its owner.
"""

from __future__ import annotations

import secrets
import struct
import threading

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from voiceprint.clock import now
from voiceprint.config import Settings
from voiceprint.store.crypto import (
    KEY_BYTES,
    DamagedData,
    EncryptionKeyError,
    MasterKey,
    seal,
    unseal,
)
from voiceprint.store.models import DataKey, ServerSecret

KEY_ID = "encryption_key_id"
# format version, workspace id, data key generation
_HEADER = struct.Struct(">BqI")
_FORMAT = 1


def configured_master_key(settings: Settings) -> MasterKey | None:
    if settings.encryption_key is not None and settings.encryption_key_file is not None:
        raise EncryptionKeyError(
            "set VOICEPRINT_ENCRYPTION_KEY or VOICEPRINT_ENCRYPTION_KEY_FILE, not both"
        )
    if settings.encryption_key is not None:
        return MasterKey.parse(
            settings.encryption_key.get_secret_value(), "VOICEPRINT_ENCRYPTION_KEY"
        )
    if settings.encryption_key_file is not None:
        return MasterKey.read_file(settings.encryption_key_file)
    return None


def installation_key_id(session: Session) -> str | None:
    row = session.get(ServerSecret, KEY_ID)
    return row.value if row is not None else None


def _wrap_context(workspace_id: int, generation: int) -> bytes:
    return b"data key:" + _HEADER.pack(_FORMAT, workspace_id, generation)


def _mismatch(configured: MasterKey, stored_id: str) -> EncryptionKeyError:
    return EncryptionKeyError(
        f"the configured master key (id {configured.id}) is not the one this installation's "
        f"recordings and voiceprints are encrypted with (id {stored_id}); after "
        "`voiceprint keys rotate`, start with the new key"
    )


class Keyring:
    def __init__(self, sessions: sessionmaker[Session], master: MasterKey) -> None:
        self._sessions = sessions
        self._master = master
        self._keys: dict[tuple[int, int], AESGCM] = {}
        self._current: dict[int, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, sessions: sessionmaker[Session], master: MasterKey | None) -> Keyring | None:
        """The installation's keyring, or None when it stores in clear; refuses a wrong or
        missing key (``EncryptionKeyError``) before anything is read."""
        with sessions() as session:
            stored = installation_key_id(session)
        if master is None:
            if stored is not None:
                raise EncryptionKeyError(
                    f"this installation's recordings and voiceprints are encrypted (master key "
                    f"id {stored}); set VOICEPRINT_ENCRYPTION_KEY or "
                    "VOICEPRINT_ENCRYPTION_KEY_FILE to that key"
                )
            return None
        if stored is None:
            with sessions() as session:
                session.add(ServerSecret(name=KEY_ID, value=master.id))
                try:
                    session.commit()
                except IntegrityError:  # another process recorded its key first
                    session.rollback()
                stored = installation_key_id(session)
        if stored != master.id:
            raise _mismatch(master, stored or "none")
        keyring = cls(sessions, master)
        keyring._load_all()
        return keyring

    @property
    def master_id(self) -> str:
        return self._master.id

    def _load_all(self) -> None:
        with self._sessions() as session:
            for row in session.scalars(select(DataKey)):
                self._remember(row)

    def _remember(self, row: DataKey) -> None:
        context = _wrap_context(row.workspace_id, row.generation)
        key = AESGCM(self._master.unwrap(row.wrapped, context))
        with self._lock:
            self._keys[(row.workspace_id, row.generation)] = key
            if row.generation > self._current.get(row.workspace_id, 0):
                self._current[row.workspace_id] = row.generation

    def current_generation(self, workspace_id: int) -> int:
        """The generation new data of the workspace is sealed with (made on first use)."""
        generation = self._current.get(workspace_id)
        if generation is None:
            generation = self._load_or_create(workspace_id, create_after=0)
        return generation

    def new_generation(self, workspace_id: int) -> int:
        """Give the workspace a fresh data key (for a full re-encryption)."""
        return self._load_or_create(
            workspace_id, create_after=self.current_generation(workspace_id)
        )

    def _load_or_create(self, workspace_id: int, create_after: int) -> int:
        with self._sessions() as session, session.begin():
            newest = session.scalar(
                select(func.max(DataKey.generation)).where(DataKey.workspace_id == workspace_id)
            )
            if newest is None or newest <= create_after:
                generation = create_after + 1
                row = DataKey(
                    workspace_id=workspace_id,
                    generation=generation,
                    wrapped=self._master.wrap(
                        secrets.token_bytes(KEY_BYTES), _wrap_context(workspace_id, generation)
                    ),
                    created_at=now(),
                )
                session.add(row)
                session.flush()
                # Read after the write: the row lock (PostgreSQL) or write lock (SQLite) makes
                # a concurrent rotation finish first, and then this key is refused.
                stored = session.scalar(
                    select(ServerSecret.value).where(ServerSecret.name == KEY_ID).with_for_update()
                )
                if stored != self._master.id:
                    raise _mismatch(self._master, stored or "none")
            else:
                row = session.get_one(DataKey, (workspace_id, newest))
        self._remember(row)
        return row.generation

    def _key(self, workspace_id: int, generation: int) -> AESGCM:
        key = self._keys.get((workspace_id, generation))
        if key is None:
            with self._sessions() as session:
                row = session.get(DataKey, (workspace_id, generation))
            if row is None:
                raise DamagedData(
                    f"sealed data names data key {generation} of workspace {workspace_id}, "
                    "which does not exist"
                )
            self._remember(row)
            key = self._keys[(workspace_id, generation)]
        return key

    def seal(self, workspace_id: int, generation: int, plain: bytes, context: bytes) -> bytes:
        header = _HEADER.pack(_FORMAT, workspace_id, generation)
        return header + seal(self._key(workspace_id, generation), plain, header + context)

    def unseal(self, sealed: bytes, context: bytes, what: str) -> bytes:
        if len(sealed) < _HEADER.size:
            raise DamagedData(f"{what} is truncated")
        header = sealed[: _HEADER.size]
        version, workspace_id, generation = _HEADER.unpack(header)
        if version != _FORMAT:
            raise DamagedData(f"{what} has an unknown format ({version})")
        key = self._key(workspace_id, generation)
        return unseal(key, sealed[_HEADER.size :], header + context, what)

    def reseal(self, sealed: bytes, plain: bytes, context: bytes) -> bytes:
        """``plain`` sealed with the same workspace key as ``sealed`` (re-embedding)."""
        _, workspace_id, generation = _HEADER.unpack(sealed[: _HEADER.size])
        return self.seal(workspace_id, generation, plain, context)


def rotate(sessions: sessionmaker[Session], old: MasterKey, new: MasterKey) -> int:
    """Rewrap every data key under ``new`` in one transaction; the number rewrapped."""
    with sessions() as session, session.begin():
        marker = session.get(ServerSecret, KEY_ID, with_for_update=True)
        if marker is None:
            raise EncryptionKeyError(
                "this installation is not encrypted yet; set the key and run "
                "`voiceprint keys encrypt` instead"
            )
        if marker.value != old.id:
            raise _mismatch(old, marker.value)
        rows = list(session.scalars(select(DataKey).with_for_update()))
        for row in rows:
            context = _wrap_context(row.workspace_id, row.generation)
            row.wrapped = new.wrap(old.unwrap(row.wrapped, context), context)
        marker.value = new.id
    return len(rows)
