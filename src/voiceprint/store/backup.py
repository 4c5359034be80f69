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

An archive of an encrypted installation is encrypted as the installation is:
recordings and embeddings sealed with the data keys, which travel wrapped by
the master key (so restoring needs that key). Recordings still stored in clear
are sealed on the way out. Without a key, an archive in clear is written only
when asked for (``plaintext``); ``plaintext`` also decrypts an encrypted one.
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
from voiceprint.store.models import (
    Account,
    Base,
    DataKey,
    Feature,
    Group,
    Sample,
    Token,
    Workspace,
)
from voiceprint.store.vault import Vault

FORMAT = 2
READABLE = (1, 2)  # format 1: before encryption (no data keys, samples in clear)
# Parents before children, so the rows can be inserted in this order.
TABLES: tuple[type[Base], ...] = (Workspace, Account, Token, DataKey, Group, Feature, Sample)


class ArchiveError(ValueError):
    """The archive cannot be restored here; the message says why."""


@dataclass(frozen=True)
class ArchiveSummary:
    rows: dict[str, int]
    audio_files: int
    encrypted: bool

    def __str__(self) -> str:
        rows = ", ".join(f"{n} {table}" for table, n in self.rows.items())
        state = "encrypted" if self.encrypted else "in clear"
        return f"{rows}; {self.audio_files} recordings ({state})"


def _row(model: type[Base], row: Base, **replaced: Any) -> dict[str, Any]:
    data = {c.key: getattr(row, c.key) for c in model.__table__.columns} | replaced
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


def _archived_sample(
    vault: Vault, sample: Sample, workspace_id: int, plaintext: bool
) -> tuple[bytes, dict[str, Any]]:
    """The sample's audio and row as the archive holds them."""
    if plaintext:
        embedding = vault.embedding(sample).tobytes()
        return vault.audio(sample), _row(Sample, sample, embedding=embedding, key_generation=None)
    audio, embedding, generation = vault.sealed(sample, workspace_id)
    return audio, _row(Sample, sample, embedding=embedding, key_generation=generation)


def export_archive(
    sessions: sessionmaker[Session],
    vault: Vault,
    path: Path,
    *,
    with_tokens: bool = False,
    plaintext: bool = False,
) -> ArchiveSummary:
    if not plaintext and not vault.encrypted:
        raise ArchiveError(
            "this installation has no encryption key, so the archive would hold every "
            "recording and embedding in clear; set VOICEPRINT_ENCRYPTION_KEY, or pass "
            "--plaintext and protect the file yourself"
        )
    counts: dict[str, int] = {}
    files = 0
    tmp = path.with_suffix(path.suffix + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with _snapshot(sessions) as session:
            workspace_of = dict(
                session.execute(
                    select(Feature.id, Group.workspace_id).join(Group, Group.id == Feature.group_id)
                ).all()
            )
            sample_rows = []
            for sample in session.scalars(select(Sample).order_by(Sample.id)):
                try:
                    audio, row = _archived_sample(
                        vault, sample, workspace_of[sample.feature_id], plaintext
                    )
                except FileNotFoundError:
                    continue  # deleted after the snapshot began
                archive.writestr(f"audio/{sample.audio_key}", audio, zipfile.ZIP_STORED)
                sample_rows.append(row)
                files += 1
            with_samples = {row["feature_id"] for row in sample_rows}
            for model in TABLES:
                if (model is Token and not with_tokens) or (model is DataKey and plaintext):
                    continue
                if model is Sample:
                    lines = [json.dumps(row) for row in sample_rows]
                else:
                    rows = list(
                        session.scalars(select(model).order_by(*model.__table__.primary_key))
                    )
                    if model is Feature:
                        rows = [f for f in rows if f.id in with_samples]
                    lines = [json.dumps(_row(model, r)) for r in rows]
                archive.writestr(
                    f"tables/{model.__tablename__}.jsonl", "".join(line + "\n" for line in lines)
                )
                counts[model.__tablename__] = len(lines)
        manifest = {
            "format": FORMAT,
            "created_at": now(),
            "rows": counts,
            "audio_files": files,
            "master_key_id": None if plaintext else vault.keyring.master_id,  # type: ignore[union-attr]
        }
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
    tmp.replace(path)
    return ArchiveSummary(counts, files, encrypted=not plaintext)


def _check_key(manifest: dict[str, Any], vault: Vault) -> None:
    key_id = manifest.get("master_key_id")
    if key_id is None:
        return
    configured = vault.keyring.master_id if vault.keyring else None
    if configured != key_id:
        raise ArchiveError(
            f"the archive is encrypted with master key id {key_id}; set "
            "VOICEPRINT_ENCRYPTION_KEY to that key to restore it"
            + (f" (the configured key's id is {configured})" if configured else "")
        )


def import_archive(sessions: sessionmaker[Session], vault: Vault, path: Path) -> ArchiveSummary:
    blobs = vault.blobs
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        if manifest.get("format") not in READABLE:
            raise ArchiveError(
                f"archive format {manifest.get('format')!r}; this version reads {READABLE}"
            )
        _check_key(manifest, vault)
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
    return ArchiveSummary(
        {m.__tablename__: len(r) for m, r in tables.items()},
        len(written),
        encrypted=manifest.get("master_key_id") is not None,
    )
