"""Request dependencies: the service, API-key checks, upload handling.

Body sizes, and the key of a request that brings one, are checked before the body is read,
by :mod:`tingji.server.limits`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, UploadFile

from tingji.jobs.audio_store import StoredAudio
from tingji.server.access import authorised
from tingji.server.limits import KEY_REQUIRED
from tingji.service import Tingji


def get_service(request: Request) -> Tingji:
    service: Tingji = request.app.state.service
    return service


Service = Annotated[Tingji, Depends(get_service)]


def require_key(request: Request) -> None:
    """A configured API key or the access token (:func:`tingji.server.access.authorised`)."""
    settings = get_service(request).settings
    if not authorised(settings, request.headers, request.query_params, request.cookies):
        raise HTTPException(401, KEY_REQUIRED, headers={"WWW-Authenticate": "Bearer"})


def store(service: Tingji, upload: UploadFile) -> StoredAudio:
    """Copy an upload into the audio store under a generated name."""
    name = (upload.filename or "upload").replace("\\", "/").rsplit("/", 1)[-1] or "upload"
    return service.save_upload(upload.file, name)
