"""All SQL lives here: history with full-text search, and batch jobs.

SQLite in WAL mode; one connection shared by threads under a lock. The schema is the
append-only list in :mod:`tingji.jobs.migrations`.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tingji.jobs.migrations import MIGRATIONS, statements
from tingji.types import (
    HistoryEntry,
    JobFile,
    JobStatus,
    Omission,
    Replacement,
    Segment,
    SpeakerTurn,
    Transcript,
)

log = logging.getLogger("tingji.storage")

_ENTRY_COLUMNS = (
    "id, created_at, name, language, duration, processing_time, model, device, text, "
    "segments, replacements, options, audio_file, job_id, omitted, speakers"
)


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


class Storage:
    """The history database (``<data_dir>/history.db``)."""

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
        def __init__(self, storage: Storage) -> None:
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

    def _transaction(self) -> Storage._Tx:
        return Storage._Tx(self)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- history -----------------------------------------------------------------------------
    def add_transcription(
        self,
        transcript: Transcript,
        *,
        name: str,
        options: dict[str, Any],
        audio_file: str | None = None,
        job_id: str | None = None,
        db: sqlite3.Connection | None = None,
    ) -> int:
        row = (
            time.time(),
            name,
            audio_file,
            transcript.language,
            transcript.duration,
            transcript.processing_time,
            transcript.model.name,
            transcript.model.device,
            transcript.text,
            json.dumps([asdict(s) for s in transcript.segments], ensure_ascii=False),
            json.dumps([asdict(r) for r in transcript.replacements], ensure_ascii=False),
            json.dumps(options, ensure_ascii=False),
            job_id,
            json.dumps([asdict(o) for o in transcript.omitted], ensure_ascii=False),
            json.dumps([asdict(t) for t in transcript.speakers], ensure_ascii=False),
        )
        sql = (
            "INSERT INTO transcriptions (created_at, name, audio_file, language, duration, "
            "processing_time, model, device, text, segments, replacements, options, job_id, "
            "omitted, speakers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        if db is not None:
            return int(db.execute(sql, row).lastrowid or 0)
        with self._transaction() as tx:
            return int(tx.execute(sql, row).lastrowid or 0)

    def get_transcription(self, entry_id: int) -> HistoryEntry | None:
        if not _is_row_id(entry_id):
            return None
        rows = self._query(f"SELECT {_ENTRY_COLUMNS} FROM transcriptions WHERE id = ?", (entry_id,))
        return _entry(rows[0]) if rows else None

    def search(
        self,
        query: str = "",
        *,
        language: str | None = None,
        since: float | None = None,
        until: float | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[HistoryEntry], int]:
        """Newest first. ``query`` matches any substring of the text or file name (Chinese too)."""
        where, params = self._filters(query, language, since, until)
        total = self._query(f"SELECT count(*) FROM transcriptions t {where}", params)[0][0]
        rows = self._query(
            f"SELECT {_prefixed('t')} FROM transcriptions t {where} "
            "ORDER BY t.created_at DESC, t.id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_entry(r) for r in rows], int(total)

    def iter_entries(
        self,
        query: str = "",
        *,
        language: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> Iterator[HistoryEntry]:
        where, params = self._filters(query, language, since, until)
        rows = self._query(
            f"SELECT {_prefixed('t')} FROM transcriptions t {where} ORDER BY t.created_at, t.id",
            params,
        )
        for row in rows:
            yield _entry(row)

    @staticmethod
    def _filters(
        query: str, language: str | None, since: float | None, until: float | None
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        query = query.strip()
        if len(query) >= 3:  # the trigram index needs three characters
            clauses.append(
                "t.id IN (SELECT rowid FROM transcriptions_fts WHERE transcriptions_fts MATCH ?)"
            )
            params.append('"' + query.replace('"', '""') + '"')
        elif query:
            escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("(t.text LIKE ? ESCAPE '\\' OR t.name LIKE ? ESCAPE '\\')")
            params += [f"%{escaped}%", f"%{escaped}%"]
        if language:
            clauses.append("t.language = ?")
            params.append(language)
        if since is not None:
            clauses.append("t.created_at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("t.created_at < ?")
            params.append(until)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    def delete_transcriptions(self, ids: Sequence[int]) -> list[str]:
        """Delete entries; returns their stored audio file names, for the caller to remove."""
        ids = [i for i in ids if _is_row_id(i)]
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self._transaction() as db:
            files = [
                r[0]
                for r in db.execute(
                    f"SELECT audio_file FROM transcriptions WHERE id IN ({marks})", list(ids)
                )
                if r[0]
            ]
            db.execute(f"DELETE FROM transcriptions WHERE id IN ({marks})", list(ids))
            db.execute(
                f"UPDATE job_files SET transcription_id = NULL WHERE transcription_id IN ({marks})",
                list(ids),
            )
        return files

    def forget_audio(self, audio_files: Sequence[str]) -> None:
        """Record that these stored audio files were removed (retention)."""
        if not audio_files:
            return
        marks = ",".join("?" * len(audio_files))
        with self._transaction() as db:
            db.execute(
                f"UPDATE transcriptions SET audio_file = NULL WHERE audio_file IN ({marks})",
                list(audio_files),
            )
            db.execute(
                f"UPDATE job_files SET audio_file = NULL WHERE audio_file IN ({marks}) "
                "AND status IN ('done', 'failed', 'cancelled')",
                list(audio_files),
            )

    def audio_in_use(self) -> set[str]:
        """Stored audio still referenced by history or by unfinished job files."""
        rows = self._query(
            "SELECT audio_file FROM transcriptions WHERE audio_file IS NOT NULL "
            "UNION SELECT audio_file FROM job_files WHERE audio_file IS NOT NULL"
        )
        return {r[0] for r in rows}

    def unfinished_audio(self) -> set[str]:
        rows = self._query(
            "SELECT audio_file FROM job_files WHERE audio_file IS NOT NULL "
            "AND status IN ('queued', 'running')"
        )
        return {r[0] for r in rows}

    # -- jobs --------------------------------------------------------------------------------
    def create_job(
        self,
        job_id: str,
        files: Sequence[tuple[str, str, int]],
        *,
        options: dict[str, Any],
        model: str,
    ) -> None:
        """A job with its files as (client name, stored audio file, size in bytes)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, created_at, status, options, model) VALUES (?, ?, ?, ?, ?)",
                (job_id, time.time(), "queued", json.dumps(options, ensure_ascii=False), model),
            )
            db.executemany(
                "INSERT INTO job_files (job_id, position, name, audio_file, size, status) "
                "VALUES (?, ?, ?, ?, ?, 'queued')",
                [(job_id, n, name, audio, size) for n, (name, audio, size) in enumerate(files)],
            )

    def get_job(self, job_id: str) -> JobStatus | None:
        rows = self._query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            return None
        job = rows[0]
        files = [
            JobFile(
                id=f["id"],
                position=f["position"],
                name=f["name"],
                size=f["size"],
                status=f["status"],
                duration=f["duration"],
                processing_time=f["processing_time"],
                error=f["error"],
                transcription_id=f["transcription_id"],
                audio_file=f["audio_file"],
            )
            for f in self._query(
                "SELECT * FROM job_files WHERE job_id = ? ORDER BY position", (job_id,)
            )
        ]
        started = job["started_at"]
        end = job["finished_at"] or time.time()
        return JobStatus(
            id=job["id"],
            created_at=job["created_at"],
            status=job["status"],
            files=files,
            options=json.loads(job["options"]),
            model=job["model"],
            finished_at=job["finished_at"],
            elapsed=(end - started) if started else 0.0,
        )

    def list_jobs(self, limit: int = 50) -> list[JobStatus]:
        ids = [
            r[0]
            for r in self._query("SELECT id FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))
        ]
        return [job for job in map(self.get_job, ids) if job is not None]

    def next_queued_file(self) -> tuple[str, JobFile] | None:
        """The oldest queued file of a job that is not cancelled, marked running."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT f.* FROM job_files f JOIN jobs j ON j.id = f.job_id "
                "WHERE f.status = 'queued' AND j.status IN ('queued', 'running') "
                "ORDER BY j.created_at, f.position LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE job_files SET status = 'running' WHERE id = ?", (row["id"],))
            db.execute(
                "UPDATE jobs SET status = 'running', started_at = coalesce(started_at, ?) "
                "WHERE id = ?",
                (time.time(), row["job_id"]),
            )
        return row["job_id"], JobFile(
            id=row["id"],
            position=row["position"],
            name=row["name"],
            size=row["size"],
            status="running",
            audio_file=row["audio_file"],
        )

    def finish_file(
        self, job_id: str, file_id: int, transcript: Transcript, options: dict[str, Any]
    ) -> int:
        """Save the result and mark the file done in one transaction: never lost, never twice."""
        with self._transaction() as db:
            status = db.execute(
                "SELECT status, audio_file, name FROM job_files WHERE id = ?", (file_id,)
            ).fetchone()
            if status is None or status["status"] != "running":
                return 0
            entry_id = self.add_transcription(
                transcript,
                name=status["name"],
                options=options,
                audio_file=status["audio_file"],
                job_id=job_id,
                db=db,
            )
            db.execute(
                "UPDATE job_files SET status = 'done', transcription_id = ?, duration = ?, "
                "processing_time = ? WHERE id = ?",
                (entry_id, transcript.duration, transcript.processing_time, file_id),
            )
            self._settle(db, job_id)
        return entry_id

    def fail_file(self, job_id: str, file_id: int, error: str, duration: float | None) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE job_files SET status = 'failed', error = ?, duration = ? "
                "WHERE id = ? AND status = 'running'",
                (error, duration, file_id),
            )
            self._settle(db, job_id)

    def set_file_duration(self, file_id: int, duration: float | None) -> None:
        with self._transaction() as db:
            db.execute("UPDATE job_files SET duration = ? WHERE id = ?", (duration, file_id))

    def cancel_job(self, job_id: str) -> bool:
        """Cancel the files not yet finished; False when the job does not exist."""
        with self._transaction() as db:
            row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return False
            db.execute(
                "UPDATE job_files SET status = 'cancelled' "
                "WHERE job_id = ? AND status IN ('queued', 'running')",
                (job_id,),
            )
            if row["status"] in ("queued", "running"):
                db.execute(
                    "UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = ?",
                    (time.time(), job_id),
                )
        return True

    def delete_job(self, job_id: str) -> list[str] | None:
        """Delete a job and its files' records (their history entries stay); returns the
        stored audio no history entry uses, for the caller to remove; None when no such job.
        A file still being recognised finds its row gone and saves nothing."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
                return None
            files = [
                row[0]
                for row in db.execute(
                    "SELECT audio_file FROM job_files WHERE job_id = ? AND audio_file IS NOT NULL "
                    "AND audio_file NOT IN (SELECT audio_file FROM transcriptions "
                    "WHERE audio_file IS NOT NULL)",
                    (job_id,),
                )
            ]
            db.execute("DELETE FROM job_files WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return files

    def requeue_interrupted(self) -> int:
        """Files left running by a server that died go back to the queue."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE job_files SET status = 'queued' WHERE status = 'running' "
                "AND job_id IN (SELECT id FROM jobs WHERE status IN ('queued', 'running'))"
            )
            return cursor.rowcount

    def queued_files(self) -> int:
        return int(
            self._query(
                "SELECT count(*) FROM job_files f JOIN jobs j ON j.id = f.job_id "
                "WHERE f.status IN ('queued', 'running') AND j.status IN ('queued', 'running')"
            )[0][0]
        )

    @staticmethod
    def _settle(db: sqlite3.Connection, job_id: str) -> None:
        left = db.execute(
            "SELECT count(*) FROM job_files WHERE job_id = ? AND status IN ('queued', 'running')",
            (job_id,),
        ).fetchone()[0]
        if left == 0:
            failed_all = db.execute(
                "SELECT count(*) = sum(status = 'failed') FROM job_files WHERE job_id = ?",
                (job_id,),
            ).fetchone()[0]
            db.execute(
                "UPDATE jobs SET status = ?, finished_at = ? WHERE id = ? AND status = 'running'",
                ("failed" if failed_all else "done", time.time(), job_id),
            )

    # -- hotword lists -----------------------------------------------------------------------
    def save_hotword_list(self, name: str, terms: Sequence[str]) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO hotword_lists (name, terms, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET terms = excluded.terms, "
                "updated_at = excluded.updated_at",
                (name, json.dumps(list(terms), ensure_ascii=False), time.time()),
            )

    def hotword_lists(self) -> dict[str, list[str]]:
        rows = self._query("SELECT name, terms FROM hotword_lists ORDER BY name")
        return {r["name"]: json.loads(r["terms"]) for r in rows}

    def delete_hotword_list(self, name: str) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM hotword_lists WHERE name = ?", (name,)).rowcount > 0


def _prefixed(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in _ENTRY_COLUMNS.split(","))


def _entry(row: sqlite3.Row) -> HistoryEntry:
    return HistoryEntry(
        id=row["id"],
        created_at=row["created_at"],
        name=row["name"],
        language=row["language"],
        duration=row["duration"],
        processing_time=row["processing_time"],
        model=row["model"],
        device=row["device"],
        text=row["text"],
        segments=[Segment(**s) for s in json.loads(row["segments"])],
        replacements=[Replacement(**r) for r in json.loads(row["replacements"])],
        options=json.loads(row["options"]),
        audio_file=row["audio_file"],
        job_id=row["job_id"],
        omitted=[Omission(**o) for o in json.loads(row["omitted"])],
        speakers=[SpeakerTurn(**t) for t in json.loads(row["speakers"])],
    )


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _is_row_id(value: int) -> bool:
    """Whether a client's id can name a row at all (SQLite's are 64-bit, and ours positive)."""
    return 0 < value < 2**63
