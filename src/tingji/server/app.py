"""``create_app(settings)``: the FastAPI application (API now, web UI mounted at ``/`` later)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from tingji import __version__
from tingji.config import Settings
from tingji.server import errors
from tingji.server.deps import require_key
from tingji.server.routes import history, jobs, openai, system, transcriptions
from tingji.service import Tingji

log = logging.getLogger("tingji.server")


def create_app(settings: Settings | None = None, service: Tingji | None = None) -> FastAPI:
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
    )
    app.state.service = service
    errors.install(app)
    protected = [Depends(require_key)]
    for router in (
        transcriptions.router,
        openai.router,
        jobs.router,
        history.router,
        system.router,
    ):
        app.include_router(router, dependencies=protected)
    app.include_router(system.health)
    return app
