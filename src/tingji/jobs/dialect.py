"""What differs between SQLite and PostgreSQL in the stores' SQL, in one place.

The stores write their SQL once, with ``?`` placeholders; the PostgreSQL connection translates
those (:func:`postgres_sql`). What cannot be written the same way for both — a new row's id,
row locks, claims that skip what another server holds, substring search — is asked of the
connection's :class:`Dialect`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol


class Row(Protocol):
    """A result row, by column position or name (``sqlite3.Row`` and tingji's PostgreSQL row)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """The connection a store's transaction works on."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


class Dialect:
    """SQLite's SQL: one writer at a time (``BEGIN IMMEDIATE``), so no row locks are needed."""

    name = "sqlite"
    lock = ""
    """Appended to a ``SELECT`` whose rows the transaction goes on to change."""
    claim = ""
    """Appended to the ``SELECT`` of queued job files (aliased ``f``) that takes one."""
    shares_audio = False
    """Whether uploaded audio is kept in the database too (servers without a shared disk)."""
    requeue_all_at_start = True
    """Whether every file left running at a start was interrupted (one box, one server)."""

    def insert_id(self, db: Conn, sql: str, parameters: Sequence[Any]) -> int:
        """Run an ``INSERT`` of one row; its new ``id``."""
        return int(getattr(db.execute(sql, parameters), "lastrowid", 0) or 0)

    def contains(self, query: str) -> tuple[str, list[Any]]:
        """A condition on ``transcriptions t``: ``query`` is a substring of the text, the name
        or a speaker's name (case-insensitive for Latin letters)."""
        if len(query) >= 3:  # the trigram index needs three characters
            return (
                "t.id IN (SELECT rowid FROM transcriptions_fts WHERE transcriptions_fts MATCH ?)",
                ['"' + query.replace('"', '""') + '"'],
            )
        return _like(query, "LIKE")

    def columns_sql(self) -> str:
        """The column names of the table named by the one parameter, in order."""
        return "SELECT name FROM pragma_table_info(?) ORDER BY cid"

    def reset_ids(self, db: Conn, table: str) -> None:
        """After rows were copied in with their ids, new rows get ids above them (SQLite's
        AUTOINCREMENT keeps track by itself)."""


class PostgresDialect(Dialect):
    """PostgreSQL's SQL: many servers on one database, each with its pool of connections."""

    name = "postgresql"
    lock = " FOR UPDATE"
    claim = " FOR UPDATE OF f SKIP LOCKED"
    shares_audio = True
    requeue_all_at_start = False

    def insert_id(self, db: Conn, sql: str, parameters: Sequence[Any]) -> int:
        return int(db.execute(sql + " RETURNING id", parameters).fetchone()[0])

    def contains(self, query: str) -> tuple[str, list[Any]]:
        # pg_trgm's GIN indexes serve ILIKE '%…%' (shorter queries scan, as SQLite's LIKE does)
        return _like(query, "ILIKE")

    def columns_sql(self) -> str:
        return (
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position"
        )

    def reset_ids(self, db: Conn, table: str) -> None:
        # table comes from tingji's own list of tables, never from a client
        db.execute(
            f"SELECT setval(pg_get_serial_sequence(?, 'id')::regclass, max(id)) FROM {table} "
            "HAVING max(id) IS NOT NULL",
            (table,),
        )


SQLITE = Dialect()
POSTGRES = PostgresDialect()


def _like(query: str, operator: str) -> tuple[str, list[Any]]:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    clause = " OR ".join(
        f"t.{column} {operator} ? ESCAPE '\\'" for column in ("text", "name", "speaker_names")
    )
    return f"({clause})", [f"%{escaped}%"] * 3


@functools.lru_cache(maxsize=512)
def postgres_sql(sql: str) -> str:
    """The stores' SQL for psycopg: ``?`` placeholders become ``%s`` (a literal ``%`` is
    doubled). The stores' SQL holds no ``?`` inside a string literal."""
    return sql.replace("%", "%%").replace("?", "%s")
