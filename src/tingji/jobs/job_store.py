"""Batch jobs: their files, claims of queued files, progress, cancel and delete.

Several servers may share one (PostgreSQL) database and so one queue. A server takes a queued
file with a *claim*: it is marked ``running``, with who holds it (``claimed_by``) and until
when (``lease_until``); PostgreSQL's ``FOR UPDATE SKIP LOCKED`` lets two servers claiming at
once never take the same file. The holder renews the lease while the file runs
(:meth:`JobStore.hold_claims`); a file whose lease ran out belonged to a server that died, and
goes back to the queue (:meth:`JobStore.requeue_expired`).

Every transaction that changes a job's files and the job itself locks the files first, then
the job, so that no two wait for each other.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Sequence
from typing import Any

from tingji.jobs.dialect import Conn, Row
from tingji.jobs.history_store import HistoryStore
from tingji.types import JobFile, JobStatus, Transcript

_ACTIVE_JOB = "job_id IN (SELECT id FROM jobs WHERE status IN ('queued', 'running'))"


class JobStore(HistoryStore):
    """Jobs and their files; a finished file's transcript goes to history in the same
    transaction."""

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
            _job_file(f)
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

    def next_queued_file(
        self, *, owner: str | None = None, lease_s: float | None = None, node: str | None = None
    ) -> tuple[str, JobFile] | None:
        """The oldest queued file of a job that is not cancelled, marked running: claimed by
        ``owner`` for ``lease_s`` seconds (renewed with :meth:`hold_claims`; with no lease,
        the claim lasts until a server's start requeues it), run on ``node``."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                "SELECT f.* FROM job_files f JOIN jobs j ON j.id = f.job_id "
                "WHERE f.status = 'queued' AND j.status IN ('queued', 'running') "
                f"ORDER BY j.created_at, f.position LIMIT 1{self._dialect.claim}"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE job_files SET status = 'running', claimed_by = ?, lease_until = ?, "
                "node = coalesce(?, node) WHERE id = ?",
                (owner, None if lease_s is None else now + lease_s, node, row["id"]),
            )
            db.execute(
                "UPDATE jobs SET status = 'running', started_at = coalesce(started_at, ?) "
                "WHERE id = ? AND status = 'queued'",
                (now, row["job_id"]),
            )
        return row["job_id"], JobFile(
            id=row["id"],
            position=row["position"],
            name=row["name"],
            size=row["size"],
            status="running",
            audio_file=row["audio_file"],
            node=node if node is not None else row["node"],
        )

    def hold_claims(
        self, owner: str, file_ids: Sequence[int], lease_s: float | None = None
    ) -> set[int]:
        """Of ``file_ids``, those still running under ``owner``'s claim: a file cancelled or
        deleted (on any server), or requeued after its lease ran out, is not. With
        ``lease_s``, their leases are renewed to that many seconds from now."""
        if not file_ids:
            return set()
        marks = ",".join("?" * len(file_ids))
        where = f"status = 'running' AND claimed_by = ? AND id IN ({marks})"
        if lease_s is None:
            rows = self._query(f"SELECT id FROM job_files WHERE {where}", [owner, *file_ids])
            return {int(r[0]) for r in rows}
        with self._transaction() as db:
            held = {
                int(r[0])
                for r in db.execute(
                    f"SELECT id FROM job_files WHERE {where}{self._dialect.lock}",
                    [owner, *file_ids],
                )
            }
            if held:
                db.execute(
                    f"UPDATE job_files SET lease_until = ? WHERE {where}",
                    [time.time() + lease_s, owner, *file_ids],
                )
        return held

    def finish_file(
        self,
        job_id: str,
        file_id: int,
        transcript: Transcript,
        options: dict[str, Any],
        *,
        node: str | None = None,
    ) -> int:
        """Save the result and mark the file done in one transaction: never lost, never twice.
        ``node``: the machine that recognised it (default this one)."""
        with self._transaction() as db:
            status = db.execute(
                f"SELECT status, audio_file, name FROM job_files WHERE id = ?{self._dialect.lock}",
                (file_id,),
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
                "processing_time = ?, node = ?, lease_until = NULL WHERE id = ?",
                (
                    entry_id,
                    transcript.duration,
                    transcript.processing_time,
                    node or socket.gethostname(),
                    file_id,
                ),
            )
            self._settle(db, job_id)
        return entry_id

    def fail_file(
        self,
        job_id: str,
        file_id: int,
        error: str,
        duration: float | None,
        *,
        node: str | None = None,
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE job_files SET status = 'failed', error = ?, duration = ?, "
                "node = ?, lease_until = NULL WHERE id = ? AND status = 'running'",
                (error, duration, node or socket.gethostname(), file_id),
            )
            self._settle(db, job_id)

    def set_file_duration(self, file_id: int, duration: float | None) -> None:
        with self._transaction() as db:
            db.execute("UPDATE job_files SET duration = ? WHERE id = ?", (duration, file_id))

    def cancel_job(self, job_id: str) -> bool:
        """Cancel the files not yet finished; False when the job does not exist. A server
        running one of them sees it cancelled at its next :meth:`hold_claims`."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
                return False
            db.execute(
                "UPDATE job_files SET status = 'cancelled', lease_until = NULL "
                "WHERE job_id = ? AND status IN ('queued', 'running')",
                (job_id,),
            )
            db.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ? "
                "WHERE id = ? AND status IN ('queued', 'running')",
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
        """At a server's start: files left running by a server that died go back to the
        queue. On SQLite (one box) that is every running file; on a shared PostgreSQL only
        those whose lease ran out, or that were claimed with none: another server may be
        running the rest."""
        if not self._dialect.requeue_all_at_start:
            return self._requeue("(lease_until IS NULL OR lease_until < ?)", [time.time()])
        return self._requeue("1 = 1", [])

    def requeue_expired(self) -> int:
        """Files whose claim's lease ran out (their server died) go back to the queue; the
        live servers call this now and then."""
        return self._requeue("lease_until < ?", [time.time()])

    def requeue_file(self, job_id: str, file_id: int) -> bool:
        """One running file back to the queue: what ran it went away before it finished."""
        return self._requeue("job_id = ? AND id = ?", [job_id, file_id]) > 0

    def _requeue(self, condition: str, params: list[Any]) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE job_files SET status = 'queued', claimed_by = NULL, lease_until = NULL "
                f"WHERE status = 'running' AND {condition} AND {_ACTIVE_JOB}",
                params,
            )
            return cursor.rowcount

    def queued_files(self) -> int:
        return int(
            self._query(
                "SELECT count(*) FROM job_files f JOIN jobs j ON j.id = f.job_id "
                "WHERE f.status IN ('queued', 'running') AND j.status IN ('queued', 'running')"
            )[0][0]
        )

    def _settle(self, db: Conn, job_id: str) -> None:
        """The job is done (or failed) once no file of it is left; its row is locked first, so
        that two servers finishing its last two files at once see each other's."""
        db.execute(f"SELECT id FROM jobs WHERE id = ?{self._dialect.lock}", (job_id,))
        left = db.execute(
            "SELECT count(*) FROM job_files WHERE job_id = ? AND status IN ('queued', 'running')",
            (job_id,),
        ).fetchone()[0]
        if left == 0:
            failed_all = db.execute(
                "SELECT count(*) = sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) "
                "FROM job_files WHERE job_id = ?",
                (job_id,),
            ).fetchone()[0]
            db.execute(
                "UPDATE jobs SET status = ?, finished_at = ? WHERE id = ? AND status = 'running'",
                ("failed" if failed_all else "done", time.time(), job_id),
            )


def _job_file(f: Row) -> JobFile:
    return JobFile(
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
        node=f["node"],
    )
