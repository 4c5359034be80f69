"""Original audio on local disk, written atomically and removed for good on delete."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if len(key) < 8 or not key.isalnum():
            raise ValueError(f"bad blob key {key!r}")
        return self.root / key[:2] / key

    @staticmethod
    def new_key() -> str:
        """An unguessable key no file has yet."""
        return secrets.token_hex(20)

    def put(self, data: bytes) -> str:
        """Store ``data`` under a new key; the file appears complete or not at all."""
        key = self.new_key()
        self.put_as(key, data)
        return key

    def put_as(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (a restore keeps the keys of the archive)."""
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
        """Remove files no row refers to, left by a crash between disk and database writes."""
        keep = set(referenced)
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.root.glob("*/*"):
            if path.name.split(".")[0] not in keep and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
