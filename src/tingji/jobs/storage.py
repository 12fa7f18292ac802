"""All SQL lives in :mod:`tingji.jobs`: :class:`Storage` is the history database with its
stores (history with full-text search, batch jobs, hotword lists), one module per concept.

SQLite in WAL mode; one connection shared by threads under a lock. The schema is the
append-only list in :mod:`tingji.jobs.migrations`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from tingji.jobs.database import WalState
from tingji.jobs.job_store import JobStore

__all__ = ["Storage", "WalState"]


class Storage(JobStore):
    """The history database (``<data_dir>/history.db``)."""

    # -- hotword lists -----------------------------------------------------------------------
    def save_hotword_list(self, name: str, terms: Sequence[str]) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO hotword_lists (name, terms, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET terms = excluded.terms, "
                "updated_at = excluded.updated_at",
                (name, json.dumps(list(terms), ensure_ascii=False), time.time()),
            )

    def hotword_lists(self) -> dict[str, list[str]]:
        rows = self._query("SELECT name, terms FROM hotword_lists ORDER BY name")
        return {r["name"]: json.loads(r["terms"]) for r in rows}

    def delete_hotword_list(self, name: str) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM hotword_lists WHERE name = ?", (name,)).rowcount > 0
