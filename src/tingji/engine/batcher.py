"""Coalescing the decode requests of several threads into batches for one model.

A model decodes one batch at a time on each of its replicas. While they work, requests from
other threads (other HTTP requests, other files of a job, other live streams) wait in a queue;
when a worker is free, it takes everything queued, groups requests that can share a call (same
options), sorts each group by length so that short clips are not padded to long ones, and
splits them into batches of at most ``max_batch``, which the free workers run. So several short
requests share one encoder and one beam search instead of queueing behind each other, and a lone
request runs at once, without waiting for a batch to fill.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

R = TypeVar("R")

RunBatch = Callable[[Hashable, list[np.ndarray]], list[R]]


@dataclass(eq=False)
class _Request(Generic[R]):
    key: Hashable
    clips: Sequence[np.ndarray]
    future: Future[list[R]] = field(default_factory=Future)
    results: dict[int, R] = field(default_factory=dict)
    left: int = 0
    """Clips not yet answered."""
    error: BaseException | None = None


_Entry = tuple[_Request[R], int, np.ndarray]
_Batch = tuple[Hashable, list[_Entry[R]]]

GATHER_S = 0.005
"""With several workers, how long a worker that found work waits for requests sent along with
it (a file's windows with and without timestamps), so that they are planned together."""


class Batcher(Generic[R]):
    """Runs ``run_batch(key, clips)`` on worker threads for requests submitted from any thread.

    ``max_ratio`` keeps a batch's longest clip within that multiple of its shortest (plus
    ``slack`` samples), since every clip in a batch is padded to the longest. With ``workers``
    above 1 (a model with that many replicas), that many batches run at once: work queued
    together is split into at least that many batches where it can be, and the largest start
    first, so that the others run beside them.
    """

    def __init__(
        self,
        run_batch: RunBatch[R],
        *,
        max_batch: int = 8,
        max_ratio: float = 2.0,
        slack: int = 3 * 16000,
        workers: int = 1,
        name: str = "tingji-decoder",
    ) -> None:
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_ratio = max_ratio
        self.slack = slack
        self.workers = workers
        self._queue: list[_Request[R]] = []
        self._batches: list[_Batch[R]] = []
        self._cond = threading.Condition()
        self._closed = False
        self.batches = 0
        """Batches run so far (for tests and benchmarks)."""
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, key: Hashable, clips: Sequence[np.ndarray]) -> list[R]:
        """Decode ``clips`` (with options ``key``) and wait for the results, in order."""
        if not clips:
            return []
        request: _Request[R] = _Request(key, clips, left=len(clips))
        with self._cond:
            if self._closed:
                raise RuntimeError("the model was unloaded")
            self._queue.append(request)
            self._cond.notify()
        return request.future.result()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            if threading.current_thread() is not thread:
                thread.join(timeout=60)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._batches and not self._closed:
                    self._cond.wait()
                if not self._queue and not self._batches:
                    return  # closed, and nothing left
                if self._queue and not self._batches and self.workers > 1:
                    self._cond.wait(GATHER_S)
                if self._queue:
                    taken, self._queue = self._queue, []
                    self._batches.extend(self._plan(taken))
                if not self._batches:
                    continue
                key, batch = self._batches.pop(0)
                if self._batches:
                    self._cond.notify()  # a free worker can take the next one
                live = [e for e in batch if e[0].error is None]
            outcome: list[R] | BaseException
            try:
                outcome = self._run_batch(key, [clip for _, _, clip in live]) if live else []
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                outcome = exc
            with self._cond:
                self._settle(live, outcome)

    def _plan(self, taken: list[_Request[R]]) -> list[_Batch[R]]:
        """The batches for requests queued together: grouped by key, split by length."""
        groups: dict[Hashable, list[_Request[R]]] = {}
        for request in taken:
            groups.setdefault(request.key, []).append(request)
        planned: list[_Batch[R]] = []
        for key, requests in groups.items():
            entries = [(r, n, clip) for r in requests for n, clip in enumerate(r.clips)]
            entries.sort(key=lambda e: len(e[2]))
            planned.extend((key, batch) for batch in self._split(entries))
        if self.workers == 1:
            return planned
        # split the largest batch while it alone would outlast the workers' fair share
        while True:
            at = max(range(len(planned)), key=lambda n: _cost(planned[n]))
            key, largest = planned[at]
            share = sum(_cost(b) for b in planned) / self.workers
            if len(largest) < 2 or _cost(planned[at]) <= share:
                break
            half = len(largest) // 2
            planned[at : at + 1] = [(key, largest[:half]), (key, largest[half:])]
        return sorted(planned, key=_cost, reverse=True)

    def _settle(self, live: list[_Entry[R]], outcome: list[R] | BaseException) -> None:
        """Record a batch's answers (or failure); complete the requests it finished."""
        if isinstance(outcome, BaseException):
            for request, _, _ in live:
                request.error = request.error or outcome
        elif live:
            self.batches += 1
            for (request, n, _), result in zip(live, outcome, strict=True):
                request.results[n] = result
        for request, _, _ in live:
            request.left -= 1
        for request in {id(r): r for r, _, _ in live}.values():
            self._finish_if_done(request)

    @staticmethod
    def _finish_if_done(request: _Request[R]) -> None:
        if request.future.done():
            return
        if request.error is not None:
            request.future.set_exception(request.error)
        elif request.left == 0:
            request.future.set_result([request.results[n] for n in range(len(request.clips))])

    def _split(self, entries: list[_Entry[R]]) -> list[list[_Entry[R]]]:
        batches: list[list[_Entry[R]]] = []
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


def _cost(batch: _Batch[Any]) -> float:
    """Roughly what a batch costs a Whisper model, in seconds on one CPU thread (measured on
    Whisper base): the encoder pays for every clip padded to the longest, plus 3 s; beam search
    runs ~6 steps per second of the longest, each dearer with more clips."""
    clips = len(batch[1])
    seconds = len(batch[1][-1][2]) / 16000
    return 0.026 * clips * (seconds + 3) + 6 * seconds * (0.010 + 0.0025 * clips)
