"""Keys out of the logs: uvicorn writes each request's address, query included, to its log.

``?api_key=``, ``?token=`` and ``?ticket=`` values become ``***`` in the access log
(``uvicorn.access``) and in the WebSocket lines (``uvicorn.error``).
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMS = ("api_key", "token", "ticket")
LOGGERS = ("uvicorn.access", "uvicorn.error")
_SECRET = re.compile(rf"([?&](?:{'|'.join(SECRET_PARAMS)})=)[^&#\s\"']*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the values of the secret query parameters replaced by ``***``."""
    return _SECRET.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message and string arguments with :func:`redact`; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Add the filter to uvicorn's loggers, once per process."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
