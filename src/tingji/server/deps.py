"""Request dependencies: the service, API-key checks, upload handling."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, UploadFile

from tingji.errors import TooLargeError
from tingji.jobs.audio_store import StoredAudio
from tingji.service import Tingji


def get_service(request: Request) -> Tingji:
    service: Tingji = request.app.state.service
    return service


Service = Annotated[Tingji, Depends(get_service)]


def require_key(request: Request) -> None:
    """``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` when keys are configured."""
    keys = get_service(request).settings.api_keys
    if not keys:
        return
    given = request.headers.get("x-api-key", "")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if not any(hmac.compare_digest(given.encode(), key.encode()) for key in keys):
        raise HTTPException(
            401,
            "a valid API key is required (Authorization: Bearer KEY or X-API-Key)",
            headers={"WWW-Authenticate": "Bearer"},
        )


def check_length(request: Request) -> None:
    """Refuse an over-size body before reading it, when the client says its length."""
    service = get_service(request)
    length = request.headers.get("content-length")
    limit = service.audio_store.max_bytes
    files = service.settings.max_job_files if request.url.path.startswith("/api/jobs") else 1
    if length and length.isdigit() and int(length) > limit * files + (1 << 20):
        raise TooLargeError(
            f"the request is larger than the upload limit ({limit / 2**20:.3g} MiB)"
        )


def store(service: Tingji, upload: UploadFile) -> StoredAudio:
    """Copy an upload into the audio store under a generated name."""
    name = (upload.filename or "upload").replace("\\", "/").rsplit("/", 1)[-1] or "upload"
    return service.save_upload(upload.file, name)
