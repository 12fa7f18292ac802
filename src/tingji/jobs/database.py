"""The database underneath history and jobs: one SQLite connection in WAL mode, shared by threads
under a lock, its write-ahead log watched, and the append-only migrations of
:mod:`tingji.jobs.migrations` applied on open."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tingji.jobs.migrations import MIGRATIONS, statements

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

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._repairs = 0
        self._db = self._connect()
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
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
        return self.path.with_name(self.path.name + "-wal")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def wal_state(self) -> WalState:
        """Check the write-ahead log; a lost one is reopened (nothing written is lost, as each
        write was checkpointed)."""
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
    def _migrate(self) -> None:
        with self._transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS migrations "
                "(id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            done = {row[0] for row in db.execute("SELECT id FROM migrations")}
            for number, (name, sql) in enumerate(MIGRATIONS, start=1):
                if number in done:
                    continue
                for statement in statements(sql):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO migrations (id, name, applied_at) VALUES (?, ?, ?)",
                    (number, name, time.time()),
                )

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

    def _transaction(self) -> Database._Tx:
        return Database._Tx(self)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _is_row_id(value: int) -> bool:
    """Whether a client's id can name a row at all (SQLite's are 64-bit, and ours positive)."""
    return 0 < value < 2**63
