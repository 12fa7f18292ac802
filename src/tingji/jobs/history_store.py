"""History: saved recognitions, their full-text search (Chinese substrings too), deletion."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from typing import Any

from tingji.jobs.database import Database, _is_row_id
from tingji.jobs.dialect import Conn, Row
from tingji.types import (
    HistoryEntry,
    Omission,
    Replacement,
    Segment,
    SpeakerTurn,
    Transcript,
)

_ENTRY_COLUMNS = (
    "id, created_at, name, language, duration, processing_time, model, device, text, "
    "segments, replacements, options, audio_file, job_id, omitted, speakers, original, edited_at"
)


class HistoryStore(Database):
    """Saved recognitions."""

    def add_transcription(
        self,
        transcript: Transcript,
        *,
        name: str,
        options: dict[str, Any],
        audio_file: str | None = None,
        job_id: str | None = None,
        db: Conn | None = None,
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
            _names(s.speaker for s in transcript.segments),
        )
        sql = (
            "INSERT INTO transcriptions (created_at, name, audio_file, language, duration, "
            "processing_time, model, device, text, segments, replacements, options, job_id, "
            "omitted, speakers, speaker_names) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        if db is not None:
            return self._dialect.insert_id(db, sql, row)
        with self._transaction() as tx:
            return self._dialect.insert_id(tx, sql, row)

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
        """Newest first. ``query`` matches any substring of the text, the file name or a
        speaker's name (Chinese too)."""
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

    def _filters(
        self, query: str, language: str | None, since: float | None, until: float | None
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        query = query.strip()
        if query:
            clause, values = self._dialect.contains(query)
            clauses.append(clause)
            params += values
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

    def update_transcription(
        self, entry_id: int, change: Callable[[HistoryEntry], HistoryEntry]
    ) -> HistoryEntry | None:
        """Correct an entry: ``change`` gets it as stored and returns it corrected (its text,
        segments, speaker turns and kept original are written), all in one transaction, so two
        corrections at once never lose one. None when there is no such entry."""
        if not _is_row_id(entry_id):
            return None
        with self._transaction() as db:
            row = db.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM transcriptions WHERE id = ?{self._dialect.lock}",
                (entry_id,),
            ).fetchone()
            if row is None:
                return None
            before = _entry(row)
            after = change(before)
            if after == before:
                return before
            original = after.original
            db.execute(
                "UPDATE transcriptions SET text = ?, segments = ?, speakers = ?, "
                "speaker_names = ?, original = ?, edited_at = ? WHERE id = ?",
                (
                    after.text,
                    json.dumps([asdict(s) for s in after.segments], ensure_ascii=False),
                    json.dumps([asdict(t) for t in after.speakers], ensure_ascii=False),
                    _names(s.speaker for s in after.segments),
                    None
                    if original is None
                    else json.dumps([asdict(s) for s in original], ensure_ascii=False),
                    time.time() if original is not None else None,
                    entry_id,
                ),
            )
        return self.get_transcription(entry_id)

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


def _names(speakers: Iterable[str | None]) -> str:
    """The speakers' names, each once, in order of first speech (for search)."""
    return "\n".join(dict.fromkeys(s for s in speakers if s))


def _prefixed(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in _ENTRY_COLUMNS.split(","))


def _entry(row: Row) -> HistoryEntry:
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
        original=None
        if row["original"] is None
        else [Segment(**s) for s in json.loads(row["original"])],
        edited_at=row["edited_at"],
    )
