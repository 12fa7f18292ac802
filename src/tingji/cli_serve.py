"""``tingji serve``: the start-up banner (addresses, certificate, token, warnings) and uvicorn."""

from __future__ import annotations

import socket
import sys
from typing import TYPE_CHECKING

from tingji import __version__
from tingji.config import Settings

if TYPE_CHECKING:
    from tingji.server import tls


def run_serve(settings: Settings) -> int:
    import logging

    import uvicorn

    from tingji.server import access, create_app, tls
    from tingji.service import Tingji

    if settings.ray_address:  # a missing extra stops the start, in one line
        from tingji.cluster.connect import require_ray

        require_ray()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    cert = tls.certificate(settings)
    scheme = "https" if cert is not None else "http"
    settings = access.with_token(settings)
    if cert is not None:
        _say(_certificate_lines(cert, settings))
    if settings.access_token and not settings.api_keys:
        _say(_token_lines(settings, scheme))
    if not access.loopback_only(settings.host) and not settings.accepted_keys:
        _say(_warning(settings))
    service = Tingji(settings)
    storage = service.history  # a database that cannot be reached: one line, no server
    if settings.database_url is not None:  # shared with other servers: say which
        applied = f" (applied {', '.join(storage.migrated)})" if storage.migrated else ""
        _say([f"History, jobs and audio in {settings.database_shown}{applied}"])
    _say(
        [f"tingji {__version__}: {scheme}://{settings.host}:{settings.port}/  (API docs at /docs)"]
    )
    uvicorn.run(
        create_app(settings, service),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # tingji.server.logs writes the requests that matter
        timeout_graceful_shutdown=5,
        ssl_certfile=str(cert.certfile) if cert is not None else None,
        ssl_keyfile=str(cert.keyfile) if cert is not None and cert.keyfile else None,
    )
    return 0


def _say(lines: list[str]) -> None:
    print("\n".join(lines), file=sys.stderr, flush=True)


def _certificate_lines(cert: tls.Certificate, settings: Settings) -> list[str]:
    lines = [
        f"HTTPS certificate {cert.certfile}",
        f"  SHA-256 fingerprint {cert.fingerprint}",
    ]
    if cert.made:
        lines += [
            "  It is self-signed: when the browser warns, check that the certificate's SHA-256",
            f"  fingerprint is the one above and accept it once, or import {cert.certfile.name}"
            " into the browser's (or system's) trusted certificates.",
        ]
    return lines


def _token_lines(settings: Settings, scheme: str) -> list[str]:
    token = settings.access_token
    urls = [f"{scheme}://{host}:{settings.port}/?token={token}" for host in _hosts(settings.host)]
    return [
        "Open tingji at (the token lets the holder in; the browser keeps it in a cookie):",
        *(f"    {url}" for url in urls),
        "  API clients send it as Authorization: Bearer TOKEN, X-API-Key or ?api_key=.",
        f"  It is kept in {settings.data_dir / 'access-token'} (delete the file for a new one);"
        " --no-auth serves with no token.",
    ]


def _warning(settings: Settings) -> list[str]:
    banner = "!" * 78
    why = (
        "  --no-auth was given: there is no access token."
        if settings.no_auth
        else "  The UI password guards the pages only, not the API."
    )
    return [
        banner,
        f"  WARNING: tingji is listening on {settings.host or '*'}:{settings.port} "
        "with NO API key.",
        "  Anyone who can reach this machine can transcribe, read and delete history.",
        why,
        "  Set TINGJI_API_KEYS='[\"a-long-secret\"]' (and a UI password) to require one.",
        banner,
    ]


def _hosts(host: str) -> list[str]:
    """Where other machines (and this one) reach a server bound to ``host``, for its URLs."""
    from tingji.server import access, tls

    if not access.everywhere(host):
        return [f"[{host}]" if ":" in host and not host.startswith("[") else host]
    ipv6 = host.strip("[]") == "::"
    found = [socket.gethostname()]
    for address in tls.local_addresses():
        if ":" not in address:
            found.append(address)
        elif ipv6:
            found.append(f"[{address}]")
    return [*dict.fromkeys(found), "127.0.0.1"]
