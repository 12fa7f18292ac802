"""Coalescing the decode requests of several threads into batches for one model.

A model decodes one batch at a time. While it works, requests from other threads (other HTTP
requests, other files of a job, other live streams) wait in a queue; when it is free, the
worker takes everything queued, groups requests that can share a call (same options), sorts
each group by length so that short clips are not padded to long ones, and runs them in batches
of at most ``max_batch``. So several short requests share one encoder and one beam search
instead of queueing behind each other, and a lone request runs at once, without waiting for a
batch to fill.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

R = TypeVar("R")

RunBatch = Callable[[Hashable, list[np.ndarray]], list[R]]


@dataclass
class _Request(Generic[R]):
    key: Hashable
    clips: Sequence[np.ndarray]
    future: Future[list[R]] = field(default_factory=Future)


class Batcher(Generic[R]):
    """Runs ``run_batch(key, clips)`` on a worker thread for requests submitted from any thread.

    ``max_ratio`` keeps a batch's longest clip within that multiple of its shortest (plus
    ``slack`` samples), since every clip in a batch is padded to the longest.
    """

    def __init__(
        self,
        run_batch: RunBatch[R],
        *,
        max_batch: int = 8,
        max_ratio: float = 2.0,
        slack: int = 3 * 16000,
        name: str = "tingji-decoder",
    ) -> None:
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_ratio = max_ratio
        self.slack = slack
        self._queue: list[_Request[R]] = []
        self._cond = threading.Condition()
        self._closed = False
        self.batches = 0
        """Batches run so far (for tests and benchmarks)."""
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, key: Hashable, clips: Sequence[np.ndarray]) -> list[R]:
        """Decode ``clips`` (with options ``key``) and wait for the results, in order."""
        if not clips:
            return []
        request: _Request[R] = _Request(key, clips)
        with self._cond:
            if self._closed:
                raise RuntimeError("the model was unloaded")
            self._queue.append(request)
            self._cond.notify()
        return request.future.result()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=60)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed and not self._queue:
                    return
                taken, self._queue = self._queue, []
            groups: dict[Hashable, list[_Request[R]]] = {}
            for request in taken:
                groups.setdefault(request.key, []).append(request)
            for key, requests in groups.items():
                self._run_group(key, requests)

    def _run_group(self, key: Hashable, requests: list[_Request[R]]) -> None:
        entries = [(r, n, clip) for r in requests for n, clip in enumerate(r.clips)]
        entries.sort(key=lambda e: len(e[2]))
        results: dict[int, dict[int, R]] = {id(r): {} for r in requests}
        failed: dict[int, BaseException] = {}
        for batch in self._split(entries):
            live = [e for e in batch if id(e[0]) not in failed]
            if not live:
                continue
            try:
                out = self._run_batch(key, [clip for _, _, clip in live])
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                for request, _, _ in live:
                    failed[id(request)] = exc
                continue
            self.batches += 1
            for (request, n, _), result in zip(live, out, strict=True):
                results[id(request)][n] = result
        for request in requests:
            if id(request) in failed:
                request.future.set_exception(failed[id(request)])
            else:
                got = results[id(request)]
                request.future.set_result([got[n] for n in range(len(request.clips))])

    def _split(
        self, entries: list[tuple[_Request[R], int, np.ndarray]]
    ) -> list[list[tuple[_Request[R], int, np.ndarray]]]:
        batches: list[list[tuple[_Request[R], int, np.ndarray]]] = []
        for entry in entries:
            current = batches[-1] if batches else None
            if (
                current is not None
                and len(current) < self.max_batch
                and len(entry[2]) <= len(current[0][2]) * self.max_ratio + self.slack
            ):
                current.append(entry)
            else:
                batches.append([entry])
        return batches
