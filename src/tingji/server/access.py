"""Who gets in: API keys, and the access token of a server that listens beyond loopback.

Like Jupyter, ``tingji serve`` on an address other machines can reach (``0.0.0.0``, ``::``, a
LAN address, a host name), with no API key and no UI password, makes a random token once and
keeps it in ``<data_dir>/access-token`` (mode 0600). The token is an API key in effect
(``Authorization: Bearer``, ``X-API-Key``, ``?api_key=`` or ``?token=``); a browser brings it
once as ``/?token=…``, which :class:`TokenGate` turns into an HttpOnly, SameSite=Lax cookie
before sending the browser on to the address without it. Without a valid key, token or cookie,
``/api`` and ``/v1`` answer 401 in the API's error shape and the pages a small bilingual
page saying where the token is. ``/healthz`` stays open. Loopback binds need nothing.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlencode

from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tingji.config import Settings
from tingji.errors import OutputError
from tingji.server.errors import error_body

TOKEN_FILE = "access-token"
OPEN_PATHS = frozenset({"/healthz"})
"""Answered without a token: health checks come from load balancers and scripts."""
API_PREFIXES = ("/api", "/v1")
COOKIE_MAX_AGE = 30 * 24 * 3600
"""How long the browser keeps the token cookie, in seconds (the token itself never expires)."""


def loopback_only(host: str) -> bool:
    """True when a server bound to ``host`` is reachable from this machine only.

    ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``) are; ``0.0.0.0``, ``::``,
    ``0``, the empty string (all addresses), LAN addresses and other host names are not.
    """
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def everywhere(host: str) -> bool:
    """True when ``host`` means every address of the machine (``0.0.0.0``, ``0``, ``::``, "")."""
    return host.strip().strip("[]") in ("", "0", "0.0.0.0", "::")


def needs_token(settings: Settings) -> bool:
    """A server bound beyond loopback with no API key, UI password or ``--no-auth``."""
    return not (
        loopback_only(settings.host)
        or settings.api_keys
        or settings.ui_password
        or settings.no_auth
        or settings.access_token
    )


def with_token(settings: Settings) -> Settings:
    """``settings`` with the access token filled in where :func:`needs_token` says so."""
    if not needs_token(settings):
        return settings
    return settings.model_copy(update={"access_token": load_token(settings.data_dir)})


def load_token(data_dir: Path) -> str:
    """The token in ``<data_dir>/access-token``, made (and kept there) the first time."""
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        token = ""
    if len(token) >= 16:
        return token
    token = secrets.token_urlsafe(32)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        write_private(path, (token + "\n").encode("ascii"))
    except OSError as exc:
        raise OutputError(f"cannot write the access token to {path}: {exc.strerror}") from exc
    return token


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a file only its owner can read (mode 0600 from its creation on)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def cookie_name(settings: Settings) -> str:
    """Per port, so that two servers on one host keep their own cookies."""
    return f"tingji_token_{settings.port}"


def presented(headers: Mapping[str, str], query: Mapping[str, str]) -> list[str]:
    """The keys a request offers: ``Authorization: Bearer``, ``X-API-Key``, ``?api_key=``,
    ``?token=``."""
    given = []
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given.append(auth[7:].strip())
    given += [headers.get("x-api-key", ""), query.get("api_key", ""), query.get("token", "")]
    return [key for key in given if key]


def authorised(
    settings: Settings,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    cookies: Mapping[str, str] | None = None,
) -> bool:
    """Whether a request offers an accepted key, or the access token's cookie."""
    keys = settings.accepted_keys
    if not keys:
        return True
    if any(_matches(given, keys) for given in presented(headers, query)):
        return True
    cookie = (cookies or {}).get(cookie_name(settings), "")
    return bool(cookie and settings.access_token and _matches(cookie, [settings.access_token]))


def _matches(given: str, keys: list[str]) -> bool:
    return any(hmac.compare_digest(given.encode(), key.encode()) for key in keys)


class TokenGate:
    """ASGI middleware in front of every HTTP route of a server with an access token.

    WebSockets pass through: the live route checks keys and tickets itself, and a browser's
    cookie is not taken there (a page of another site could open the socket with it).
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        response = self._answer(connection)
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def _answer(self, connection: HTTPConnection) -> Response | None:
        """None to let the request through; else the redirect that sets the cookie, or 401."""
        settings = self.settings
        query = connection.query_params
        api = connection.url.path.startswith(API_PREFIXES)
        token = query.get("token", "")
        page_visit = connection.scope.get("method") == "GET" and not api
        if page_visit and token and _matches(token, [settings.access_token or ""]):
            return self._enter(connection)
        if authorised(settings, connection.headers, query, connection.cookies):
            return None
        if api:
            body = error_body(
                Request(connection.scope),
                401,
                "unauthorized",
                "a valid access token or API key is required (Authorization: Bearer TOKEN, "
                "X-API-Key or ?api_key=); the server printed the token when it started",
            )
            return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return HTMLResponse(_REFUSED, status_code=401)

    def _enter(self, connection: HTTPConnection) -> Response:
        """303 to the same address without ``?token=``, setting the token's cookie."""
        kept = [(k, v) for k, v in connection.query_params.multi_items() if k != "token"]
        target = connection.url.path + (f"?{urlencode(kept)}" if kept else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            cookie_name(self.settings),
            self.settings.access_token or "",
            max_age=COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            samesite="lax",
            secure=connection.url.scheme == "https",
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


_REFUSED = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>听记 · 需要访问令牌 / Access token required</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;
line-height:1.6}code{background:#f1f5f9;padding:0 .3em;border-radius:3px}</style></head>
<body>
<h1>需要访问令牌</h1>
<p>这台听记服务器只接受带访问令牌的访问。请打开服务器启动时在控制台打印的地址
（以 <code>?token=…</code> 结尾）；令牌也保存在服务器数据目录的
<code>access-token</code> 文件里。</p>
<h1 lang="en">Access token required</h1>
<p lang="en">This tingji server admits only visitors with its access token. Open the address
that the server printed in its console when it started (it ends in <code>?token=…</code>);
the token is also kept in the <code>access-token</code> file of the server's data directory.</p>
</body></html>
"""
