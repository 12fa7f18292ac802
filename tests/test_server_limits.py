"""Keys and body sizes are checked before the body is read, over real HTTP.

A uvicorn server runs in a thread on 127.0.0.1 and a raw socket plays the client, so that the
test controls how much of a body is sent and sees when the answer comes. The server's own view
of how much it read is counted by a wrapper around the application.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tingji.config import Settings
from tingji.server.app import create_app

from .conftest import stored_audio

KEY = "a-long-secret-key"
MIB = 1 << 20
PIECE = 64 * 1024
BOUNDARY = "tingjiboundary"


class Meter:
    """ASGI wrapper that counts the body bytes the application took from the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.read = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


class ThreadServer:
    """uvicorn serving ``app`` on a free loopback port, in a thread."""

    def __init__(self, app: ASGIApp) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", ws="none", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@dataclass
class Live:
    server: ThreadServer
    meter: Meter
    settings: Settings

    @property
    def stored(self) -> list[str]:
        return stored_audio(self.settings)


@pytest.fixture
def live(tmp_path: Path, model_cache: Path, request: pytest.FixtureRequest) -> Iterator[Live]:
    extra: dict[str, Any] = getattr(request, "param", {})
    limits: dict[str, Any] = {"max_upload_mb": 1, "max_job_files": 3, **extra}
    settings = Settings(data_dir=tmp_path / "data", models_dir=model_cache, **limits)
    meter = Meter(create_app(settings, ui=False))
    server = ThreadServer(meter)
    try:
        yield Live(server, meter, settings)
    finally:
        server.stop()


@dataclass
class Answer:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    sent: int = 0
    """Body bytes the client got onto the wire before the answer came (or it gave up)."""
    closed: bool = False
    """The server closed the connection after answering."""

    def json(self) -> Any:
        return json.loads(self.body)


def _multipart_head(name: str = "file", filename: str = "big.wav") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
        f'filename="{filename}"\r\nContent-Type: audio/wav\r\n\r\n'
    ).encode()


def send_raw(
    port: int,
    path: str,
    *,
    headers: dict[str, str],
    body: Iterator[bytes],
    chunked: bool = False,
    timeout: float = 10.0,
) -> Answer:
    """Send the request head, then the body piece by piece, stopping as soon as an answer is
    there to read; the body is never finished (no last chunk), so an answer that waits for
    the whole body never comes and the read times out."""
    answer = Answer()
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        for piece in body:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            framed = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
            try:
                sock.sendall(framed)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            answer.sent += len(piece)
        _read_answer(sock, answer)
    return answer


def _read_answer(sock: socket.socket, answer: Answer) -> None:
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        return  # no answer: status stays None
    except ConnectionResetError:
        if b"\r\n\r\n" not in data:
            return
    head, _, rest = data.partition(b"\r\n\r\n")
    if not head:
        return
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    answer.status = int(status_line.split()[1])
    answer.headers = {
        k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)
    }
    length = int(answer.headers.get("content-length", "0"))
    try:
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        answer.body = rest
        answer.closed = sock.recv(1) == b""
    except ConnectionResetError:
        answer.body = rest
        answer.closed = True
    except TimeoutError:
        answer.body = rest


def _zeros(total: int) -> Iterator[bytes]:
    for _ in range(total // PIECE):
        yield bytes(PIECE)


def _multipart_body(total: int) -> Iterator[bytes]:
    yield _multipart_head()
    yield from _zeros(total)


@pytest.mark.parametrize("live", [{"api_keys": [KEY]}], indirect=True)
@pytest.mark.parametrize("path", ["/api/transcriptions", "/api/jobs", "/v1/audio/transcriptions"])
def test_missing_key_is_401_before_the_body(live: Live, path: str) -> None:
    declared = 2 << 30  # 2 GiB promised, 1 MiB sent at most
    answer = send_raw(
        live.server.port,
        path,
        headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(declared),
        },
        body=_multipart_body(1 * MIB),
    )
    assert answer.status == 401, f"no 401 before the body was sent ({answer.sent} bytes sent)"
    assert answer.sent <= 1 * MIB + PIECE
    assert live.meter.read == 0
    assert answer.headers.get("www-authenticate") == "Bearer"
    error = answer.json()["error"]
    assert error["code"] == "unauthorized"
    assert "API key" in error["message"]
    assert live.stored == []


@pytest.mark.parametrize("live", [{"api_keys": [KEY]}], indirect=True)
def test_wrong_key_is_401_before_the_body(live: Live) -> None:
    answer = send_raw(
        live.server.port,
        "/api/transcriptions",
        headers={
            "Authorization": "Bearer not-the-key",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(2 << 30),
        },
        body=_multipart_body(1 * MIB),
    )
    assert answer.status == 401
    assert live.meter.read == 0
    assert answer.closed


@pytest.mark.parametrize("live", [{"api_keys": [KEY]}], indirect=True)
@pytest.mark.parametrize(
    ("path", "declared"),
    [
        ("/api/transcriptions", 5 * MIB),
        ("/v1/audio/transcriptions", 5 * MIB),
        ("/v1/audio/translations", 5 * MIB),
        ("/api/jobs", 5 * MIB),  # over 3 files of 1 MiB
    ],
)
def test_declared_length_over_the_limit_is_413_before_the_body(
    live: Live, path: str, declared: int
) -> None:
    answer = send_raw(
        live.server.port,
        path,
        headers={
            "X-API-Key": KEY,
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(declared),
        },
        body=_multipart_body(1 * MIB),
    )
    assert answer.status == 413, f"no 413 before the body was sent ({answer.sent} bytes sent)"
    assert live.meter.read == 0
    assert answer.closed
    error = answer.json()["error"]
    assert error["code"] == "too_large"
    assert "MiB" in error["message"]
    if path.startswith("/v1"):
        assert error["type"] == "invalid_request_error"  # OpenAI's shape
        assert set(error) == {"message", "type", "param", "code"}
    assert live.stored == []


@pytest.mark.parametrize("path", ["/api/transcriptions", "/api/jobs", "/v1/audio/transcriptions"])
def test_chunked_body_over_the_limit_is_cut_off(live: Live, path: str) -> None:
    limit = MIB * (live.settings.max_job_files if path == "/api/jobs" else 1)
    offered = limit + 64 * MIB  # more than loopback's buffers take in (up to 32 + 4 MiB)
    answer = send_raw(
        live.server.port,
        path,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        body=_multipart_body(offered),
        chunked=True,
        timeout=20.0,
    )
    assert answer.status == 413, f"no 413 while the body was coming ({answer.sent} bytes sent)"
    assert answer.sent < offered  # answered while the client was still sending
    assert live.meter.read <= limit + 2 * MIB  # the server stopped reading near the limit
    assert answer.closed  # and closed the connection: the rest of the upload is not taken
    assert answer.json()["error"]["code"] == "too_large"
    assert live.stored == []
    assert list(live.settings.data_dir.rglob("*.part")) == []


def test_chunked_body_within_the_limit_still_works(live: Live) -> None:
    """The counting does not get in the way of an ordinary chunked upload (a WAV header
    that is not audio is refused as such, not as too large)."""
    body = [_multipart_head(), b"RIFF" + bytes(2000), f"\r\n--{BOUNDARY}--\r\n".encode()]
    with socket.create_connection(("127.0.0.1", live.server.port), timeout=10) as sock:
        head = (
            f"POST /api/transcriptions HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
        sock.sendall(head + b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in body))
        sock.sendall(b"0\r\n\r\n")
        answer = Answer()
        _read_answer(sock, answer)
    assert answer.status == 400, answer.body
    assert answer.json()["error"]["file"] == "big.wav"
    assert live.stored == []


def test_other_requests_have_a_bound_too(live: Live) -> None:
    answer = send_raw(
        live.server.port,
        "/api/history/delete",
        headers={"Content-Type": "application/json", "Content-Length": str(1 << 30)},
        body=_zeros(1 * MIB),
    )
    assert answer.status == 413
    assert live.meter.read == 0


def test_web_ui_upload_of_many_files_is_cut_off_at_the_batch_limit(
    tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gradio bounds each file (``max_file_size``) but not how many a request brings: files
    just under the limit add up without end. The batch limit cuts such a body off, and the
    files Gradio had begun to write are deleted."""
    gradio_dir = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(gradio_dir))
    settings = Settings(
        data_dir=tmp_path / "data", models_dir=model_cache, max_upload_mb=1, max_job_files=3
    )
    meter = Meter(create_app(settings))
    server = ThreadServer(meter)
    part = 900 * 1024  # under Gradio's own limit of 1 MiB a file

    def files() -> Iterator[bytes]:
        for n in range(16):  # 14 MiB in all, the batch limit is 3 files of 1 MiB
            yield (b"\r\n" if n else b"") + _multipart_head("files", f"{n}.wav")
            for _ in range(part // PIECE):
                yield bytes(PIECE)

    try:
        answer = send_raw(
            server.port,
            "/gradio_api/upload",
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            body=files(),
            chunked=True,
            timeout=20.0,
        )
    finally:
        server.stop()
    assert answer.status == 413, f"no 413 while the body was coming ({answer.sent} bytes sent)"
    assert meter.read <= 6 * MIB
    assert answer.json()["error"]["code"] == "too_large"
    assert [p for p in gradio_dir.rglob("*") if p.is_file()] == []
