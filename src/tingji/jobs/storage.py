"""All SQL lives in :mod:`tingji.jobs`: :class:`Storage` is the history database with its
stores (history with full-text search, batch jobs, hotword lists, voice profiles), one module
per concept.

SQLite in WAL mode by default (one connection shared by threads under a lock), or PostgreSQL
for several servers (a pool of connections; uploaded audio kept in the database too, see
:mod:`tingji.jobs.audio_blobs`). The schema is the append-only list in
:mod:`tingji.jobs.migrations`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tingji.jobs.audio_blobs import AudioBlobStore
from tingji.jobs.database import WalState
from tingji.jobs.job_store import JobStore

if TYPE_CHECKING:
    from tingji.config import Settings

__all__ = ["Storage", "Voice", "WalState"]


class Storage(JobStore, AudioBlobStore):
    """The history database (``<data_dir>/history.db``, or ``TINGJI_DATABASE_URL``)."""

    @classmethod
    def open(cls, settings: Settings) -> Storage:
        """The database the settings name."""
        url = settings.database_url
        if url is None:
            return cls(settings.database)
        return cls(
            url.get_secret_value(),
            pool_size=settings.database_pool_size,
            timeout_s=settings.database_timeout_s,
        )

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

    # -- voice profiles ----------------------------------------------------------------------
    def save_voice(self, name: str, embedding: np.ndarray, source: str = "") -> None:
        """Keep a named voice (a unit vector); the same name again replaces it."""
        blob = np.asarray(embedding, dtype="<f4").tobytes()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO voices (name, embedding, source, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET embedding = excluded.embedding, "
                "source = excluded.source, created_at = excluded.created_at",
                (name, blob, source, time.time()),
            )

    def voices(self) -> list[Voice]:
        rows = self._query("SELECT name, embedding, source, created_at FROM voices ORDER BY name")
        return [
            Voice(r["name"], np.frombuffer(bytes(r["embedding"]), "<f4").copy(), r["source"],
                  r["created_at"])
            for r in rows
        ]  # fmt: skip

    def delete_voice(self, name: str) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM voices WHERE name = ?", (name,)).rowcount > 0


@dataclass(frozen=True)
class Voice:
    """An enrolled voice: recordings label a speaker who sounds like it with its name."""

    name: str
    embedding: np.ndarray
    source: str
    """Where it was enrolled from: a clip's name, or ``entry 12, S2``."""
    created_at: float
