"""Which revision of the analysis measured each sample's quality report, so reports an
earlier revision measured (the narrow-band flag of a call stored in 16-bit samples, say)
are measured again from the stored audio (``voiceprint reembed``, or at start).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("voiceprint_samples") as batch:
        batch.add_column(
            sa.Column("quality_revision", sa.Integer(), nullable=False, server_default="1")
        )


def downgrade() -> None:
    with op.batch_alter_table("voiceprint_samples") as batch:
        batch.drop_column("quality_revision")
