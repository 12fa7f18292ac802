"""Copying a history database into another (``tingji db copy``): history, jobs and their files,
hotword lists, voices, corrections; and, into a database that keeps audio (PostgreSQL), the
stored audio the history and jobs refer to.

Ids are kept, so that jobs still name their files' history entries; afterwards the target's
new ids start above them. The rows go in one transaction, read a page at a time: the target
gets all of them or none. A target that already holds any is refused, so a copy is never
made twice into one database.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from tingji.errors import DatabaseError
from tingji.jobs.storage import Storage

TABLES = {
    "transcriptions": "history entries",
    "jobs": "jobs",
    "job_files": "job files",
    "hotword_lists": "hotword lists",
    "voices": "voices",
}
"""What is copied, in an order that keeps every reference valid; with how it is called."""
NUMBERED = {"transcriptions", "job_files", "hotword_lists", "voices"}
"""The tables whose ids the database hands out (a job's id is made by tingji)."""
PAGE = 500

Progress = Callable[[str, int, int], None]
"""(what, done, total)"""


def copy_database(
    source: Storage, target: Storage, *, audio_dir: Path | None, progress: Progress
) -> dict[str, int]:
    """Copy ``source`` into the empty ``target``; how many rows (and audio files) of each."""
    filled = {label: count for table, label in TABLES.items() if (count := _count(target, table))}
    if filled:
        held = ", ".join(f"{n} {label}" for label, n in filled.items())
        raise DatabaseError(
            f"the database {target.location} already holds {held}: "
            "copy into an empty database (nothing was copied)"
        )
    copied: dict[str, int] = {}
    with target._transaction() as db:
        for table, label in TABLES.items():
            wanted = set(_columns(target, table))
            columns = [c for c in _columns(source, table) if c in wanted]
            total, done = _count(source, table), 0
            names = ", ".join(columns)
            insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
            last = None
            while True:
                after = "" if last is None else "WHERE id > ? "
                rows = source._query(
                    f"SELECT {names} FROM {table} {after}ORDER BY id LIMIT {PAGE}",
                    [] if last is None else [last],
                )
                if not rows:
                    break
                db.executemany(insert, [tuple(row) for row in rows])
                last = rows[-1][columns.index("id")]
                done += len(rows)
                progress(label, done, total)
            if table in NUMBERED:
                target._dialect.reset_ids(db, table)
            copied[label] = done
    if target.shares_audio:
        copied["audio files"] = _copy_audio(source, target, audio_dir, progress)
    return copied


def _copy_audio(
    source: Storage, target: Storage, audio_dir: Path | None, progress: Progress
) -> int:
    """The stored audio the history and jobs refer to: from the source's audio directory, or
    from the source database (one file at a time, through a temporary file)."""
    files = sorted(source.audio_in_use())
    copied = 0
    with tempfile.TemporaryDirectory(prefix="tingji-copy-") as scratch:
        for n, file in enumerate(files, start=1):
            path = audio_dir / file if audio_dir is not None else None
            if path is None or not path.is_file():
                path = Path(scratch) / "audio"
                if not (source.shares_audio and source.fetch_audio(file, path)):
                    continue  # removed by retention, or never kept
            target.put_audio(file, path)
            copied += 1
            progress("audio files", n, len(files))
    return copied


def _count(storage: Storage, table: str) -> int:
    return int(storage._query(f"SELECT count(*) FROM {table}")[0][0])


def _columns(storage: Storage, table: str) -> list[str]:
    return [row[0] for row in storage._query(storage._dialect.columns_sql(), (table,))]
