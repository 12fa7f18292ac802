"""The decode batcher: requests from several threads share batches, each gets its own answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable

import numpy as np
import pytest

from tingji.engine.batcher import Batcher


class Recorder:
    """A run_batch that answers each clip with its length and records the batches it saw."""

    def __init__(self, delay: float = 0.0, fail_on: int | None = None) -> None:
        self.batches: list[tuple[Hashable, list[int]]] = []
        self.delay = delay
        self.fail_on = fail_on

    def __call__(self, key: Hashable, clips: list[np.ndarray]) -> list[str]:
        lengths = [len(c) for c in clips]
        self.batches.append((key, lengths))
        time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in lengths:
            raise ValueError(f"cannot decode a clip of {self.fail_on}")
        return [f"{key}:{n}" for n in lengths]


def clip(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.float32)


def test_one_request_is_answered_in_order() -> None:
    recorder = Recorder()
    batcher: Batcher[str] = Batcher(recorder, max_batch=8, max_ratio=100, slack=0)
    try:
        assert batcher.submit("a", [clip(30), clip(10), clip(20)]) == ["a:30", "a:10", "a:20"]
        assert recorder.batches == [("a", [10, 20, 30])]  # sorted by length, one call
        assert batcher.submit("a", []) == []
    finally:
        batcher.close()


def test_batches_are_split_by_size_and_by_length_ratio() -> None:
    recorder = Recorder()
    batcher: Batcher[str] = Batcher(recorder, max_batch=2, max_ratio=2.0, slack=0)
    try:
        batcher.submit("k", [clip(n) for n in (10, 11, 12, 50)])
    finally:
        batcher.close()
    assert [lengths for _, lengths in recorder.batches] == [[10, 11], [12], [50]]


def test_concurrent_requests_share_batches_by_key() -> None:
    """While the model works, requests queue up; the next batch takes them together."""
    recorder = Recorder(delay=0.2)
    batcher: Batcher[str] = Batcher(recorder, max_batch=8, max_ratio=100, slack=0)
    answers: dict[int, list[str]] = {}

    def ask(n: int, key: str) -> None:
        answers[n] = batcher.submit(key, [clip(100 + n)])

    try:
        first = threading.Thread(target=ask, args=(0, "x"))
        first.start()
        time.sleep(0.05)  # the first batch is running now
        others = [
            threading.Thread(target=ask, args=(n, "x" if n < 4 else "y")) for n in (1, 2, 3, 4)
        ]
        for thread in others:
            thread.start()
        for thread in [first, *others]:
            thread.join(10)
    finally:
        batcher.close()
    assert answers == {n: [f"{'x' if n < 4 else 'y'}:{100 + n}"] for n in range(5)}
    assert recorder.batches[0] == ("x", [100])
    assert sorted(recorder.batches[1:]) == [("x", [101, 102, 103]), ("y", [104])]


def test_a_failing_batch_fails_only_its_requests() -> None:
    recorder = Recorder(fail_on=13)
    batcher: Batcher[str] = Batcher(recorder, max_batch=1)
    try:
        with pytest.raises(ValueError, match="clip of 13"):
            batcher.submit("k", [clip(12), clip(13)])
        assert batcher.submit("k", [clip(12)]) == ["k:12"]
    finally:
        batcher.close()
    with pytest.raises(RuntimeError, match="unloaded"):
        batcher.submit("k", [clip(1)])


class Overlap(Recorder):
    """A run_batch that notes how many batches run at once."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay)
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self, key: Hashable, clips: list[np.ndarray]) -> list[str]:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return super().__call__(key, clips)
        finally:
            with self._lock:
                self.running -= 1


def test_two_workers_run_two_batches_at_once_longest_first() -> None:
    """Work queued together is split so that each worker has a share (a batch alone costing
    more than half is halved), and the largest batch starts first."""
    recorder = Overlap(delay=0.2)
    batcher: Batcher[str] = Batcher(
        recorder, max_batch=16, max_ratio=2.0, slack=3 * 16000, workers=2
    )
    seconds = [20, 21, 22, 23]  # one batch by length, halved for the two workers
    answers: dict[str, list[str]] = {}

    def ask(key: str, lengths: list[int]) -> None:
        answers[key] = batcher.submit(key, [clip(n * 16000) for n in lengths])

    try:
        threads = [
            threading.Thread(target=ask, args=("long", seconds)),
            threading.Thread(target=ask, args=("short", [2, 3])),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    finally:
        batcher.close()
    assert answers == {
        "long": [f"long:{n * 16000}" for n in seconds],
        "short": ["short:32000", "short:48000"],
    }
    assert recorder.most == 2
    runs = [(key, [n // 16000 for n in lengths]) for key, lengths in recorder.batches]
    assert sorted(runs) == [("long", [20, 21]), ("long", [22, 23]), ("short", [2, 3])]
    assert runs[0] == ("long", [22, 23])  # the largest first


def test_with_two_workers_a_failure_still_fails_only_its_request() -> None:
    recorder = Recorder(fail_on=13)
    batcher: Batcher[str] = Batcher(recorder, max_batch=1, workers=2)
    try:
        with pytest.raises(ValueError, match="clip of 13"):
            batcher.submit("k", [clip(12), clip(13), clip(14)])
        assert batcher.submit("k", [clip(12), clip(14)]) == ["k:12", "k:14"]
    finally:
        batcher.close()
