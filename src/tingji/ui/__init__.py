"""The web UI: a Gradio workstation mounted at ``/`` of the server, calling the service only.

Gradio is imported here lazily, so the API, the CLI and the tests that need no UI do not pay
for it.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from tingji.service import Tingji


def mount(app: FastAPI, service: Tingji) -> FastAPI:
    """Mount the web UI at ``/`` of ``app`` (call it after the API routes are added)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from tingji.ui.app import mount as mount_blocks

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        # Gradio makes (and never closes) a new event loop for each lock it creates outside a
        # running loop; building inside one short-lived loop leaves nothing unclosed behind.
        async def build() -> FastAPI:
            return mount_blocks(app, service)

        return asyncio.run(build())
    return mount_blocks(app, service)
