"""gallery image landmarks: canonical chips that any model's crop is re-derived from

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision: existing rows keep NULL landmarks (crops aligned for one model)."""
    op.add_column("gallery_images", sa.Column("landmarks", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("gallery_images") as batch:
        batch.drop_column("landmarks")
