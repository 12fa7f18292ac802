"""A script that must run before Gradio's own (``lang.js``: the page language, which Gradio
reads from the browser when it starts). Gradio's ``head`` option adds scripts only once it
runs, so this ASGI middleware writes the script into the page's HTML, first in ``<head>``.

For a switch of language to reach Gradio's own texts at once, the script needs Gradio's i18n
module (``js/core/src/i18n.ts`` in Gradio's source: ``changeLocale``, which Gradio's Settings
panel calls, and ``process_langs``, its catalogues). The build names its file with a hash that
changes from release to release, so :func:`gradio_i18n` finds it in the installed Gradio by
what it exports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from gradio.route_utils import BUILD_PATH_LIB
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SCRIPT = Path(__file__).with_name("lang.js")
GRADIO_I18N = '"__TINGJI_GRADIO_I18N__"'  # what lang.js has where the module's path goes
# `export{…,bt as changeLocale,…}` in a build, `export function changeLocale` unbundled
_EXPORTS = {
    name: re.compile(rf"export\s*\{{[^}}]*\b{name}\b|export\s+(?:async\s+)?function\s+{name}\b")
    for name in ("changeLocale", "process_langs")
}


def gradio_i18n(assets: str = BUILD_PATH_LIB) -> str | None:
    """The path, under Gradio's root, of the built module that exports Gradio's i18n functions
    (``assets/core-….js``; Gradio serves ``assets/`` from ``assets``); None if no file does."""
    for path in sorted(Path(assets).glob("*.js")):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if all(pattern.search(text) for pattern in _EXPORTS.values()):
            return f"assets/{path.name}"
    return None


def script() -> str:
    """``lang.js``, told where Gradio's i18n module is (a look through Gradio's build, once
    for each app: :class:`EarlyScript` keeps the result)."""
    return SCRIPT.read_text(encoding="utf-8").replace(GRADIO_I18N, json.dumps(gradio_i18n()))


class EarlyScript:
    """Puts ``<script>`` (``lang.js``) first into the ``<head>`` of the page Gradio serves at
    its root; every other response passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.tag = f"<script>\n{script()}\n</script>".encode()

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
