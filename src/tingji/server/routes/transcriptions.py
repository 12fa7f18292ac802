"""POST /api/transcriptions: one file in, the transcript (saved to history) out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, UploadFile

from tingji.server import logs
from tingji.server.deps import Service, store
from tingji.server.forms import OptionFields, option_fields
from tingji.server.views import transcript_view

router = APIRouter(tags=["recognition"])


@router.post("/api/transcriptions")
def create_transcription(
    service: Service,
    file: Annotated[UploadFile, File(description="audio or video file")],
    fields: Annotated[OptionFields, Depends(option_fields)],
) -> dict[str, Any]:
    """Recognise one file with every engine option; the result is saved to history."""
    options, model = fields.build(service)
    stored = store(service, file)
    try:
        saved = service.recognise_and_save(stored, options, model=model)
    except BaseException:  # a failed recognition keeps no upload
        service.discard_upload(stored)
        raise
    logs.note_transcript(saved.transcript)
    return transcript_view(saved.transcript, saved.entry_id, stored.name)
