"""The web UI's files: a private folder in the data dir, and the rule that a client may use only
the files it uploaded there.

Layout (emptied when the app starts and when it stops)::

    <data_dir>/tmp/               mode 0700
      ui/                         Gradio's upload folder and cache (GRADIO_TEMP_DIR), mode 0700
        <sha256>/<name>           an upload, as Gradio stores it
        tingji/<hex>/<file>       tingji's scratch: downloads, the History player's audio

Gradio copies (so reads) whatever server path a request's ``FileData`` names into its cache
before a handler runs, and fetches a ``path`` that is a URL; its own "uploaded files only" check
is off in an app mounted with ``gr.mount_gradio_app``. So :class:`UploadGuard` reads each
request body the UI's API gets before Gradio does: a file reference that names no upload here,
decided by comparing path strings (nothing is opened or read), is replaced by
:attr:`UiFiles.refused`, a name in tingji's scratch that never exists. The handlers open files
only through :meth:`UiFiles.open_upload`, which refuses that name and every other path outside
the uploads with :class:`NotUploadedError`, shown as one plain message whatever was named.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tingji.errors import TingjiError

GRADIO_TEMP_ENV = "GRADIO_TEMP_DIR"
FILE_META = {"_type": "gradio.FileData"}
_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotUploadedError(TingjiError):
    """A file reference that names no file this page uploaded (or one no longer kept)."""

    def __init__(self) -> None:
        super().__init__("only a file uploaded on this page can be used")


class UiFiles:
    """The private folder of one app's web UI (see the module docstring)."""

    def __init__(self, temp_dir: Path) -> None:
        self.parent = Path(os.path.realpath(temp_dir))
        self.root = self.parent / "ui"
        """Gradio's upload folder and cache."""
        self.scratch = self.root / "tingji"
        """Files tingji offers; never an input."""
        self.refused = self.scratch / "refused.wav"
        """What a refused file reference is replaced with; it never exists."""
        self._previous_env: str | None = None

    # -- the folder --------------------------------------------------------------------------
    def prepare(self) -> None:
        """An empty folder only this user can enter (what a killed run left is removed)."""
        self.parent.mkdir(parents=True, exist_ok=True)
        self.parent.chmod(0o700)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(mode=0o700, exist_ok=True)
        self.root.chmod(0o700)  # mkdir's mode is masked by the umask

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def claim_gradio_temp(self) -> None:
        """Point Gradio's temp dir here. Gradio reads it when it makes a component or the app,
        and while it serves; it is one per process, so the app that started last has it."""
        current = os.environ.get(GRADIO_TEMP_ENV)
        if current != str(self.root):
            self._previous_env = current
        os.environ[GRADIO_TEMP_ENV] = str(self.root)

    def release_gradio_temp(self) -> None:
        """Give Gradio's temp dir back as it was, unless another app has claimed it since."""
        if os.environ.get(GRADIO_TEMP_ENV) != str(self.root):
            return
        if self._previous_env is None:
            os.environ.pop(GRADIO_TEMP_ENV, None)
        else:
            os.environ[GRADIO_TEMP_ENV] = self._previous_env

    # -- the rule ----------------------------------------------------------------------------
    def holds(self, path: object) -> bool:
        """Whether ``path`` names an upload: inside the folder and outside tingji's scratch.

        Decided on the path string first, so that the server's own files (its database above
        all) are refused untouched; then on the path with its links resolved (names looked
        up, nothing opened).
        """
        if not isinstance(path, str) or not path or "\0" in path:
            return False
        for resolve in (os.path.abspath, os.path.realpath):
            candidate = resolve(path)
            if not _inside(candidate, self.root) or _inside(candidate, self.scratch):
                return False
        return True

    def accepts(self, ref: dict[str, Any]) -> bool:
        """Whether a ``FileData`` may reach Gradio: its path an upload, and a ``url`` (never
        fetched) at most the app's own link to that path, as the page sends it."""
        path, url = ref.get("path"), ref.get("url")
        if not self.holds(path):
            return False
        return url is None or url == "" or (isinstance(url, str) and _links_to(url, str(path)))

    def refused_ref(self) -> dict[str, Any]:
        return {"path": str(self.refused), "orig_name": self.refused.name, "meta": FILE_META}

    def open_upload(self, path: str | Path) -> BinaryIO:
        """An upload opened for reading; anything else is :class:`NotUploadedError`."""
        name = os.fspath(path)
        if not self.holds(name):
            raise NotUploadedError()
        try:
            return open(name, "rb")  # noqa: SIM115 (the caller closes it)
        except OSError as exc:  # pruned from the cache since, or not a file
            raise NotUploadedError() from exc

    def clean(self, data: Any) -> bool:
        """Replace, in place, each file reference in ``data`` that :meth:`accepts` refuses.

        Every dict with a ``path`` or FileData's ``meta`` counts, at any depth (Gradio looks
        inside dicts that it does not take for files); True when one was replaced.
        """
        replaced = False
        stack = [data]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                items = list(node.items())
            elif isinstance(node, list):
                items = list(enumerate(node))
            else:
                continue
            for key, value in items:
                if isinstance(value, dict) and _is_file_ref(value) and not self.accepts(value):
                    node[key] = self.refused_ref()
                    replaced = True
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        return replaced


def _inside(path: str, folder: Path) -> bool:
    return path.startswith(str(folder) + os.sep)


def _is_file_ref(value: dict[str, Any]) -> bool:
    return "path" in value or value.get("meta") == FILE_META


def _links_to(url: str, path: str) -> bool:
    return unquote(urlsplit(url).path).endswith("/file=" + path)


class UploadGuard:
    """ASGI middleware of the Gradio app: :meth:`UiFiles.clean` on every request body that
    is not a form (uploads and the login are), before Gradio parses it; and no URL through
    ``/file=`` (Gradio would fetch it)."""

    def __init__(self, app: ASGIApp, files: UiFiles) -> None:
        self.app = app
        self.files = files

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _names_a_url(scope["path"]):
            await PlainTextResponse("File not allowed.", status_code=403)(scope, receive, send)
            return
        content_type = _header(scope, b"content-type").lower()
        if scope["method"] not in _BODY_METHODS or content_type.startswith(_FORMS):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client went away
            return
        cleaned = self._clean(body)
        if cleaned is not body:
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
            headers.append((b"content-length", str(len(cleaned)).encode()))
            scope = {**scope, "headers": headers}
        await self.app(scope, _replay(cleaned, receive), send)

    def _clean(self, body: bytes) -> bytes:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # not JSON: Gradio refuses it as well
            return body
        if not self.files.clean(data):
            return body
        return json.dumps(data, ensure_ascii=False).encode()


def _names_a_url(path: str) -> bool:
    _, found, rest = path.partition("/file=")
    return bool(found) and rest.lower().startswith(("http:", "https:"))


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over ``body`` whole, then the client's later messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
