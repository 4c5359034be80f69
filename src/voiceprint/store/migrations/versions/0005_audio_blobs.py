"""Recordings stored in the database (``VOICEPRINT_BLOB_STORE=database``), so servers on
several machines need nothing shared but PostgreSQL.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audio_blobs",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_audio_blobs_created_at", "audio_blobs", ["created_at"])


def downgrade() -> None:
    op.drop_table("audio_blobs")
