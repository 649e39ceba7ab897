"""Edit jobs (issue 13, item 4): a scene regeneration, a written insert or a refine is a durable
job, stored before the client hears 202 and run under a lease like a task, so a worker that
dies leaves it to be adopted, never lost. Its result is the task's next revision.

Edits go with their task: the foreign key on PostgreSQL, a trigger on SQLite (as revisions).

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SQLITE_EDITS_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS edits_go_with_their_task AFTER DELETE ON tasks BEGIN
    DELETE FROM edits WHERE task_id = OLD.task_id;
END
"""
INDEXES = (
    "CREATE INDEX IF NOT EXISTS edits_by_task ON edits (task_id, created_at)",
    "CREATE INDEX IF NOT EXISTS edits_unfinished ON edits (lease_until)"
    " WHERE status IN ('pending', 'running')",
    # one edit per (owner, Idempotency-Key): concurrent retries with one key store one edit
    "CREATE UNIQUE INDEX IF NOT EXISTS edits_by_idempotency_key"
    " ON edits (COALESCE(owner, ''), idempotency_key) WHERE idempotency_key IS NOT NULL",
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "edits",
        sa.Column("edit_id", sa.Text, primary_key=True),
        sa.Column(
            "task_id",
            sa.Text,
            *([sa.ForeignKey("tasks.task_id", ondelete="CASCADE")] if postgres else []),
            nullable=False,
        ),
        sa.Column("owner", sa.Text),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("params_json", sa.Text, nullable=False),
        sa.Column("if_match", sa.Integer),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("worker_id", sa.Text),
        sa.Column("lease_until", sa.Double),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("started_at", sa.Double),
        sa.Column("completed_at", sa.Double),
        sa.Column("revision", sa.Integer),
        sa.Column("source", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("error_status", sa.Integer),
        sa.Column("error_field", sa.Text),
        sa.Column("idempotency_key", sa.Text),
        sa.Column("request_digest", sa.Text),
    )
    for statement in INDEXES:
        op.execute(statement)
    if not postgres:
        op.execute(SQLITE_EDITS_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER IF EXISTS edits_go_with_their_task")
    op.drop_table("edits")
