"""``create_app(settings)``: the FastAPI application: the API, and the web UI mounted at ``/``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match

from tingji import __version__
from tingji.config import Settings
from tingji.server import access, docs, errors, limits, logs, redact
from tingji.server.deps import require_key
from tingji.server.routes import (
    history,
    jobs,
    openai,
    streaming,
    system,
    transcriptions,
    voices,
)
from tingji.service import Tingji

log = logging.getLogger("tingji.server")


def create_app(
    settings: Settings | None = None, service: Tingji | None = None, *, ui: bool = True
) -> FastAPI:
    """The API at ``/api``, ``/v1``, ``/docs`` and ``/healthz``; the web UI at ``/`` (``ui``)."""
    settings = settings or Settings()
    service = service or Tingji(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start_jobs()
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    app = FastAPI(
        title="tingji 听记",
        version=__version__,
        description="Self-hosted speech-to-text: recognition, batch jobs, history.",
        lifespan=lifespan,
        docs_url=None,  # served by tingji.server.docs, from local files
        redoc_url=None,
    )
    app.state.service = service
    docs.install(app)
    errors.install(app)
    redact.install()
    app.add_middleware(limits.BodyLimits, service=service)  # keys and sizes before the body
    if settings.access_token:  # a server reachable beyond loopback: see tingji.server.access
        app.add_middleware(access.TokenGate, settings=settings)
    app.add_middleware(logs.AccessLog, mode=settings.access_log)  # outermost: sees every answer
    protected = [Depends(require_key)]
    for router in (
        transcriptions.router,
        openai.router,
        jobs.router,
        history.router,
        voices.router,
        system.router,
    ):
        app.include_router(router, dependencies=protected)
    app.include_router(system.health)
    app.include_router(streaming.router)  # WebSocket at "/" and "/ws/asr"; checks keys itself
    for prefix in ("/api", "/v1"):  # JSON errors there, not the web UI's 404 page
        app.add_api_route(
            prefix + "/{rest:path}",
            _no_such_endpoint,
            methods=list(_METHODS),
            include_in_schema=False,
        )
    if ui:
        from tingji.ui import mount

        mount(app, service)  # at "/", after the API routes so that those keep precedence
    return app


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


async def _no_such_endpoint(request: Request) -> None:
    """404 (or 405 when the path exists for another method) in the API's own error shape."""
    for route in request.app.router.routes:
        if getattr(route, "endpoint", None) is _no_such_endpoint:
            continue
        match, _ = route.matches(request.scope)
        if match == Match.PARTIAL:
            raise HTTPException(405, "Method Not Allowed")
    raise HTTPException(404, f"no endpoint {request.url.path}")
