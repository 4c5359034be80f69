"""Original audio, complete or absent, removed for good on delete: on local disk (the
default) or in the database, so that servers on several machines share only PostgreSQL.

Both stores keep the same order with the rows that name them: a blob is written
(and durable) before the row that names it commits and deleted after the row's
delete commits, so a crash can leave only a blob no row names, which ``sweep``
removes at the next start; never a row without its audio.
"""

from __future__ import annotations

import os
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from voiceprint.store.models import AudioBlob


class Blobs(ABC):
    @staticmethod
    def new_key() -> str:
        """An unguessable key no blob has yet."""
        return secrets.token_hex(20)

    def put(self, data: bytes) -> str:
        """Store ``data`` under a new key; it appears complete or not at all."""
        key = self.new_key()
        self.put_as(key, data)
        return key

    @abstractmethod
    def put_as(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (a restore keeps the keys of the archive)."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The blob's bytes; ``FileNotFoundError`` when there is none."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the blob if there is one."""

    @abstractmethod
    def sweep(self, referenced: Iterable[str], older_than_s: float = 3600.0) -> int:
        """Remove blobs no row refers to, left by a crash between blob and row writes."""


class BlobStore(Blobs):
    """Files under ``root``, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if len(key) < 8 or not key.isalnum():
            raise ValueError(f"bad blob key {key!r}")
        return self.root / key[:2] / key

    def put_as(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def sweep(self, referenced: Iterable[str], older_than_s: float = 3600.0) -> int:
        keep = set(referenced)
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.root.glob("*/*"):
            if path.name.split(".")[0] not in keep and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


class DatabaseBlobs(Blobs):
    """Rows of ``audio_blobs`` (PostgreSQL: bytea), each written in its own committed
    transaction, as a file is fsynced before its row is written."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def put_as(self, key: str, data: bytes) -> None:
        with self._sessions() as session, session.begin():
            session.add(AudioBlob(key=key, data=data, created_at=int(time.time())))

    def get(self, key: str) -> bytes:
        with self._sessions() as session:
            data = session.scalar(select(AudioBlob.data).where(AudioBlob.key == key))
        if data is None:
            raise FileNotFoundError(f"no stored audio {key}")
        return data

    def delete(self, key: str) -> None:
        with self._sessions() as session, session.begin():
            session.execute(delete(AudioBlob).where(AudioBlob.key == key))

    def sweep(self, referenced: Iterable[str], older_than_s: float = 3600.0) -> int:
        keep = set(referenced)
        cutoff = int(time.time() - older_than_s)
        with self._sessions() as session, session.begin():
            old = session.scalars(select(AudioBlob.key).where(AudioBlob.created_at < cutoff))
            orphans = [key for key in old if key not in keep]
            if orphans:
                session.execute(delete(AudioBlob).where(AudioBlob.key.in_(orphans)))
        return len(orphans)
