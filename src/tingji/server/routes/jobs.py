"""Batch jobs: many files, shared options, progress, events, cancel, export."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import Response, StreamingResponse

from tingji.errors import OptionError, TooManyFilesError
from tingji.jobs.audio_store import StoredAudio, check_extension
from tingji.server.deps import Service, store
from tingji.server.forms import OptionFields, option_fields
from tingji.server.views import job_view

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


@router.post("", status_code=201)
def create_job(
    service: Service,
    files: Annotated[list[UploadFile], File(description="audio or video files")],
    fields: Annotated[OptionFields, Depends(option_fields)],
) -> dict[str, Any]:
    """Queue files for recognition, one after another, with shared options."""
    if not files:
        raise OptionError("a job needs at least one file")
    if len(files) > service.settings.max_job_files:
        raise TooManyFilesError(
            f"{len(files)} files is more than the {service.settings.max_job_files} a job takes"
        )
    for upload in files:  # refuse a wrong type before storing anything
        check_extension(upload.filename or "")
    options, model = fields.build(service)
    stored: list[StoredAudio] = []
    try:
        for upload in files:
            stored.append(store(service, upload))
        job_id = service.create_job(stored, options, model)
    except BaseException:  # no job, and nothing of its files left behind
        for item in stored:
            service.discard_upload(item)
        raise
    return job_view(service.job(job_id))


@router.get("")
def list_jobs(service: Service, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> list[Any]:
    return [job_view(service.job(j.id)) for j in service.history.list_jobs(limit)]


@router.get("/{job_id}")
def get_job(service: Service, job_id: str) -> dict[str, Any]:
    """Status and progress per file: current file, audio seconds done/total, elapsed, ETA."""
    return job_view(service.job(job_id))


@router.get("/{job_id}/events")
async def job_events(service: Service, job_id: str, request: Request) -> StreamingResponse:
    """The job's status as server-sent events, one per change, until it finishes."""
    service.job(job_id)  # 404 before the stream starts

    async def events() -> AsyncIterator[str]:
        last = ""
        idle = 0.0
        while True:
            view = job_view(service.job(job_id))
            data = json.dumps(view, ensure_ascii=False)
            if data != last:
                last, idle = data, 0.0
                yield f"event: status\ndata: {data}\n\n"
            if view["status"] in ("done", "failed", "cancelled"):
                yield "event: end\ndata: {}\n\n"
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.25)
            idle += 0.25
            if idle >= 15:
                idle = 0.0
                yield ": keep-alive\n\n"

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.post("/{job_id}/cancel")
def cancel_job(service: Service, job_id: str) -> dict[str, Any]:
    return job_view(service.cancel_job(job_id))


@router.delete("/{job_id}")
def delete_job(service: Service, job_id: str) -> dict[str, str]:
    """Delete a job: what is left of it is cancelled, its records and the audio only it used
    are removed. The history entries of its finished files stay."""
    service.delete_job(job_id)
    return {"deleted": job_id}


@router.get("/{job_id}/export")
def export_job(service: Service, job_id: str, format: Literal["csv", "zip"] = "csv") -> Response:
    """CSV: one row per segment (file, start, end, text, language, duration, processing time,
    speaker); zip: TXT, SRT and JSON per file, and RTTM when speakers were told apart."""
    if format == "zip":
        return Response(
            service.job_zip(job_id),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="tingji-job-{job_id}.zip"'},
        )
    return Response(
        "\ufeff" + service.job_csv(job_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="tingji-job-{job_id}.csv"'},
    )
