"""How each stored recording was sent (sample rate, channels), so it can be decoded again;
and an index to find the samples of another model quickly (``voiceprint reembed``).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("voiceprint_samples") as batch:
        batch.add_column(sa.Column("source_rate", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("source_channels", sa.Integer(), nullable=True))
    op.create_index("ix_voiceprint_samples_model_id", "voiceprint_samples", ["model_id"])


def downgrade() -> None:
    op.drop_index("ix_voiceprint_samples_model_id", "voiceprint_samples")
    with op.batch_alter_table("voiceprint_samples") as batch:
        batch.drop_column("source_channels")
        batch.drop_column("source_rate")
