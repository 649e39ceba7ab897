"""scripts/verify_setup.py's task store line: connection and schema version, on a real SQLite
file and the session's PostgreSQL server; it reads, never creates or migrates."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import SecretStr

from serve_app.config import Settings
from serve_app.store import TaskStore, head_revision

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from verify_setup import check_task_store


def test_sqlite_missing_current_and_newer(tmp_path):
    path = tmp_path / "tasks.db"
    missing = check_task_store(Settings(task_db_path=path))
    assert missing.ok and "not there yet" in missing.detail and not path.exists()
    TaskStore(path).close()
    current = check_task_store(Settings(task_store_url=f"sqlite:///{path}"))
    assert current.ok and f"schema {head_revision()} (current)" in current.detail
    with TaskStore(path).engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'zz_future'")
    newer = check_task_store(Settings(task_db_path=path))
    assert not newer.ok and "'zz_future' is newer" in newer.detail


def test_postgresql_connection_password_and_schema(postgres_server):
    database = postgres_server.create_database()
    url = postgres_server.url(database)
    fresh = check_task_store(
        Settings(task_store_url=url, task_store_password=SecretStr(postgres_server.password))
    )
    assert fresh.ok and "no schema version yet" in fresh.detail
    TaskStore(url, password=postgres_server.password).close()
    password_file = postgres_server.base.parent / f"{database}.password"
    password_file.write_text(postgres_server.password + "\n")
    try:
        current = check_task_store(
            Settings(task_store_url=url, task_store_password_file=password_file)
        )
    finally:
        password_file.unlink()
    assert current.ok and "(current)" in current.detail and "***" in current.detail
    wrong = check_task_store(
        Settings(task_store_url=url, task_store_password=SecretStr("not-the-password"))
    )
    assert not wrong.ok and "cannot connect" in wrong.detail
    assert "password authentication failed" in wrong.detail
    assert "not-the-password" not in wrong.detail and postgres_server.password not in wrong.detail
