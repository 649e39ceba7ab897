"""Scene events (issue 12): the scenes of the reply the model is writing, as far as it has
completed them, so an events stream on any ingress replica can send each scene once.

`draft_json` holds `{"draft": n, "scenes": [...]}`: `draft` counts the replies the task's
generations began (the repair turn and an adopted task's new attempt start a new one), `scenes`
the completed scenes of the current reply. NULL until the first scene.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("draft_json", sa.Text))


def downgrade() -> None:
    op.drop_column("tasks", "draft_json")
