"""The database underneath history and jobs, and the append-only migrations of
:mod:`tingji.jobs.migrations` applied on open.

SQLite (the embedded default): one connection in WAL mode, shared by threads under a lock, its
write-ahead log watched. PostgreSQL (a ``postgresql://`` URL, for several servers on one
history and job queue): a pool of connections, :mod:`tingji.jobs.postgres`. The SQL that
differs between the two is asked of :attr:`Database._dialect` (:mod:`tingji.jobs.dialect`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tingji.jobs.dialect import SQLITE, Conn, Dialect, Row
from tingji.jobs.migrations import MIGRATIONS, statements

if TYPE_CHECKING:
    from tingji.jobs.postgres import PostgresEngine

log = logging.getLogger("tingji.storage")


@dataclass(frozen=True)
class WalState:
    """Whether the database's write-ahead log is the one this process writes to.

    SQLite's locks are POSIX locks, which the whole process loses when *any* file descriptor
    of the database file is closed. Another program opening the database then believes it is
    alone, and on closing deletes the ``-wal`` file this process still writes to: every later
    write would be lost at the next crash. So each write is checkpointed into the database
    file at once, and a log found missing or replaced is reopened (``repairs`` counts those).
    """

    intact: bool
    repairs: int


class Database:
    """The connection and its plumbing; the stores built on it hold the SQL of each concept."""

    def __init__(self, path: Path | str, *, pool_size: int = 10, timeout_s: float = 10.0) -> None:
        """``path``: the SQLite file, or a ``postgresql://`` URL (then ``pool_size``
        connections at most, each waited for ``timeout_s`` seconds at most)."""
        self._lock = threading.RLock()
        self._repairs = 0
        self._pg: PostgresEngine | None = None
        self._dialect: Dialect = SQLITE
        if isinstance(path, str) and _is_postgres(path):
            from tingji.jobs.postgres import PostgresEngine

            self._pg = PostgresEngine(path, pool_size=pool_size, timeout_s=timeout_s)
            self._dialect = self._pg.dialect
            self.path: Path | None = None
            self.location = self._pg.shown
        else:
            file = Path(path)
            file.parent.mkdir(parents=True, exist_ok=True)
            self.path = file
            self.location = str(file)
            self._db = self._connect()
        try:
            self.migrated = self._migrate()
            """The names of the migrations this open applied."""
        except BaseException:
            self.close()
            raise

    @property
    def engine(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._dialect.name

    @property
    def journal(self) -> str:
        """How writes survive a crash: SQLite's ``wal``, or ``postgresql`` (the server's own)."""
        return "wal" if self._pg is None else "postgresql"

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # creates the log
        self._wal = _inode(self._wal_path)
        return db

    @property
    def _wal_path(self) -> Path:
        assert self.path is not None
        return self.path.with_name(self.path.name + "-wal")

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
            return
        with self._lock:
            self._db.close()

    def wal_state(self) -> WalState:
        """Check the write-ahead log; a lost one is reopened (nothing written is lost, as each
        write was checkpointed). PostgreSQL keeps its own log: always intact here."""
        if self._pg is not None:
            return WalState(intact=True, repairs=0)
        with self._lock:
            intact = self._wal is not None and _inode(self._wal_path) == self._wal
            if not intact:
                self._repair()
            return WalState(intact=intact, repairs=self._repairs)

    def _after_write(self) -> None:
        """Copy the committed write into the database file, then check the log."""
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if _inode(self._wal_path) != self._wal:
            self._repair()

    def _repair(self) -> None:
        log.warning(
            "the write-ahead log of %s was deleted or replaced by another program; "
            "reopening the database (every write so far is in the database file)",
            self.path,
        )
        self._repairs += 1
        self._db.close()
        self._db = self._connect()

    # -- plumbing ----------------------------------------------------------------------------
    def _migrate(self) -> list[str]:
        """Apply the migrations not yet recorded, in one transaction (on PostgreSQL under a
        lock, so that servers starting together apply each once); their names."""
        applied = []
        with self._transaction() as db:
            if self._pg is not None:
                self._pg.lock_migrations(db)
            real = "REAL" if self._pg is None else "DOUBLE PRECISION"
            db.execute(
                "CREATE TABLE IF NOT EXISTS migrations "
                f"(id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at {real} NOT NULL)"
            )
            done = {row[0] for row in db.execute("SELECT id FROM migrations")}
            for number, migration in enumerate(MIGRATIONS, start=1):
                if number in done:
                    continue
                for statement in statements(migration.sql(self._dialect.name)):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO migrations (id, name, applied_at) VALUES (?, ?, ?)",
                    (number, migration.name, time.time()),
                )
                applied.append(migration.name)
        return applied

    class _Tx:
        def __init__(self, storage: Database) -> None:
            self.storage = storage

        def __enter__(self) -> sqlite3.Connection:
            self.storage._lock.acquire()
            self.storage._db.execute("BEGIN IMMEDIATE")
            return self.storage._db

        def __exit__(self, kind: object, exc: object, tb: object) -> None:
            storage = self.storage
            try:
                storage._db.execute("COMMIT" if kind is None else "ROLLBACK")
                if kind is None:
                    storage._after_write()
            finally:
                storage._lock.release()

    def _transaction(self) -> AbstractContextManager[Conn]:
        """One transaction: every statement in it is committed together, or none."""
        if self._pg is not None:
            return self._pg.transaction()
        return Database._Tx(self)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if self._pg is not None:
            return self._pg.query(sql, params)
        with self._lock:
            return self._db.execute(sql, params).fetchall()


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _is_postgres(value: str) -> bool:
    from tingji.jobs.postgres import is_postgres_url

    return is_postgres_url(value)


def _is_row_id(value: int) -> bool:
    """Whether a client's id can name a row at all (SQLite's are 64-bit, and ours positive)."""
    return 0 < value < 2**63
