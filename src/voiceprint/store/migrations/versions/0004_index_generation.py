"""What the in-memory embedding index needs to stay coherent across server processes: a
generation per group, raised by every change to its voiceprints, and the generation at
which each voiceprint last changed (so a process reloads only what changed since).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _counter(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")


def upgrade() -> None:
    with op.batch_alter_table("voiceprint_groups") as batch:
        batch.add_column(_counter("generation"))
    with op.batch_alter_table("voiceprint_features") as batch:
        batch.add_column(_counter("revision"))
    op.create_index("ix_features_group_revision", "voiceprint_features", ["group_id", "revision"])


def downgrade() -> None:
    op.drop_index("ix_features_group_revision", "voiceprint_features")
    with op.batch_alter_table("voiceprint_features") as batch:
        batch.drop_column("revision")
    with op.batch_alter_table("voiceprint_groups") as batch:
        batch.drop_column("generation")
