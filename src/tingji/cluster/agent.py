"""The process that is the server's Ray driver: :class:`~tingji.cluster.dispatch.RayDispatch`
in a child of ``tingji serve``, answering the :class:`~tingji.cluster.bridge.ClusterBridge`
over a pipe.

Ray ends a driver's process when the cluster's head stops answering for a while (its GCS
client gives up and exits). In a child that costs a restart; in the server it would take the
web UI, the API and every upload with it. So the server never joins the cluster itself: this
child does, and the server outlives it.

Messages, parent → child (tuples): ``("lane", key, method, args)`` runs ``reserve``,
``release`` or ``recognise`` of the dispatch on a thread of that lane (the dispatch keeps a
lane's reserved place per thread), ``("cancel", ticket)``, ``("ask", rid, what)`` with ``what``
``load`` or ``info``, ``("stop",)``. Child → parent: ``("answer", rid, value)``,
``("progress", ticket, done, total, node)``, ``("done", ticket, Recognised)``, ``("failed",
ticket, kind, message)``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from tingji.cluster.connect import cluster_info
from tingji.cluster.dispatch import RayDispatch
from tingji.errors import TingjiError
from tingji.jobs.runner import FileProgress, JobCancelled, Requeue
from tingji.types import options_from_dict

GCS_GONE_S = 20
"""Seconds without an answer from the cluster's head after which Ray ends this process (its
own default is 60); the bridge then starts another, which waits for the head to be back."""


def main(conn: Connection, settings: Any, log_level: str) -> None:
    """The child's whole life: join, answer, until told to stop or the pipe closes."""
    os.environ["RAY_gcs_rpc_server_reconnect_timeout_s"] = str(GCS_GONE_S)  # noqa: SIM112
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    Agent(conn, settings).serve()


class Agent:
    def __init__(self, conn: Connection, settings: Any) -> None:
        self.conn = conn
        self.settings = settings
        self._send_lock = threading.Lock()
        self.dispatch = RayDispatch(settings)
        self._lanes: dict[Any, queue.SimpleQueue[tuple[str, tuple[Any, ...]] | None]] = {}
        self._cancelled: set[str] = set()

    def send(self, *message: Any) -> None:
        with self._send_lock:
            self.conn.send(message)

    def serve(self) -> None:
        self.dispatch.start()
        try:
            while True:
                try:
                    message = self.conn.recv()
                except (EOFError, OSError):
                    return  # the server went away
                kind = message[0]
                if kind == "stop":
                    return
                if kind == "lane":
                    _, key, method, args = message
                    self._lane(key).put((method, args))
                elif kind == "cancel":
                    self._cancelled.add(message[1])
                elif kind == "ask":
                    _, rid, what = message
                    threading.Thread(target=self._answer, args=(rid, what), daemon=True).start()
        finally:
            for lane in self._lanes.values():
                lane.put(None)
            self.dispatch.close()

    def _lane(self, key: Any) -> queue.SimpleQueue[tuple[str, tuple[Any, ...]] | None]:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = queue.SimpleQueue()
            threading.Thread(target=self._run_lane, args=(lane,), daemon=True).start()
        return lane

    def _run_lane(self, lane: queue.SimpleQueue[tuple[str, tuple[Any, ...]] | None]) -> None:
        while (item := lane.get()) is not None:
            method, args = item
            if method == "reserve":
                rid, timeout = args
                self.send("answer", rid, self.dispatch.reserve(timeout))
            elif method == "release":
                self.dispatch.release()
            elif method == "recognise":
                self._recognise(*args)

    def _recognise(
        self,
        ticket: str,
        path: str,
        options: dict[str, Any],
        model: str,
        voices: dict[str, np.ndarray],
    ) -> None:
        progress: FileProgress

        def report(done: float, total: float | None) -> bool:
            self.send("progress", ticket, done, total, progress.node)
            return ticket not in self._cancelled

        progress = FileProgress(report)
        try:
            asked = options_from_dict(options)
            result = self.dispatch.recognise(Path(path), asked, model, progress, voices)
        except JobCancelled:
            self.send("failed", ticket, "cancelled", "")
        except Requeue as again:
            self.send("failed", ticket, "requeue", str(again))
        except TingjiError as exc:
            self.send("failed", ticket, type(exc).__name__, exc.message)
        except Exception as exc:  # noqa: BLE001 - told to the server, which fails the file
            logging.getLogger("tingji.cluster").exception("%s failed on the cluster", path)
            self.send("failed", ticket, "internal", f"internal error: {exc}")
        else:
            self.send("done", ticket, result)
        finally:
            self._cancelled.discard(ticket)

    def _answer(self, rid: int, what: str) -> None:
        if what == "load":
            value: Any = self.dispatch.load()
        else:
            value = cluster_info(self.settings.ray_address)
        self.send("answer", rid, value)
