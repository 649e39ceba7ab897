"""Opening the task store's database: the URL, the password, the engine and its pool, and the
schema brought to this code's version (Alembic) before any task is read.

`task_store_url` is `sqlite:///path` (the default, one file, one writer) or
`postgresql://user@host:port/db`. The password never sits in the URL the service logs or
passes around: it comes from `task_store_password` (`VSS_TASK_STORE_PASSWORD`) or the file
`task_store_password_file` names, read when the pool opens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import URL, Engine, make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 2.0  # a write waiting this long for the file's lock fails (→ 503)
CONNECT_TIMEOUT_S = 5  # PostgreSQL away: fail a new connection after this (→ 503), not hang
POOL_TIMEOUT_S = 10.0  # every pooled connection busy for this long (→ 503)
MIGRATION_WAIT_S = 60  # SQLite: how long an opener waits for another one's migration
MIGRATION_LOCK = 72_018  # pg_advisory_xact_lock key: one replica migrates, the others wait


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer version of the service than this one."""


class UnsupportedStoreUrl(ValueError):
    """task_store_url names neither sqlite nor postgresql."""


def store_url(url: str | Path, password: str | None = None) -> URL:
    """The SQLAlchemy URL: a plain path means a SQLite file; `postgresql://` uses psycopg 3."""
    if isinstance(url, Path) or "://" not in url:
        return URL.create("sqlite", database=str(url))
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed
    if parsed.get_backend_name() != "postgresql":
        raise UnsupportedStoreUrl(
            f"task_store_url must start with sqlite:/// or postgresql://, not "
            f"{parsed.get_backend_name()}://"
        )
    parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.set(password=password) if password is not None else parsed


def safe_url(url: URL) -> str:
    """The URL for messages and logs: the password never shows."""
    return url.render_as_string(hide_password=True)


def create_engine(url: URL, pool_size: int = 8, synchronous: str = "FULL") -> Engine:
    """An engine for the store. SQLite: one connection (the single writer; callers queue for
    it), WAL, `synchronous` as given, writes in BEGIN IMMEDIATE transactions. PostgreSQL: a pool
    of `pool_size` connections, each checked before use (a restarted server's dead connections
    are replaced, not handed out)."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, synchronous)
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_S,
        pool_pre_ping=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "video-script"},
    )


def _sqlite_engine(url: URL, synchronous: str) -> Engine:
    if synchronous not in ("FULL", "NORMAL", "EXTRA", "OFF"):
        raise ValueError(f"unknown synchronous mode {synchronous!r}")
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        poolclass=sa.pool.QueuePool,
        pool_size=1,  # one connection: statements of this store object never overlap
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_S,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
    )

    # pysqlite's own transaction handling would start transactions late and never IMMEDIATE
    # (SQLAlchemy's documented recipe): the driver stays in autocommit and BEGIN is ours.
    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(connection):
        write = connection.get_execution_options().get("write", True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revision(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def schema_revision(engine: Engine) -> str | None:
    """The database's schema revision (None: never migrated, or a file from before Alembic)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the schema to this code's head in one transaction, under a lock (PostgreSQL: an
    advisory lock; SQLite: the write lock), and return it. SchemaTooNew when the database is at
    a revision this code does not know."""
    scripts = ScriptDirectory.from_config(alembic_config())
    with engine.connect() as connection, _waiting_long(connection), connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
            )
        current = MigrationContext.configure(connection).get_current_heads()
        for revision in current:
            try:
                scripts.get_revision(revision)
            except CommandError:
                raise SchemaTooNew(
                    f"the task store at {safe_url(engine.url)} has schema revision {revision!r},"
                    f" newer than this version of the service knows (its newest is "
                    f"{scripts.get_current_head()!r}); run the newer service, or point "
                    "task_store_url at another database"
                ) from None
        command.upgrade(alembic_config(connection), "head")
    return scripts.get_current_head()


@contextlib.contextmanager
def _waiting_long(connection: sa.Connection) -> Iterator[None]:
    """SQLite: wait up to MIGRATION_WAIT_S (not the 2 s a write waits) for the write lock,
    which another opener holds while it migrates (two replicas starting at once)."""
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.dbapi_connection  # no autobegin: BEGIN IMMEDIATE comes next
    raw.execute(f"PRAGMA busy_timeout = {MIGRATION_WAIT_S * 1000}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
