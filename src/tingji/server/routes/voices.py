"""Voice profiles: enrol a named voice (from a clip, or a speaker of a past entry), list, delete.
Recordings diarized afterwards label a speaker who sounds like one with its name."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, Field

from tingji.jobs.storage import Voice
from tingji.server.deps import Service
from tingji.server.views import iso

router = APIRouter(prefix="/api/voices", tags=["speakers"])


def _view(voice: Voice) -> dict[str, Any]:
    return {"name": voice.name, "source": voice.source, "created_at": iso(voice.created_at)}


@router.get("")
def list_voices(service: Service) -> list[dict[str, Any]]:
    return [_view(v) for v in service.voices()]


@router.post("", status_code=201)
def enrol(
    service: Service,
    name: Annotated[str, Form(min_length=1, max_length=64, description="王经理")],
    file: Annotated[UploadFile, File(description="3–30 s of that person alone")],
) -> dict[str, Any]:
    """Enrol a voice from a clip (the clip is not kept; its voice embedding is)."""
    label = (file.filename or "clip").replace("\\", "/").rsplit("/", 1)[-1]
    return _view(service.enrol_voice(name, file.file, label))


class FromEntry(BaseModel):
    entry_id: int
    speaker: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=64)


@router.post("/from-entry", status_code=201)
def enrol_from_entry(service: Service, body: FromEntry) -> dict[str, Any]:
    """Enrol a speaker of a past entry (its stored audio) under a name."""
    return _view(service.enrol_from_entry(body.entry_id, body.speaker, body.name))


@router.delete("/{name}")
def delete_voice(service: Service, name: str) -> dict[str, int]:
    service.delete_voice(name)
    return {"deleted": 1}
