"""Uploaded audio kept in the database too, for servers that share a PostgreSQL database but no
disk: a job's file submitted to one server runs on another, and a history entry's audio plays
from any. Each server's ``<data_dir>/audio`` then holds what it stored or fetched, a cache.

A file is stored as chunks of :data:`CHUNK` bytes, written and read one at a time, so that
neither side holds more than a chunk in memory. Its ``audio_files`` row is written in the same
transaction as the chunks: a file is whole in the database, or not there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from tingji.jobs.database import Database

CHUNK = 1 << 20
PARTIAL = ".fetch"
"""Suffix of a file being fetched from the database into the audio directory."""


class AudioBlobStore(Database):
    """Audio files in the database (only where :attr:`shares_audio`)."""

    @property
    def shares_audio(self) -> bool:
        """Whether uploaded audio is kept in the database (PostgreSQL)."""
        return self._dialect.shares_audio

    def put_audio(self, file: str, path: Path) -> None:
        """Copy a stored file into the database (again: nothing happens)."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM audio_files WHERE file = ?", (file,)).fetchone():
                return
            size = 0
            with path.open("rb") as source:
                db.execute(
                    "INSERT INTO audio_files (file, size, created_at) VALUES (?, 0, ?)",
                    (file, time.time()),
                )
                number = 0
                while block := source.read(CHUNK):
                    db.execute(
                        "INSERT INTO audio_chunks (file, chunk, data) VALUES (?, ?, ?)",
                        (file, number, block),
                    )
                    size += len(block)
                    number += 1
            db.execute("UPDATE audio_files SET size = ? WHERE file = ?", (size, file))

    def fetch_audio(self, file: str, target: Path) -> bool:
        """Write a file kept in the database to ``target`` (via a partial file, renamed when
        whole); False when the database does not hold it (or it was deleted meanwhile: what
        was fetched is removed again)."""
        found = self._query("SELECT size FROM audio_files WHERE file = ?", (file,))
        if not found:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{uuid.uuid4().hex[:12]}{PARTIAL}")
        try:
            size = number = 0
            with partial.open("wb") as out:
                while rows := self._query(
                    "SELECT data FROM audio_chunks WHERE file = ? AND chunk = ?", (file, number)
                ):
                    out.write(rows[0][0])
                    size += len(rows[0][0])
                    number += 1
            if size != found[0][0]:  # deleted while it was read
                partial.unlink()
                return False
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        if not self._query("SELECT 1 FROM audio_files WHERE file = ?", (file,)):
            target.unlink(missing_ok=True)  # deleted meanwhile: not brought back here
            return False
        return True

    def delete_audio(self, files: Sequence[str]) -> None:
        if not files:
            return
        marks = ",".join("?" * len(files))
        with self._transaction() as db:
            db.execute(f"DELETE FROM audio_files WHERE file IN ({marks})", list(files))

    def audio_stored_before(self, cutoff: float) -> list[str]:
        """Files kept in the database since before ``cutoff`` (unix seconds)."""
        rows = self._query("SELECT file FROM audio_files WHERE created_at < ?", (cutoff,))
        return [r[0] for r in rows]
