"""Initial schema: workspaces, accounts, tokens, groups, voiceprints and their samples.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False)


def _fk(name: str, target: str, **kwargs: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), sa.ForeignKey(target, **kwargs), nullable=False)


def upgrade() -> None:
    op.create_table(
        "workspaces",
        _id(),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "accounts",
        _id(),
        _fk("workspace_id", "workspaces.id", ondelete="CASCADE"),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_accounts_workspace_name", "accounts", ["workspace_id", "name"], unique=True)
    op.create_table(
        "tokens",
        _id(),
        _fk("account_id", "accounts.id", ondelete="CASCADE"),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("permissions", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "voiceprint_groups",
        _id(),
        _fk("workspace_id", "workspaces.id", ondelete="CASCADE"),
        _fk("creator_id", "accounts.id"),
        sa.Column("name", sa.String(20), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_groups_workspace_created", "voiceprint_groups", ["workspace_id", "created_at", "id"]
    )
    op.create_table(
        "voiceprint_features",
        _id(),
        _fk("group_id", "voiceprint_groups.id", ondelete="CASCADE"),
        _fk("creator_id", "accounts.id"),
        sa.Column("name", sa.String(20), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_features_group_created", "voiceprint_features", ["group_id", "created_at", "id"]
    )
    op.create_table(
        "voiceprint_samples",
        _id(),
        _fk("feature_id", "voiceprint_features.id", ondelete="CASCADE"),
        sa.Column("audio_key", sa.String(80), nullable=False),
        sa.Column("audio_format", sa.String(8), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("speech_seconds", sa.Float(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_voiceprint_samples_feature_id", "voiceprint_samples", ["feature_id"])
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "server_secrets",
        "voiceprint_samples",
        "voiceprint_features",
        "voiceprint_groups",
        "tokens",
        "accounts",
        "workspaces",
    ):
        op.drop_table(table)
