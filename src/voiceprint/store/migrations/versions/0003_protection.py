"""Protection of biometric data: each workspace's wrapped data keys, which key generation
sealed a sample (None: stored in clear), when a voiceprint last matched (retention), and
the audit trail of every operation on biometric data.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _nullable_bigint(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=True)


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column(
            "workspace_id",
            sa.BigInteger(),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("generation", sa.Integer(), primary_key=True),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    with op.batch_alter_table("voiceprint_samples") as batch:
        batch.add_column(sa.Column("key_generation", sa.Integer(), nullable=True))
    with op.batch_alter_table("voiceprint_features") as batch:
        batch.add_column(_nullable_bigint("last_used_at"))
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        _nullable_bigint("token_id"),
        _nullable_bigint("account_id"),
        _nullable_bigint("workspace_id"),
        sa.Column("operation", sa.String(32), nullable=False),
        _nullable_bigint("group_id"),
        _nullable_bigint("feature_id"),
        sa.Column("result_code", sa.Integer(), nullable=False),
        sa.Column("logid", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_workspace_at", "audit_events", ["workspace_id", "at"])


def downgrade() -> None:
    op.drop_table("audit_events")
    with op.batch_alter_table("voiceprint_features") as batch:
        batch.drop_column("last_used_at")
    with op.batch_alter_table("voiceprint_samples") as batch:
        batch.drop_column("key_generation")
    op.drop_table("data_keys")
