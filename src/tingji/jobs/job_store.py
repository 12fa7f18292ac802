"""Batch jobs: their files, claims of queued files, progress, cancel and delete."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from tingji.jobs.history_store import HistoryStore
from tingji.types import JobFile, JobStatus, Transcript


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
