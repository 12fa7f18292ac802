"""The PostgreSQL engine under :class:`tingji.jobs.database.Database`: a pool of psycopg
connections, each transaction on one of them.

psycopg is imported only here, and only when a ``postgresql://`` database is configured, so
that SQLite users never need it. A URL's password is never shown: :func:`tingji.config.mask_url`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from tingji.config import mask_url
from tingji.errors import DatabaseError
from tingji.jobs.dialect import POSTGRES, Conn, Cursor, postgres_sql

log = logging.getLogger("tingji.storage")

INSTALL = "pip install 'tingji[scale]'  (or: pip install 'psycopg[binary,pool]')"
SCHEMES = ("postgresql", "postgres")


def is_postgres_url(value: str) -> bool:
    return value.split("://", 1)[0].lower() in SCHEMES and "://" in value


class Row:
    """A row by position or by column name, like ``sqlite3.Row``."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._index[key] if isinstance(key, str) else key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Any:
    names = [column.name for column in cursor.description or ()]
    index = {name: n for n, name in enumerate(names)}

    def make(values: Sequence[Any]) -> Row:
        return Row(values, index)

    return make


class _Connection:
    """A psycopg connection that takes the stores' ``?`` SQL."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        result: Cursor = self._conn.execute(postgres_sql(sql), tuple(parameters))
        return result

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        cursor = self._conn.cursor()
        cursor.executemany(postgres_sql(sql), [tuple(p) for p in parameters])
        result: Cursor = cursor
        return result


class PostgresEngine:
    """Connections to one PostgreSQL database, from a pool of ``pool_size``."""

    dialect = POSTGRES

    def __init__(self, url: str, *, pool_size: int = 10, timeout_s: float = 10.0) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise DatabaseError(f"a postgresql:// database needs psycopg: {INSTALL}") from exc
        self.shown = mask_url(url)
        self._psycopg = psycopg
        self._password = urlsplit(url).password or ""
        self._timeout = timeout_s
        options = {"autocommit": True, "row_factory": _row_factory}
        connect_timeout = max(2, round(timeout_s))
        try:  # one plain connection first: its error says why, where the pool's only times out
            psycopg.connect(url, connect_timeout=connect_timeout, application_name="tingji").close()
        except psycopg.Error as exc:
            raise self._error("cannot connect to", exc) from None
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            timeout=timeout_s,
            kwargs={
                **options,
                "connect_timeout": connect_timeout,
                "application_name": "tingji",
            },
            name="tingji",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=timeout_s)
        except Exception as exc:  # the pool's own timeout, or a failed connection
            self._pool.close()
            raise self._error("cannot connect to", exc) from None

    def _error(self, doing: str, exc: BaseException) -> DatabaseError:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if self._password:
            reason = reason.replace(self._password, "***")
        return DatabaseError(f"{doing} the database {self.shown}: {reason}")

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        from psycopg_pool import PoolTimeout

        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise DatabaseError(
                f"the database {self.shown} gave no connection within {self._timeout:g} s "
                "(every pooled connection is busy, or the server does not answer)"
            ) from exc
        except self._psycopg.OperationalError as exc:
            raise self._error("lost", exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[_Connection]:
        with self._connection() as conn, conn.transaction():
            yield _Connection(conn)

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        with self._connection() as conn:
            rows: list[Any] = conn.execute(postgres_sql(sql), tuple(parameters)).fetchall()
            return rows

    def lock_migrations(self, db: Conn) -> None:
        """Serialise the migrations of servers that start at the same time (released with
        the transaction)."""
        db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def close(self) -> None:
        self._pool.close()


MIGRATION_LOCK = 0x7469_6E67_6A69  # "tingji"
