"""One log line per request that did work, and every failure with its reason (``tingji.http``).

:class:`AccessLog` replaces uvicorn's access log (``tingji serve`` turns that off). With the
default ``access_log="api"`` it writes:

- every request to the API (``/api``, ``/v1``): ``POST /api/transcriptions 200 1834 ms: 12.3 s
  of audio, base on cpu`` at INFO; a client error (4xx) at WARNING with the message the client
  got; a server error (5xx) at ERROR;
- for any other path (the web UI, ``/docs``) only its failures, and for the web UI's assets and
  polling (:data:`QUIET_PREFIXES`: Gradio's files, heartbeats and queue, ``/healthz``) only its
  server errors.

``access_log="all"`` writes a line for every HTTP request. In an address the values of
``api_key``, ``token`` and ``ticket`` are written as ``***`` (:func:`safe_query`, however the
name is spelt: ``api%5Fkey`` too); reasons pass through :func:`tingji.server.redact.redact`.
An exception that no handler turned into a response is logged here, once, with its traceback,
and answered by :func:`tingji.server.errors.internal_error`. WebSocket connections pass through
untouched.
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from http import HTTPStatus
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tingji.server.errors import internal_error
from tingji.server.redact import SECRET_PARAMS, redact

if TYPE_CHECKING:
    from tingji.types import Transcript

log = logging.getLogger("tingji.http")

AccessLogMode = Literal["api", "all"]
API_PREFIXES = ("/api/", "/v1/")
QUIET_PREFIXES = (
    "/assets/",
    "/static/",
    "/gradio_api/",
    "/docs/assets/",
    "/custom_component/",
    "/favicon.ico",
    "/manifest.json",
    "/theme.css",
    "/config",
    "/healthz",
)
"""The web UI's files and polling, and health probes: logged only when they fail with a 5xx."""
REASON_BYTES = 4096
"""Most bytes of an error response read for the reason in its log line."""
REASON_CHARS = 300
"""Longest reason written, in characters."""

_outcome: ContextVar[list[str] | None] = ContextVar("tingji_http_outcome", default=None)


def note(text: str) -> None:
    """Add ``text`` to the log line of the request being answered (nothing outside one)."""
    notes = _outcome.get()
    if notes is not None:
        notes.append(text)


def note_transcript(transcript: Transcript) -> None:
    """The audio length and model of a recognition, for its request's log line."""
    model = transcript.model
    note(f"{transcript.duration:.1f} s of audio, {model.name} on {model.device}")


def line(method: str, path: str, status: int | None, ms: float, outcome: str = "") -> str:
    """``POST /api/transcriptions 200 1834 ms: 12.3 s of audio, base on cpu``, on one line."""
    text = f"{method} {_printable(path)} {status if status is not None else '-'} {ms:.0f} ms"
    outcome = _one_line(outcome)
    return f"{text}: {outcome}" if outcome else text


def safe_query(query: str) -> str:
    """``query`` re-encoded with the values of the secret parameters as ``***``."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(
        f"{quote(name, safe='')}={'***' if name.lower() in SECRET_PARAMS else quote(value)}"
        for name, value in pairs
    )


def wanted(path: str, status: int | None, mode: AccessLogMode = "api") -> bool:
    """Whether a request to ``path`` answered with ``status`` gets a line."""
    if mode == "all" or (status is not None and status >= 500):
        return True
    if path.startswith(API_PREFIXES) or path in ("/api", "/v1"):
        return True
    failed = status is None or status >= 400  # None: the client left before an answer
    return failed and not path.startswith(QUIET_PREFIXES)


def reason(body: bytes, content_type: str, status: int) -> str:
    """The message an error response gave its client: ``error.message`` or ``detail`` of a
    JSON body, the first line of a text one, else the status's phrase."""
    text = body.decode("utf-8", "replace")
    found: object = None
    if "json" in content_type:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            error = data.get("error")
            found = error.get("message") if isinstance(error, dict) else error
            found = found or data.get("detail")
        if isinstance(found, list):  # FastAPI's validation errors, from a sub-application
            found = "; ".join(str(e.get("msg", e) if isinstance(e, dict) else e) for e in found)
    elif content_type.startswith("text/plain"):
        found = text.strip().splitlines()[0] if text.strip() else None
    if not found:
        try:
            found = HTTPStatus(status).phrase
        except ValueError:
            found = ""
    return redact(str(found))


class AccessLog:
    """ASGI middleware, outermost: times each HTTP request and logs it per :func:`wanted`."""

    def __init__(self, app: ASGIApp, mode: AccessLogMode = "api") -> None:
        self.app = app
        self.mode = mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _Request(self.mode, scope).serve(self.app, receive, send)


class _Request:
    """One HTTP request on its way through: what was answered, and its line once it is done."""

    def __init__(self, mode: AccessLogMode, scope: Scope) -> None:
        self.mode = mode
        self.scope = scope
        self.method: str = scope.get("method", "")
        self.path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        self.route = self.path[len(root) :] if root and self.path.startswith(root) else self.path
        query = scope.get("query_string", b"").decode("latin-1")
        self.target = self.path + (f"?{safe_query(query)}" if query else "")
        self.start = time.perf_counter()
        self.status: int | None = None
        self.content_type = ""
        self.body = bytearray()
        self.logging = False
        self.done = False
        self.notes: list[str] = []

    async def serve(self, app: ASGIApp, receive: Receive, send: Send) -> None:
        async def watched_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                self._started(message)
            elif kind == "http.response.body":
                self._read(message)
            await send(message)
            if kind == "http.response.body" and not message.get("more_body", False):
                self._finish()

        token = _outcome.set(self.notes)
        try:
            await app(self.scope, receive, watched_send)
        except Exception as exc:
            self._failed(exc)
            if self.status is None:
                response = internal_error(Request(self.scope), exc)
                await response(self.scope, receive, send)
            # not raised on: it is logged, and the server would log it a second time
        finally:
            _outcome.reset(token)
            self._finish()

    def _started(self, message: Message) -> None:
        self.status = int(message["status"])
        self.logging = wanted(self.route, self.status, self.mode)
        for name, value in message.get("headers", []):
            if name.lower() == b"content-type":
                self.content_type = value.decode("latin-1").lower()

    def _read(self, message: Message) -> None:
        """Keep the start of an error response's body, for its reason."""
        if self.logging and self.status is not None and self.status >= 400:
            room = REASON_BYTES - len(self.body)
            if room > 0:
                self.body += message.get("body", b"")[:room]

    def _ms(self) -> float:
        return (time.perf_counter() - self.start) * 1000

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        status = self.status
        if status is None:
            if wanted(self.route, None, self.mode):
                log.warning(line(self.method, self.target, None, self._ms(), "no response"))
            return
        if not self.logging:
            return
        if status >= 400:
            outcome = reason(bytes(self.body), self.content_type, status)
        else:
            outcome = ", ".join(self.notes)
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        log.log(level, line(self.method, self.target, status, self._ms(), outcome))

    def _failed(self, exc: Exception) -> None:
        """The line of a request whose handling raised, with the traceback (in ``except``)."""
        self.done = True
        if self.status is None:
            outcome = f"{type(exc).__name__}: {exc}"
            status: int | None = 500
        else:
            outcome = f"{type(exc).__name__} after the response started: {exc}"
            status = self.status
        log.exception(line(self.method, self.target, status, self._ms(), redact(outcome)))


def _printable(text: str, limit: int = 300) -> str:
    """``text`` with control characters escaped (a path cannot start a forged log line)."""
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:limit])
    return shown + ("…" if len(text) > limit else "")


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat[:REASON_CHARS] + ("…" if len(flat) > REASON_CHARS else "")
