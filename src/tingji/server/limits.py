"""Request bodies are bounded before the application reads them.

FastAPI reads (and spools to disk) a whole multipart body before any dependency runs, so the
API-key check and the size check of a route come only after the last byte has arrived.
:class:`BodyLimits` sits in front of the application and, for every HTTP request:

- to ``/api`` and ``/v1`` with a method that carries a body, answers 401 at once when the key
  is missing or wrong (the rule of :func:`tingji.server.access.authorised`, as ``require_key``);
- answers 413 at once when ``Content-Length`` is over the path's limit (:func:`body_limit`);
- counts the bytes as the application reads them and, once they pass the limit (a chunked
  body, or one longer than it said), stops the application's reading and answers 413.

A refusal closes the connection, so that what the client still sends is not read. The error
bodies are those of :mod:`tingji.server.errors` (OpenAI's shape under ``/v1``).
"""

from __future__ import annotations

from starlette.formparsers import MultiPartException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tingji.server.access import authorised
from tingji.server.errors import error_body
from tingji.service import Tingji

SINGLE_UPLOADS = frozenset(
    {"/api/transcriptions", "/v1/audio/transcriptions", "/v1/audio/translations"}
)
"""Endpoints that take one audio file."""
BATCH_UPLOADS = frozenset({"/api/jobs", "/gradio_api/upload"})
"""Endpoints that take up to ``max_job_files`` files (the web UI uploads a batch in one request)."""
FORM_ALLOWANCE = 1 << 20
"""Bytes allowed beside the files of an upload: multipart headers and form fields."""
OTHER_BODY_BYTES = 16 << 20
"""Largest body of any other request (JSON of the API and of the web UI), in bytes."""
KEY_REQUIRED = "a valid API key is required (Authorization: Bearer KEY or X-API-Key)"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_API_PREFIXES = ("/api/", "/v1/")


class BodyTooLarge(MultiPartException):
    """Raised to the application from ``receive`` once its body passes the limit.

    A multipart error on purpose: Starlette's and Gradio's form parsers close (and Gradio's
    delete) the files they were writing when one reaches them.
    """


def body_limit(service: Tingji, path: str) -> tuple[int, str]:
    """Most bytes a request body to ``path`` may have, and the limit in words."""
    per_file = service.audio_store.max_bytes
    mib = f"{per_file / 2**20:.3g} MiB"
    if path in SINGLE_UPLOADS:
        return per_file + FORM_ALLOWANCE, f"the {mib} upload limit"
    if path in BATCH_UPLOADS:
        files = service.settings.max_job_files
        return per_file * files + FORM_ALLOWANCE, f"the upload limit ({files} files of {mib})"
    return OTHER_BODY_BYTES, f"the {OTHER_BODY_BYTES / 2**20:.3g} MiB limit of a request"


class BodyLimits:
    """ASGI middleware: keys and body sizes checked before, and while, a body is read."""

    def __init__(self, app: ASGIApp, service: Tingji) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        connection = HTTPConnection(scope)
        if scope["method"] in _BODY_METHODS and path.startswith(_API_PREFIXES):
            settings = self.service.settings
            if not authorised(
                settings, connection.headers, connection.query_params, connection.cookies
            ):
                await _refuse(scope, send, 401, "unauthorized", KEY_REQUIRED, bearer=True)
                return
        limit, words = body_limit(self.service, path)
        too_large = f"the request is larger than {words}"
        length = connection.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await _refuse(scope, send, 413, "too_large", too_large)
            return
        await _Counted(self.app, limit, too_large)(scope, receive, send)


class _Counted:
    """One request whose body is counted as the application reads it."""

    def __init__(self, app: ASGIApp, limit: int, message: str) -> None:
        self.app = app
        self.limit = limit
        self.message = message
        self.received = 0
        self.exceeded = False
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> Message:
            if self.exceeded:
                raise BodyTooLarge(self.message)
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    self.exceeded = True
                    raise BodyTooLarge(self.message)
            return message

        async def guarded_send(message: Message) -> None:
            if self.exceeded and not self.started:
                return  # the application's answer to the cut-off body; ours follows
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not self.exceeded or self.started:
                raise
        if self.exceeded and not self.started:
            await _refuse(scope, send, 413, "too_large", self.message)


async def _refuse(
    scope: Scope, send: Send, status: int, code: str, message: str, *, bearer: bool = False
) -> None:
    """Answer without reading (the rest of) the body, and close the connection after it."""
    headers = {"Connection": "close"}
    if bearer:
        headers["WWW-Authenticate"] = "Bearer"
    body = error_body(Request(scope), status, code, message)
    response = JSONResponse(body, status_code=status, headers=headers)
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _route_path(scope: Scope) -> str:
    """The path below the server's root path, without a trailing slash."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.rstrip("/") or "/"
