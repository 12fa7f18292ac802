"""History: search (Chinese substrings too), view, delete, export."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from tingji import minutes
from tingji.errors import NotFoundError, OptionError
from tingji.exports import entry_transcript
from tingji.formats import FORMATS, render
from tingji.server.deps import Service
from tingji.server.views import entry_view

router = APIRouter(prefix="/api/history", tags=["history"])
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _time(value: str | None, name: str) -> float | None:
    """Unix seconds, or an ISO date / date-time (UTC when it has no zone)."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise OptionError(f"{name} must be an ISO date (2025-03-01) or unix seconds") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _filters(language: str | None, since: str | None, until: str | None) -> dict[str, Any]:
    return {
        "language": language or None,
        "since": _time(since, "since"),
        "until": _time(until, "until"),
    }


@router.get("")
def search(
    service: Service,
    q: str = "",
    language: str | None = None,
    since: str | None = None,
    until: str | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """Newest first; ``q`` matches any part of the text or file name."""
    entries, total = service.history.search(
        q, offset=(page - 1) * page_size, limit=page_size, **_filters(language, since, until)
    )
    return {
        "total": total,
        "page": page,
        "page_size": page_size,
        "items": [entry_view(e, full=False) for e in entries],
    }


@router.get("/export.csv")
def export_csv(
    service: Service,
    q: str = "",
    language: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> StreamingResponse:
    rows = service.history_csv(q, **_filters(language, since, until))

    def body() -> Any:
        yield "\ufeff"
        yield from rows

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="tingji-history.csv"'},
    )


class DeleteRequest(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=1000)


@router.post("/delete")
def delete_many(service: Service, body: DeleteRequest) -> dict[str, int]:
    """Bulk delete (entries and their stored audio)."""
    return {"deleted": service.delete_entries(body.ids)}


@router.get("/{entry_id}")
def get_entry(service: Service, entry_id: int) -> dict[str, Any]:
    return entry_view(service.get_entry(entry_id))


@router.delete("/{entry_id}")
def delete_entry(service: Service, entry_id: int) -> dict[str, int]:
    if service.delete_entries([entry_id]) == 0:
        raise NotFoundError(f"no history entry {entry_id}")
    return {"deleted": 1}


@router.get("/{entry_id}/audio")
def entry_audio(service: Service, entry_id: int) -> FileResponse:
    """The stored upload of an entry (404 once retention removed it)."""
    path = service.entry_audio(entry_id)
    if path is None:
        raise NotFoundError(f"the audio of entry {entry_id} is not stored")
    return FileResponse(path)


class RenameRequest(BaseModel):
    speaker: str = Field(min_length=1, max_length=64, description="the label now: S2")
    name: str = Field(min_length=1, max_length=64, description="the name to give: 王经理")


@router.post("/{entry_id}/speakers")
def rename_speaker(service: Service, entry_id: int, body: RenameRequest) -> dict[str, Any]:
    """Rename a speaker throughout an entry; exports and search use the name from then on."""
    return entry_view(service.rename_speaker(entry_id, body.speaker, body.name))


class SegmentEdit(BaseModel):
    text: str | None = Field(
        default=None, min_length=1, max_length=2000, description="what the segment says"
    )
    speaker: str | None = Field(
        default=None, min_length=1, max_length=64, description="who says it: 王经理 or S2"
    )


@router.patch("/{entry_id}/segments/{index}")
def edit_segment(
    service: Service, entry_id: int, index: Annotated[int, Path(ge=0)], body: SegmentEdit
) -> dict[str, Any]:
    """Correct segment ``index`` (0-based) of an entry: its text, speaker or both. The
    recognition is kept (``original_segments``); search, exports and minutes use the
    correction."""
    return entry_view(service.edit_segment(entry_id, index, text=body.text, speaker=body.speaker))


@router.post("/{entry_id}/segments/{index}/revert")
def revert_segment(
    service: Service, entry_id: int, index: Annotated[int, Path(ge=0)]
) -> dict[str, Any]:
    """Put segment ``index`` back as it was recognised."""
    return entry_view(service.revert_segment(entry_id, index))


MINUTES = {"md": "text/markdown; charset=utf-8", "docx": DOCX}


@router.get("/{entry_id}/export")
def export_entry(service: Service, entry_id: int, format: str = "txt") -> Response:
    """One entry as txt, srt, vtt, json, csv or rttm, or as minutes: md (Markdown) or docx."""
    if format not in FORMATS and format not in MINUTES:
        choices = ", ".join([*FORMATS, *MINUTES])
        raise OptionError(f"format must be one of {choices}")
    entry = service.get_entry(entry_id)
    stem = entry.name.rsplit(".", 1)[0] or "transcript"
    # header values are latin-1: an ASCII fallback name, and the real one per RFC 6266
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in stem)
    disposition = (
        f'attachment; filename="{safe}.{format}"; '
        f"filename*=UTF-8''{quote(stem, safe='')}.{format}"
    )
    if format == "md":
        body = minutes.to_markdown(entry).encode()
        return Response(
            body, media_type=MINUTES["md"], headers={"Content-Disposition": disposition}
        )
    if format == "docx":
        body = minutes.to_docx(entry)
        return Response(body, media_type=DOCX, headers={"Content-Disposition": disposition})
    return PlainTextResponse(
        render(entry_transcript(entry), format),
        headers={"Content-Disposition": disposition},
    )
