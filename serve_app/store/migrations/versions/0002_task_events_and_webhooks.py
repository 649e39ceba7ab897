"""Task events and webhooks (issue 12): the pipeline's stage and tokens generated so far; where
to POST the finished task and how that went.

The SQLite-only TaskStore added these columns on open for a while before Alembic, so a file
may have them already: only missing ones are added.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ZERO = {"nullable": False, "server_default": sa.text("0")}
COLUMNS = (
    ("stage", sa.Text, {}),
    ("generated_tokens", sa.Integer, ZERO),
    ("callback_url", sa.Text, {}),
    ("webhook_state", sa.Text, {}),
    ("webhook_attempts", sa.Integer, ZERO),
    ("webhook_last_status", sa.Integer, {}),
    ("webhook_last_error", sa.Text, {}),
)


def upgrade() -> None:
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("tasks")}
    for name, kind, options in COLUMNS:
        if name not in present:
            op.add_column("tasks", sa.Column(name, kind, **options))


def downgrade() -> None:
    for name, _, _ in reversed(COLUMNS):
        op.drop_column("tasks", name)
