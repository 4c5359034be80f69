"""Database tables. One schema for SQLite and PostgreSQL; Alembic migrations create it.

Ids are time-ordered 64-bit integers (see ``ids.py``), timestamps Unix seconds.
Embeddings are little-endian float32 bytes, each with the id of the model
that made it, so a model change is detected and ``voiceprint reembed`` can
recompute them from the stored recordings. With an encryption key set, a
sample's embedding and audio file are sealed (``vault.py``) with its
workspace's data key of generation ``key_generation`` (None: in clear).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (Index("ix_accounts_workspace_name", "workspace_id", "name", unique=True),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[int] = mapped_column(BigInteger)

    workspace: Mapped[Workspace] = relationship()


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    permissions: Mapped[str] = mapped_column(Text)  # "all" or comma-separated Coze names
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    account: Mapped[Account] = relationship()


class Group(Base):
    __tablename__ = "voiceprint_groups"
    __table_args__ = (Index("ix_groups_workspace_created", "workspace_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    creator_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    # Raised by every change to the group's voiceprints (``service.index``).
    generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    creator: Mapped[Account] = relationship()


class Feature(Base):
    """A voiceprint: one person's voice, from one or more samples."""

    __tablename__ = "voiceprint_features"
    __table_args__ = (
        Index("ix_features_group_created", "group_id", "created_at", "id"),
        Index("ix_features_group_revision", "group_id", "revision"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    group_id: Mapped[int] = mapped_column(ForeignKey("voiceprint_groups.id", ondelete="CASCADE"))
    creator_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    # The last identify or verify that matched it (retention counts from here).
    last_used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The group's generation when this voiceprint last changed.
    revision: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    creator: Mapped[Account] = relationship()
    samples: Mapped[list[Sample]] = relationship(
        order_by="Sample.id", cascade="all, delete-orphan", passive_deletes=True
    )


class Sample(Base):
    """One enrolment recording of a voiceprint: its stored audio and its embedding."""

    __tablename__ = "voiceprint_samples"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    feature_id: Mapped[int] = mapped_column(
        ForeignKey("voiceprint_features.id", ondelete="CASCADE"), index=True
    )
    audio_key: Mapped[str] = mapped_column(String(80))
    audio_format: Mapped[str] = mapped_column(String(8))
    # As sent: what raw PCM needs to be decoded again (None: stored before revision 0002).
    source_rate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source_channels: Mapped[int | None] = mapped_column(Integer, nullable=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    model_id: Mapped[str] = mapped_column(String(64), index=True)
    speech_seconds: Mapped[float] = mapped_column(Float)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Which revision of the analysis measured ``quality`` (engine.QUALITY_REVISION; rows
    # stored before revision 0006 hold 1), so ``reembed`` can measure older ones again.
    quality_revision: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[int] = mapped_column(BigInteger)
    key_generation: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AudioBlob(Base):
    """A stored recording, with ``VOICEPRINT_BLOB_STORE=database`` (``blobs.DatabaseBlobs``);
    named by a sample's ``audio_key``, written before the sample and deleted after it."""

    __tablename__ = "audio_blobs"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)


class ServerSecret(Base):
    """Secrets shared by every server process of one installation (e.g. URL signing)."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class DataKey(Base):
    """A workspace's data key, wrapped by the master key; a re-encryption adds a generation."""

    __tablename__ = "data_keys"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(BigInteger)


class AuditEvent(Base):
    """One operation on biometric data: who, on what, with what result. Never updated.

    No foreign keys: the record outlives the voiceprints, groups and tokens it names.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_workspace_at", "workspace_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    token_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    account_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    workspace_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    operation: Mapped[str] = mapped_column(String(32))
    group_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    feature_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    result_code: Mapped[int] = mapped_column(Integer)
    logid: Mapped[str] = mapped_column(String(64))
