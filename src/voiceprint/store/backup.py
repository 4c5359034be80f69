"""Backup and restore: the whole installation in one zip archive, between any two databases.

``export_archive`` reads every table in one snapshot (a read transaction on
SQLite, REPEATABLE READ on PostgreSQL), so an archive made while the server runs
is consistent; it holds one JSON-lines file per table and every original
recording under ``audio/``. A recording whose file vanished after the snapshot
(its voiceprint was being deleted) leaves its sample out, and a voiceprint left
without samples is left out too: the archive is then as of a moment later.
Tokens (their hashes) are included only when asked; the signing secret of
audio links never is. ``import_archive`` restores into an empty database in one
transaction, writing the audio first and removing it again if that fails.
"""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from voiceprint.clock import now
from voiceprint.store.blobs import BlobStore
from voiceprint.store.models import Account, Base, Feature, Group, Sample, Token, Workspace

FORMAT = 1
# Parents before children, so the rows can be inserted in this order.
TABLES: tuple[type[Base], ...] = (Workspace, Account, Token, Group, Feature, Sample)


class ArchiveError(ValueError):
    """The archive cannot be restored here; the message says why."""


@dataclass(frozen=True)
class ArchiveSummary:
    rows: dict[str, int]
    audio_files: int

    def __str__(self) -> str:
        rows = ", ".join(f"{n} {table}" for table, n in self.rows.items())
        return f"{rows}; {self.audio_files} recordings"


def _row(model: type[Base], row: Base) -> dict[str, Any]:
    data = {c.key: getattr(row, c.key) for c in model.__table__.columns}
    return {
        k: {"b64": base64.b64encode(v).decode()} if isinstance(v, bytes) else v
        for k, v in data.items()
    }


def _unrow(data: dict[str, Any]) -> dict[str, Any]:
    return {
        k: base64.b64decode(v["b64"]) if isinstance(v, dict) and "b64" in v else v
        for k, v in data.items()
    }


@contextmanager
def _snapshot(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        with session.begin():
            yield session


def export_archive(
    sessions: sessionmaker[Session], blobs: BlobStore, path: Path, *, with_tokens: bool = False
) -> ArchiveSummary:
    counts: dict[str, int] = {}
    files = 0
    tmp = path.with_suffix(path.suffix + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with _snapshot(sessions) as session:
            samples = list(session.scalars(select(Sample).order_by(Sample.id)))
            kept_samples = []
            for sample in samples:
                try:
                    audio = blobs.get(sample.audio_key)
                except FileNotFoundError:
                    continue  # deleted after the snapshot began
                archive.writestr(f"audio/{sample.audio_key}", audio, zipfile.ZIP_STORED)
                kept_samples.append(sample)
                files += 1
            with_samples = {s.feature_id for s in kept_samples}
            for model in TABLES:
                if model is Token and not with_tokens:
                    continue
                if model is Sample:
                    rows = kept_samples
                else:
                    rows = list(session.scalars(select(model).order_by(model.id)))  # type: ignore[attr-defined]
                if model is Feature:
                    rows = [f for f in rows if f.id in with_samples]
                lines = "".join(json.dumps(_row(model, r)) + "\n" for r in rows)
                archive.writestr(f"tables/{model.__tablename__}.jsonl", lines)
                counts[model.__tablename__] = len(rows)
        manifest = {"format": FORMAT, "created_at": now(), "rows": counts, "audio_files": files}
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
    tmp.replace(path)
    return ArchiveSummary(counts, files)


def import_archive(sessions: sessionmaker[Session], blobs: BlobStore, path: Path) -> ArchiveSummary:
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        if manifest.get("format") != FORMAT:
            raise ArchiveError(
                f"archive format {manifest.get('format')!r}; this version reads {FORMAT}"
            )
        with sessions() as session:
            if session.scalar(select(func.count()).select_from(Workspace)):
                raise ArchiveError("the database is not empty; restore into a new database")
        tables = {
            model: [
                _unrow(json.loads(line))
                for line in archive.read(f"tables/{model.__tablename__}.jsonl")
                .decode()
                .splitlines()
            ]
            for model in TABLES
            if f"tables/{model.__tablename__}.jsonl" in archive.namelist()
        }
        written: list[str] = []
        try:
            for row in tables.get(Sample, []):
                blobs.put_as(row["audio_key"], archive.read(f"audio/{row['audio_key']}"))
                written.append(row["audio_key"])
            with sessions() as session, session.begin():
                for model, rows in tables.items():
                    if rows:
                        session.execute(insert(model.__table__), rows)
        except BaseException:
            for key in written:
                blobs.delete(key)
            raise
    return ArchiveSummary({m.__tablename__: len(r) for m, r in tables.items()}, len(written))
