"""tingji errors → HTTP responses, in one place.

``/v1`` answers in OpenAI's error shape; everything else in tingji's (the same fields under
``error``, plus ``file`` when the error concerns one).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tingji.errors import (
    AudioError,
    BusyError,
    DatabaseError,
    FileTypeError,
    ModelError,
    NotFoundError,
    OptionError,
    OutputError,
    TingjiError,
    TooLargeError,
    TooLongAudioError,
    TooManyFilesError,
)

_STATUS: list[tuple[type[TingjiError], int, str]] = [
    (FileTypeError, 415, "unsupported_format"),
    (TooLongAudioError, 413, "audio_too_long"),
    (AudioError, 400, "bad_audio"),
    (TooManyFilesError, 422, "too_many_files"),
    (TooLargeError, 413, "too_large"),
    (NotFoundError, 404, "not_found"),
    (BusyError, 503, "busy"),
    (DatabaseError, 503, "database_unavailable"),
    (OptionError, 400, "invalid_option"),
    (ModelError, 400, "model_unavailable"),
    (OutputError, 500, "output_error"),
]


def error_body(
    request: Request, status: int, code: str, message: str, file: str | None = None
) -> dict[str, object]:
    if request.url.path.startswith("/v1"):
        kind = "invalid_request_error" if status < 500 else "server_error"
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}
    error: dict[str, object] = {"code": code, "message": message}
    if file is not None:
        error["file"] = file
    return {"error": error}


def install(app: FastAPI) -> None:
    @app.exception_handler(TingjiError)
    async def tingji_error(request: Request, exc: TingjiError) -> JSONResponse:
        status, code = 500, "error"
        for kind, kind_status, kind_code in _STATUS:
            if isinstance(exc, kind):
                status, code = kind_status, kind_code
                break
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, BusyError) else None
        body = error_body(request, status, code, str(exc), exc.source)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(
            error_body(request, exc.status_code, code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}")
        return JSONResponse(
            error_body(request, 422, "invalid_request", "; ".join(parts) or "invalid request"),
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Reached only by what escapes tingji.server.logs.AccessLog, which logs (and answers)
        # the rest; Starlette raises this on to the server, which logs it.
        return internal_error(request, exc)


def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """The 500 answer to an unexpected exception, naming its type only."""
    return JSONResponse(
        error_body(
            request,
            500,
            "internal_error",
            f"internal error ({type(exc).__name__}); the server log has details",
        ),
        status_code=500,
    )
