"""History entries and batch jobs as downloads: CSV rows, a job's CSV and its zip of files.

Pure functions of what storage returns; the service passes the entries in.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path

from tingji.formats import render
from tingji.types import HistoryEntry, JobStatus, ModelInfo, Transcript

EntryOf = Callable[[int | None], HistoryEntry | None]
"""Looks up a job file's history entry by id (None when it has none)."""

HISTORY_COLUMNS = [
    "id",
    "created_at",
    "name",
    "language",
    "duration",
    "processing_time",
    "model",
    "device",
    "text",
]
JOB_COLUMNS = [
    "file",
    "status",
    "segment",
    "start",
    "end",
    "text",
    "language",
    "duration",
    "processing_time",
    "error",
    "speaker",
]


def entry_transcript(entry: HistoryEntry) -> Transcript:
    """A history entry as a transcript (for the output formats)."""
    return Transcript(
        text=entry.text,
        segments=entry.segments,
        language=entry.language,
        language_probability=None,
        duration=entry.duration,
        processing_time=entry.processing_time,
        model=ModelInfo("", entry.model, "", entry.device, ""),
        replacements=entry.replacements,
        source=entry.name,
        omitted=entry.omitted,
        speakers=entry.speakers,
    )


def history_csv(entries: Iterable[HistoryEntry]) -> Iterator[str]:
    """The entries as CSV, a header then one chunk per row (for a streamed download)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    yield _take(out)
    for e in entries:
        writer.writerow(
            [
                e.id,
                _iso(e.created_at),
                e.name,
                e.language,
                f"{e.duration:.2f}",
                f"{e.processing_time:.2f}",
                e.model,
                e.device,
                e.text,
            ]
        )
        yield _take(out)


def job_csv(job: JobStatus, entry_of: EntryOf) -> str:
    """One row per segment of each file (a row with the error for a file without a result)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(JOB_COLUMNS)
    for f in job.files:
        entry = entry_of(f.transcription_id)
        if entry is None:
            writer.writerow(
                [f.name, f.status, "", "", "", "", "", _num(f.duration), "", f.error or "", ""]
            )
            continue
        for seg in entry.segments:
            writer.writerow(
                [
                    f.name,
                    f.status,
                    seg.id,
                    f"{seg.start:.3f}",
                    f"{seg.end:.3f}",
                    seg.text,
                    entry.language,
                    f"{entry.duration:.3f}",
                    f"{entry.processing_time:.3f}",
                    "",
                    seg.speaker or "",
                ]
            )
    return out.getvalue()


def job_zip(job: JobStatus, entry_of: EntryOf) -> bytes:
    """TXT, SRT and JSON per file (and RTTM when speakers were told apart; an ``.error.txt``
    for a file without a result), and
    ``job.json`` with the job's status."""
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for f in job.files:
            stem = unique_stem(f.name, used)
            entry = entry_of(f.transcription_id)
            if entry is None:
                archive.writestr(f"{stem}.error.txt", f"{f.status}: {f.error or ''}\n")
                continue
            transcript = entry_transcript(entry)
            for fmt in ("txt", "srt", "json", *(("rttm",) if entry.speakers else ())):
                archive.writestr(f"{stem}.{fmt}", render(transcript, fmt))
        archive.writestr(
            "job.json",
            json.dumps(
                {"id": job.id, "status": job.status, "files": [asdict(f) for f in job.files]},
                ensure_ascii=False,
                indent=2,
            ),
        )
    return buffer.getvalue()


STEM_BYTES = 180
"""Longest file-name stem in a zip, in UTF-8 bytes: with a suffix such as ``-12.error.txt``
an entry stays under the 255 bytes a file name may have on every common file system."""


def unique_stem(name: str, used: set[str]) -> str:
    """A stem for a file's outputs that extracts anywhere and differs from those ``used``."""
    stem = Path(name.replace("\\", "/")).stem
    stem = "".join("_" if ch in _UNSAFE or ord(ch) < 32 else ch for ch in stem).strip(" .")
    stem = stem.encode()[:STEM_BYTES].decode(errors="ignore") or "audio"
    candidate, n = stem, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}-{n}"
    used.add(candidate)
    return candidate


_UNSAFE = frozenset('/\\:*?"<>|')


def _take(out: io.StringIO) -> str:
    value = out.getvalue()
    out.seek(0)
    out.truncate()
    return value


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
