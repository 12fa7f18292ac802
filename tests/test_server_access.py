"""Who gets in, over real HTTP: ``tingji serve`` in a subprocess (see ``LiveServer``).

Servers bound beyond loopback (0.0.0.0, ``0``) are reached at 127.0.0.1 only: the rule is about
the bind address, and the traffic stays on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tingji.server import access, redact, tls

from .test_server_live import LiveServer

READY = "(API docs at /docs)"
FINGERPRINT = re.compile(r"SHA-256 fingerprint ([0-9A-F]{2}(?::[0-9A-F]{2}){31})")


def _token_in(log: str, port: int) -> str:
    found = re.search(rf"http://127\.0\.0\.1:{port}/\?token=([A-Za-z0-9_-]+)", log)
    assert found, log
    return found.group(1)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[LiveServer]:
    """Bound to 0.0.0.0 with no API key, no UI password and no --no-auth."""
    root = tmp_path_factory.mktemp("guarded")
    server = LiveServer(root / "data", model_cache, root / "logs", host="0.0.0.0")
    try:
        server.wait_ready()
        server.wait_for_log(READY)
        yield server
    finally:
        server.stop()


def _trusting(certfile: Path) -> ssl.SSLContext:
    """A client context that trusts ``certfile`` only."""
    return ssl.create_default_context(cafile=str(certfile))


def _ws_answer(url: str) -> tuple[dict[str, Any] | None, int | None]:
    """Connect, send a config frame the protocol refuses, and return the first message and the
    close code: an ``unauthorized`` refusal before the frame is read, else ``bad_request``."""

    async def talk() -> tuple[dict[str, Any] | None, int | None]:
        async with websockets.connect(url, open_timeout=10, close_timeout=5) as ws:
            with contextlib.suppress(websockets.ConnectionClosed):  # refused before reading
                await ws.send(json.dumps({"mode": "no-such-mode"}))
            try:
                first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            except websockets.ConnectionClosed:
                first = None
            await asyncio.wait_for(ws.wait_closed(), 10)
            return first, ws.close_code

    return asyncio.run(talk())


# -- the rule, without a server ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("0", False),
        ("::", False),
        ("", False),
        ("192.168.1.20", False),
        ("fd00::2", False),
        ("workstation.lan", False),
    ],
)
def test_loopback_only_decides_by_bind_address(host: str, loopback: bool) -> None:
    assert access.loopback_only(host) is loopback


def test_redact_hides_key_token_and_ticket() -> None:
    line = "GET /api/history?q=x&api_key=s3cret&token=abc&ticket=1.ff&lang=en HTTP/1.1"
    assert redact.redact(line) == (
        "GET /api/history?q=x&api_key=***&token=***&ticket=***&lang=en HTTP/1.1"
    )


# -- a server bound beyond loopback ------------------------------------------------------------
def test_open_bind_prints_a_token_url_and_keeps_it_private(guarded: LiveServer) -> None:
    token = _token_in(guarded.stderr, guarded.port)
    path = guarded.data_dir / "access-token"
    assert path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 32
    assert "NO API key" not in guarded.stderr


def test_no_token_is_401(guarded: LiveServer) -> None:
    api = httpx.get(f"{guarded.url}/api/history", timeout=10)
    assert api.status_code == 401
    assert api.json()["error"]["code"] == "unauthorized"
    assert api.headers["www-authenticate"] == "Bearer"
    v1 = httpx.get(f"{guarded.url}/v1/models", timeout=10)
    assert v1.status_code == 401
    assert v1.json()["error"]["code"] == "unauthorized"  # OpenAI's shape under /v1
    page = httpx.get(f"{guarded.url}/", timeout=10)
    assert page.status_code == 401
    assert page.headers["content-type"].startswith("text/html")
    assert "访问令牌" in page.text and "access token" in page.text
    assert "gradio" not in page.text.lower()
    wrong = httpx.get(f"{guarded.url}/?token=not-the-token", timeout=10)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    assert httpx.get(f"{guarded.url}/healthz", timeout=10).status_code == 200


def test_token_as_bearer_key_or_query(guarded: LiveServer) -> None:
    token = _token_in(guarded.stderr, guarded.port)
    url = f"{guarded.url}/api/history"
    for kwargs in (
        {"headers": {"Authorization": f"Bearer {token}"}},
        {"headers": {"X-API-Key": token}},
        {"params": {"api_key": token}},
    ):
        answer = httpx.get(url, timeout=10, **kwargs)
        assert answer.status_code == 200, (kwargs, answer.text)
        assert answer.json()["items"] == []
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401


def test_token_url_sets_a_cookie_for_the_page_and_the_api(guarded: LiveServer) -> None:
    token = _token_in(guarded.stderr, guarded.port)
    with httpx.Client(base_url=guarded.url, timeout=30) as browser:
        entered = browser.get(f"/?token={token}&lang=en")
        assert entered.status_code == 303
        assert entered.headers["location"] == "/?lang=en"  # the token leaves the address bar
        cookie = entered.headers["set-cookie"]
        assert f"tingji_token_{guarded.port}={token}" in cookie
        assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
        assert "Secure" not in cookie  # plain http here
        page = browser.get("/?lang=en")
        assert page.status_code == 200 and "gradio" in page.text.lower()
        assert browser.get("/api/history").status_code == 200
        assert browser.get("/config").status_code == 200  # Gradio's own routes too


def test_websocket_needs_the_token(guarded: LiveServer) -> None:
    token = _token_in(guarded.stderr, guarded.port)
    ws_url = f"ws://127.0.0.1:{guarded.port}/ws/asr"
    refused, code = _ws_answer(ws_url)
    assert refused is not None and refused["code"] == "unauthorized", refused
    assert code == 1008
    for query in (f"?api_key={token}", f"?token={token}"):
        answered, code = _ws_answer(ws_url + query)
        assert answered is not None and answered["code"] == "bad_request", (query, answered)
        assert code == 1007


def test_access_log_hides_the_token(guarded: LiveServer) -> None:
    token = _token_in(guarded.stderr, guarded.port)
    answer = httpx.get(f"{guarded.url}/api/history", params={"api_key": token}, timeout=10)
    assert answer.status_code == 200
    _ws_answer(f"ws://127.0.0.1:{guarded.port}/ws/asr?api_key={token}")
    guarded.wait_for_log('"WebSocket /ws/asr?api_key=***"', timeout=15)
    log = guarded.stderr + guarded.stdout_path.read_text(errors="replace")  # access log: stdout
    access_lines = [line for line in log.splitlines() if "GET /api/history?" in line]
    assert access_lines and all("?api_key=*** " in line for line in access_lines), access_lines
    banner = [line for line in log.splitlines() if "?token=" in line and "http" in line]
    leaked = [line for line in log.splitlines() if token in line and line not in banner]
    assert not leaked, leaked


# -- restarts, --host 0, --no-auth, loopback, https ----------------------------------------------
def test_host_0_gets_a_token_kept_across_restarts(tmp_path: Path, model_cache: Path) -> None:
    tokens = []
    for run in range(2):
        server = LiveServer(tmp_path / "data", model_cache, tmp_path / f"logs{run}", host="0")
        try:
            server.wait_ready()
            token = _token_in(server.wait_for_log(READY), server.port)
            tokens.append(token)
            url = f"{server.url}/api/history"
            assert httpx.get(url, timeout=10).status_code == 401
            answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert answer.status_code == 200
        finally:
            server.stop()
    assert tokens[0] == tokens[1]


def test_no_auth_is_open_and_warns(tmp_path: Path, model_cache: Path) -> None:
    """``--no-auth`` on 0.0.0.0, served over https with a certificate the operator gives."""
    certfile, keyfile = tls.self_signed(tmp_path / "operator", ["localhost", "127.0.0.1"])
    server = LiveServer(
        tmp_path / "data",
        model_cache,
        tmp_path / "logs",
        host="0.0.0.0",
        args=("--no-auth", "--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile)),
    )
    try:
        server.wait_ready()
        log = server.wait_for_log(READY)
        assert f"WARNING: tingji is listening on 0.0.0.0:{server.port} with NO API key" in log
        assert "--no-auth" in log and "?token=" not in log
        printed = FINGERPRINT.search(log)
        assert printed and printed[1] == tls.fingerprint(certfile), log
        with httpx.Client(base_url=server.url, verify=_trusting(certfile), timeout=10) as client:
            assert client.get("/api/history").status_code == 200
            assert client.get("/").status_code == 200
    finally:
        server.stop()
    assert not (tmp_path / "data" / "access-token").exists()
    assert not (tmp_path / "data" / "tls").exists()


def test_https_on_loopback_with_a_made_certificate(tmp_path: Path, model_cache: Path) -> None:
    """``--https`` with no certificate: one is made in the data dir, its fingerprint printed,
    and it verifies for 127.0.0.1 and localhost. Loopback needs no token."""
    server = LiveServer(tmp_path / "data", model_cache, tmp_path / "logs", args=("--https",))
    try:
        server.wait_ready()
        log = server.wait_for_log(READY)
        certfile = tmp_path / "data" / "tls" / "cert.pem"
        keyfile = tmp_path / "data" / "tls" / "key.pem"
        assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
        printed = FINGERPRINT.search(log)
        assert printed and printed[1] == tls.fingerprint(certfile), log
        assert "accept it once" in log and "cert.pem" in log
        assert f"https://127.0.0.1:{server.port}/" in log
        assert "?token=" not in log and "WARNING" not in log
        for host in ("127.0.0.1", "localhost"):
            url = f"https://{host}:{server.port}/api/history"
            answer = httpx.get(url, verify=_trusting(certfile), timeout=10)
            assert answer.status_code == 200, answer.text
        with pytest.raises(httpx.ConnectError):  # a made certificate is not trusted by default
            httpx.get(f"{server.url}/healthz", timeout=10)
        with pytest.raises(httpx.TransportError):  # plain http to the https port
            httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=10)
    finally:
        server.stop()
    assert not (tmp_path / "data" / "access-token").exists()
    again, _ = tls.self_signed(tmp_path / "data" / "tls", ["other"])
    assert tls.fingerprint(again) == printed[1]  # made once, then reused
