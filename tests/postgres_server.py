"""A private PostgreSQL server for the tests: initdb + pg_ctl in a temporary directory, on
127.0.0.1 and a free port, stopped (and deleted) at the end of the session.

PostgreSQL refuses to run as root, so as root the server runs as a dedicated system user
(POSTGRES_TEST_USER, made here if missing, as `make pg-test-user` does); otherwise as the
current user. The superuser `vss` has a password (scram-sha-256 over TCP), so the store's
password handling is exercised too. fsync is off: the tests measure behaviour, not durability.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

POSTGRES_TEST_USER = "vss-postgres"
SUPERUSER = "vss"


def postgres_bin() -> Path:
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/<v>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("PostgreSQL server binaries (pg_ctl, initdb) not found: install postgresql")


def _version(path: str) -> int:
    return int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0


def ensure_user() -> str | None:
    """The user the server runs as: None (the current one) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(POSTGRES_TEST_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                POSTGRES_TEST_USER,
            ],
            check=True,
        )
    return POSTGRES_TEST_USER


class PostgresServer:
    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.user = ensure_user()
        self.base = Path(tempfile.mkdtemp(prefix="vss-postgres-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.password = secrets.token_urlsafe(16)
        self.port = _free_port()

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def init(self) -> PostgresServer:
        password_file = self.base / "password"
        password_file.write_text(self.password)
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
            os.chown(password_file, entry.pw_uid, entry.pw_gid)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={password_file}",
            "--no-sync",
            "--no-instructions",
        )
        password_file.unlink()
        return self

    def start(self, fsync: bool = False) -> None:
        """Start (again); `fsync` on for a benchmark, off for tests (they measure behaviour)."""
        options = f"-h 127.0.0.1 -p {self.port} -k {self.base} -c max_connections=300"
        options += "" if fsync else " -F"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """The store URL, without the password (the store gets it apart, as in production)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return name

    def dsn(self, database: str = "postgres") -> str:
        return (
            f"host=127.0.0.1 port={self.port} user={SUPERUSER} password={self.password}"
            f" dbname={database}"
        )

    def wait_until_up(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                psycopg.connect(self.dsn(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.2)
        raise TimeoutError("PostgreSQL did not come back")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StoreDatabase:
    """One empty task-store database of a backend, for one test: `open()` opens the store on
    it (again and again: several store objects, as several replicas or a restart), `execute()`
    runs SQL on it directly (to age or damage rows as time or a bad disk would)."""

    def __init__(self, backend: str, tmp_path: Path, server: PostgresServer | None = None):
        self.backend = backend
        self.server = server
        if server is None:
            self.url, self.password = str(tmp_path / "tasks.db"), None
        else:
            self.url, self.password = server.url(server.create_database()), server.password
        self._stores: list = []

    def open(self, **options):
        from serve_app.store import TaskStore

        store = TaskStore(self.url, password=self.password, **options)
        self._stores.append(store)
        return store

    def execute(self, sql: str, **params) -> list:
        from sqlalchemy import text

        store = self._stores[0] if self._stores else self.open()
        with store.engine.begin() as connection:
            result = connection.execute(text(sql), params)
            return result.all() if result.returns_rows else []

    def close(self) -> None:
        for store in self._stores:
            store.close()
