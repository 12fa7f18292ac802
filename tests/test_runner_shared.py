"""Two job runners on one database, as two servers: each file runs once, on either, and a job
cancelled through the other server stops where it runs. On SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tingji.errors import DatabaseError
from tingji.jobs.runner import JobCancelled, JobRunner, Progress
from tingji.jobs.storage import Storage
from tingji.types import ModelInfo, Segment, TranscribeOptions, Transcript, options_from_dict

Open = Callable[[], Storage]


class Recognise:
    """Takes ``seconds`` per file, ticking progress; remembers what it ran and what stopped."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ran: list[str] = []
        self.stopped: list[str] = []
        self.started = threading.Event()

    def __call__(
        self, path: Path, options: TranscribeOptions, model: str, progress: Progress
    ) -> Transcript:
        self.started.set()
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            if not progress(0.5, 1.0):
                self.stopped.append(path.name)
                raise JobCancelled
            time.sleep(0.02)
        self.ran.append(path.name)
        model_info = ModelInfo("fake", "fake", "-", "cpu", "int8")
        return Transcript(path.name, [Segment(0, 0, 1, path.name)], "zh", 0.9, 1.0, 0.1, model_info)


def _runner(storage: Storage, recognise: Recognise, node: str, tmp_path: Path) -> JobRunner:
    runner = JobRunner(
        storage, tmp_path, recognise, options_from_dict, lanes=2, lease_s=3.0, node=node
    )
    runner.start()
    return runner


def _wait(storage: Storage, job_id: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        job = storage.get_job(job_id)
        assert job is not None
        if job.status not in ("queued", "running"):
            return job.status
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def test_two_runners_share_a_queue_and_run_each_file_once(
    open_storage: Open, tmp_path: Path
) -> None:
    a, b = open_storage(), open_storage()
    work_a, work_b = Recognise(0.3), Recognise(0.3)
    # both started before the job: on SQLite a start requeues every running file (one box)
    runners = [_runner(a, work_a, "box-a", tmp_path), _runner(b, work_b, "box-b", tmp_path)]
    files = [(f"f{n}.wav", f"f{n}.wav", 10) for n in range(8)]
    a.create_job("job", files, options={}, model="fake")
    for runner in runners:
        runner.notify()  # at once, not at the next poll (a second later)
    try:
        assert _wait(b, "job") == "done"
    finally:
        for runner in runners:
            runner.stop()
    assert sorted(work_a.ran + work_b.ran) == sorted(f for f, _, _ in files)
    job = a.get_job("job")
    assert job is not None
    nodes = {f.node for f in job.files}
    assert nodes == {"box-a", "box-b"}, nodes
    assert len(a.search("wav", limit=50)[0]) == 8  # each in history once


def test_a_job_cancelled_on_the_other_server_stops_where_it_runs(
    open_storage: Open, tmp_path: Path
) -> None:
    a, b = open_storage(), open_storage()
    a.create_job("job", [("long.wav", "long.wav", 10)], options={}, model="fake")
    work = Recognise(60.0)
    runner = _runner(a, work, "box-a", tmp_path)
    try:
        assert work.started.wait(30)
        cancelled = time.monotonic()
        assert b.cancel_job("job")
        while not work.stopped:
            assert time.monotonic() - cancelled < 10, "the running file did not stop"
            time.sleep(0.05)
        assert time.monotonic() - cancelled < 3  # seen within about a second
    finally:
        runner.stop()
    job = b.get_job("job")
    assert job is not None and job.status == "cancelled" and work.ran == []


def test_a_lane_outlives_a_database_that_is_away_for_a_moment(
    open_storage: Open, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = open_storage()
    claim, calls = storage.next_queued_file, []

    def flaky(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= 2:
            raise DatabaseError("cannot connect to the database postgresql://x:***@db/t")
        return claim(**kwargs)

    monkeypatch.setattr(storage, "next_queued_file", flaky)
    storage.create_job("job", [("a.wav", "a.wav", 10)], options={}, model="fake")
    work = Recognise(0.0)
    runner = JobRunner(storage, tmp_path, work, options_from_dict, lanes=1, lease_s=3.0)
    runner.start()
    try:
        assert _wait(storage, "job", timeout=30) == "done"
    finally:
        runner.stop()
    assert work.ran == ["a.wav"]
