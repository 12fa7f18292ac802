"""A script that must run before Gradio's own (``lang.js``: the page language, which Gradio
reads from the browser when it starts). Gradio's ``head`` option adds scripts only once it
runs, so this ASGI middleware writes the script into the page's HTML, first in ``<head>``."""

from __future__ import annotations

from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SCRIPT = Path(__file__).with_name("lang.js")


class EarlyScript:
    """Puts ``<script>`` (``lang.js``) first into the ``<head>`` of the page Gradio serves at
    its root; every other response passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.tag = f"<script>\n{SCRIPT.read_text(encoding='utf-8')}\n</script>".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in ("", "/"):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body = bytearray()

        async def collect(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                kinds = dict(message.get("headers", []))
                if not kinds.get(b"content-type", b"").startswith(b"text/html"):
                    await send(message)  # not the page: pass on as it comes
                    start = {}
                    return
                start = message
                return
            if start == {} or message["type"] != "http.response.body":
                await send(message)  # (the test client's http.response.debug, too)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body"):
                return
            page = bytes(body)
            at = page.find(b"<head>")
            if at >= 0:
                page = page[: at + 6] + self.tag + page[at + 6 :]
            assert start is not None
            headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            headers.append((b"content-length", str(len(page)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, collect)
