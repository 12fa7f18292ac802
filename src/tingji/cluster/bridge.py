"""The server's side of the cluster: batch-job files sent to the Ray driver in a child process
(:mod:`tingji.cluster.agent`), which is started again whenever it ends.

The child ends when the cluster's head stops answering (Ray ends its drivers then). The files
it was running go back to the queue, not to failed: they run again once the cluster answers,
and meanwhile the lanes claim nothing (no place is free). The server itself, its web UI, API
and history, never notices more than the System tab saying the cluster does not answer.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import queue
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tingji.config import Settings
from tingji.errors import ClusterError, TingjiError
from tingji.jobs.runner import FileProgress, JobCancelled, Recognised, Requeue
from tingji.types import ClusterInfo, TranscribeOptions, options_to_dict

log = logging.getLogger("tingji.cluster")

RESTART_S = (1.0, 5.0, 15.0)
"""Waits before the driver is started again after it ended, one after another (the last
repeats while it keeps ending)."""
ASK_S = 5.0
"""How long a question to the driver (load, cluster info) may take."""


class _Gone(Exception):
    """The driver process ended."""


class ClusterBridge:
    """Recognise job files on the Ray cluster through a driver process of its own; the
    runner's ``recognise`` and its :class:`~tingji.jobs.runner.Workers`."""

    def __init__(self, settings: Settings, voices: Callable[[], dict[str, np.ndarray]]) -> None:
        self.settings = settings
        self._voices = voices
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._process: Any = None
        self._conn: Any = None
        self._inbox: dict[Any, queue.SimpleQueue[tuple[Any, ...]]] = {}
        self._rids = itertools.count()
        self._stop = threading.Event()
        self._up = threading.Event()
        self._supervisor: threading.Thread | None = None

    # -- the driver process ------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._supervisor is None:
                self._supervisor = threading.Thread(
                    target=self._supervise, name="tingji-cluster-driver", daemon=True
                )
                self._supervisor.start()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(_Gone):
            self._send(("stop",))
        process = self._process
        if process is not None:
            process.join(10.0)
            if process.is_alive():
                process.kill()
        if self._supervisor is not None:
            self._supervisor.join(5.0)

    def _supervise(self) -> None:
        quick = 0  # ends in a row that came within a minute of the start
        while not self._stop.is_set():
            began = time.monotonic()
            self._run_driver()
            if self._stop.is_set():
                return
            quick = quick + 1 if time.monotonic() - began <= 60 else 0
            wait = RESTART_S[min(max(quick - 1, 0), len(RESTART_S) - 1)]
            log.warning("the Ray driver process ended; starting it again in %.0f s", wait)
            self._stop.wait(wait)

    def _run_driver(self) -> None:
        from tingji.cluster import agent

        context = multiprocessing.get_context("spawn")
        mine, theirs = context.Pipe()
        process = context.Process(
            target=agent.main,
            args=(theirs, self.settings, self.settings.log_level),
            name="tingji-ray-driver",
            daemon=True,
        )
        process.start()
        theirs.close()
        with self._lock:
            self._process, self._conn = process, mine
        self._up.set()
        try:
            while True:
                try:
                    message = mine.recv()
                except (EOFError, OSError):
                    break
                self._deliver(message)
        finally:
            self._up.clear()
            with self._lock:
                self._conn = None
                waiting = list(self._inbox.values())
            for box in waiting:  # whoever waits on the driver hears it went
                box.put(("gone",))
            process.join(5.0)
            if process.is_alive():
                process.kill()
                process.join(5.0)
            mine.close()

    def _deliver(self, message: tuple[Any, ...]) -> None:
        kind, key = message[0], message[1]
        with self._lock:
            box = self._inbox.get(key)
        if box is not None:
            box.put(message if kind != "answer" else ("answer", message[2]))

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            conn = self._conn
            if conn is None:
                raise _Gone
            try:
                conn.send(message)
            except (OSError, ValueError) as exc:
                raise _Gone from exc

    def _ask(self, message: Callable[[int], tuple[Any, ...]], timeout: float) -> Any:
        rid = next(self._rids)
        box: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        with self._lock:
            self._inbox[rid] = box
        try:
            self._send(message(rid))
            try:
                reply = box.get(timeout=timeout)
            except queue.Empty as exc:
                raise _Gone from exc
            if reply[0] != "answer":
                raise _Gone
            return reply[1]
        finally:
            with self._lock:
                self._inbox.pop(rid, None)

    # -- what the server asks ----------------------------------------------------------------
    def load(self) -> tuple[int, int]:
        """(files running on the cluster, models ready there); (0, 0) while the driver is
        away."""
        try:
            running, models = self._ask(lambda rid: ("ask", rid, "load"), ASK_S)
            return int(running), int(models)
        except _Gone:
            return 0, 0

    def info(self) -> ClusterInfo:
        """The cluster as the driver sees it, with this server's load on it."""
        address = self.settings.ray_address or "auto"
        try:
            found: ClusterInfo = self._ask(lambda rid: ("ask", rid, "info"), ASK_S * 2)
        except _Gone:
            return ClusterInfo(
                address=address,
                error="the Ray cluster does not answer (its driver process is starting again)",
            )
        found.running, found.models = self.load()
        return found

    # -- places: the runner's Workers ----------------------------------------------------------
    def _lane_key(self) -> int:
        return threading.get_ident()

    def reserve(self, timeout: float) -> bool:
        self.start()
        if not self._up.wait(timeout):
            return False
        key = self._lane_key()
        try:
            return bool(
                self._ask(lambda rid: ("lane", key, "reserve", (rid, timeout)), timeout + ASK_S)
            )
        except _Gone:
            return False

    def release(self) -> None:
        with contextlib.suppress(_Gone):
            self._send(("lane", self._lane_key(), "release", ()))

    # -- one file ------------------------------------------------------------------------------
    def recognise(
        self, path: Path, options: TranscribeOptions, model: str, progress: FileProgress
    ) -> Recognised:
        """Recognise one stored upload on the cluster (blocking). The file goes back to the
        queue (:class:`Requeue`) when the driver ends while it runs."""
        voices = self._voices() if options.diarize else {}
        ticket = uuid.uuid4().hex
        box: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        with self._lock:
            self._inbox[ticket] = box
        args = (ticket, str(path), options_to_dict(options), model, voices)
        try:
            try:
                self._send(("lane", self._lane_key(), "recognise", args))
            except _Gone:
                raise Requeue("the Ray driver process is starting again") from None
            stopping = False
            while True:
                message = box.get()
                kind = message[0]
                if kind == "progress":
                    _, _, done, total, node = message
                    progress.node = node
                    if not progress(done, total) and not stopping:
                        stopping = True
                        with contextlib.suppress(_Gone):
                            self._send(("cancel", ticket))
                elif kind == "done":
                    result: Recognised = message[2]
                    return result
                elif kind == "failed":
                    _, _, error, text = message
                    if error == "cancelled":
                        raise JobCancelled
                    if error == "requeue":
                        raise Requeue(text)
                    if error == "ClusterError":
                        raise ClusterError(text)
                    raise TingjiError(text)
                else:  # gone
                    raise Requeue("the Ray cluster stopped answering while the file ran")
        finally:
            with self._lock:
                self._inbox.pop(ticket, None)
