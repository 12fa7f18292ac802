"""The batch runner: a few threads ("lanes") that take queued job files in order and recognise
them. Files on different lanes run at the same time, so their decodes share the model's batches
(see :mod:`tingji.engine.batcher`); at most ``lanes`` files are open at once.

Every finished file is saved with its result in one transaction, so a server killed mid-batch
loses nothing: at the next start, files left ``running`` go back to the queue and the job goes on.
Live progress (audio seconds done of the current file) is kept in memory and merged into
:meth:`JobRunner.status`.

Servers sharing one database share its queue. A heartbeat thread renews the lease of each file
running here and, once a second, checks that it is still held: a file cancelled or deleted on
another server stops here at its next progress tick. Files whose server died (lease run out)
are requeued by whichever server looks first.

Files are recognised in this process, or elsewhere: a ``recognise`` that sends them to a cluster
(:mod:`tingji.cluster.dispatch`) returns :class:`Recognised` with the node that did the work,
and its :class:`Workers` keep lanes from claiming files while every worker is busy.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tingji.errors import TingjiError
from tingji.jobs.storage import Storage
from tingji.types import JobStatus, TranscribeOptions, Transcript

log = logging.getLogger("tingji.jobs")

Progress = Callable[[float, float | None], bool]


class FileProgress:
    """``progress(done_s, total_s) -> keep going`` of one running file. A recogniser that runs
    the file on another machine says which in ``node`` (shown while the file runs)."""

    def __init__(self, report: Progress) -> None:
        self._report = report
        self.node: str | None = None

    def __call__(self, done: float, total: float | None) -> bool:
        return self._report(done, total)


@dataclass
class Recognised:
    """A transcript and the machine that made it, from a recogniser that runs files elsewhere."""

    transcript: Transcript
    node: str | None = None


Recognise = Callable[[Path, TranscribeOptions, str, FileProgress], Transcript | Recognised]
"""(audio path, options, model, progress) -> transcript (or :class:`Recognised`)."""


class Workers(Protocol):
    """Workers elsewhere that ``recognise`` hands files to. A lane claims a file only once
    ``reserve`` has kept it a place, which ``recognise`` on the same thread then takes."""

    def reserve(self, timeout: float) -> bool:
        """Keep a free worker for this thread, waiting up to ``timeout`` s; False when none."""
        ...

    def release(self) -> None:
        """Give back this thread's place: no file was queued."""
        ...


@dataclass
class _Live:
    job_id: str
    file_id: int
    name: str
    done: float = 0.0
    total: float | None = None
    lost: bool = False
    """No longer held here: cancelled or deleted elsewhere, or taken over."""
    progress: FileProgress | None = None


class JobCancelled(Exception):
    """Raised inside a running file when its job was cancelled."""


class Requeue(Exception):
    """Raised by a ``recognise`` whose workers went away under the file (a cluster that stopped
    answering): the file goes back to the queue, to run again once there are workers."""


class JobRunner:
    def __init__(
        self,
        storage: Storage,
        audio_dir: Path,
        recognise: Recognise,
        options_from: Callable[[dict[str, object]], TranscribeOptions],
        *,
        lanes: int = 1,
        lease_s: float = 60.0,
        node: str | None = None,
        workers: Workers | None = None,
    ) -> None:
        """``workers``: where ``recognise`` sends files, when not in this process; a lane then
        takes a file only when one of them is free."""
        self.storage = storage
        self.audio_dir = audio_dir
        self.recognise = recognise
        self.options_from = options_from
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.lanes = max(1, lanes)
        self.workers = workers
        self._live: dict[int, _Live] = {}
        self._claim = threading.Lock()
        self._cancelled: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._changed = threading.Condition()
        self.on_file_done: Callable[[str], None] | None = None
        self.lease_s = lease_s
        self.node = node or socket.gethostname()
        self.owner = f"{self.node}/{os.getpid()}/{secrets.token_hex(4)}"
        """Who holds this runner's claims: unique to this runner, on any machine."""

    def start(self) -> None:
        requeued = self.storage.requeue_interrupted()
        if requeued:
            log.warning("resuming %d job file(s) interrupted by the last shutdown", requeued)
        for lane in range(self.lanes):
            thread = threading.Thread(target=self._loop, name=f"tingji-jobs-{lane}", daemon=True)
            thread.start()
            self._threads.append(thread)
        beat = threading.Thread(target=self._heartbeat, name="tingji-jobs-lease", daemon=True)
        beat.start()
        self._threads.append(beat)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def notify(self) -> None:
        """A job was queued."""
        self._wake.set()

    def cancel(self, job_id: str) -> bool:
        found = self.storage.cancel_job(job_id)
        if found:
            self._cancelled.add(job_id)
            self._touch()
        return found

    def delete(self, job_id: str) -> list[str] | None:
        """Stop the job's running files and delete it; the audio to remove, or None."""
        self._cancelled.add(job_id)
        files = self.storage.delete_job(job_id)
        if files is None:
            self._cancelled.discard(job_id)
        self._touch()
        return files

    def status(self, job_id: str) -> JobStatus | None:
        job = self.storage.get_job(job_id)
        if job is None:
            return None
        live = {n.file_id: n for n in list(self._live.values()) if n.job_id == job_id}
        for f in job.files:
            now = live.get(f.id)
            if now is not None and f.status == "running":
                f.done_seconds = now.done
                if now.total is not None:  # unknown until the file is opened
                    f.duration = now.total
                if now.progress is not None and now.progress.node is not None:
                    f.node = now.progress.node
                if job.current_file is None:
                    job.current_file = f.name
        job.eta = _eta(job)
        return job

    def wait_for_change(self, timeout: float) -> None:
        """Block until progress is made (or ``timeout`` seconds pass); for event streams."""
        with self._changed:
            self._changed.wait(timeout)

    def _touch(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.workers is not None and not self.workers.reserve(1.0):
                continue
            try:
                with self._claim:
                    item = self.storage.next_queued_file(
                        owner=self.owner, lease_s=self.lease_s, node=self.node
                    )
            except TingjiError as exc:  # the database is away: the lane waits and tries again
                log.warning("no job file claimed: %s", exc)
                item = None
            if item is None:
                if self.workers is not None:
                    self.workers.release()
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            job_id, job_file = item
            self._run_file(job_id, job_file.id, job_file.name, job_file.audio_file)
            self._touch()

    def _heartbeat(self) -> None:
        """Renew the leases of the files running here (every third of a lease), see once a
        second whether each is still held, and requeue the files of dead servers (once a
        lease)."""
        renewed = requeued = time.monotonic()
        while not self._stop.wait(min(1.0, self.lease_s / 3)):
            now = time.monotonic()
            try:
                live = list(self._live.values())
                if live:
                    renew = now - renewed >= self.lease_s / 3
                    held = self.storage.hold_claims(
                        self.owner, [n.file_id for n in live], self.lease_s if renew else None
                    )
                    if renew:
                        renewed = now
                    for n in live:
                        n.lost = n.file_id not in held
                if now - requeued >= self.lease_s:
                    requeued = now
                    if self.storage.requeue_expired():
                        log.warning("requeued job file(s) of a server that stopped answering")
                        self._wake.set()
            except Exception as exc:  # noqa: BLE001 - the beat goes on; the next one tries again
                log.warning("job leases not renewed: %s", exc)

    def _run_file(self, job_id: str, file_id: int, name: str, audio_file: str | None) -> None:
        job = self.storage.get_job(job_id)
        if job is None:
            return
        live = self._live[file_id] = _Live(job_id, file_id, name)
        self._touch()

        def report(done: float, total: float | None) -> bool:
            live.done, live.total = done, total
            self._touch()
            return job_id not in self._cancelled and not live.lost and not self._stop.is_set()

        progress = live.progress = FileProgress(report)
        try:
            if audio_file is None:
                raise TingjiError("the uploaded audio is no longer stored", source=name)
            options = self.options_from(job.options)
            result = self.recognise(self.audio_dir / audio_file, options, job.model, progress)
        except JobCancelled:
            log.info("job %s: stopped %s (cancelled or deleted, here or on another server)",
                     job_id, name)  # fmt: skip
            return
        except Requeue as again:
            log.warning("job %s: %s goes back to the queue: %s", job_id, name, again)
            self.storage.requeue_file(job_id, file_id)
            self._wake.set()
            return
        except TingjiError as exc:
            message = exc.message
            self.storage.fail_file(job_id, file_id, message, live.total, node=self.node)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            log.exception("job %s file %s failed", job_id, name)
            self.storage.fail_file(
                job_id, file_id, f"internal error: {exc}", live.total, node=self.node
            )
        else:
            done = result if isinstance(result, Recognised) else Recognised(result)
            self.storage.finish_file(
                job_id, file_id, done.transcript, job.options, node=done.node or self.node
            )
        finally:
            self._live.pop(file_id, None)
        if self.on_file_done is not None:
            self.on_file_done(job_id)


def _eta(job: JobStatus) -> float | None:
    if job.status not in ("running", "queued"):
        return 0.0 if job.status == "done" else None
    done = job.audio_done
    if job.elapsed <= 0 or done <= 0:
        return None
    rate = done / job.elapsed
    total = job.audio_total
    if total is None:
        # unknown durations: estimate from the bytes of what is finished
        finished = [f for f in job.files if f.status == "done" and f.duration]
        if not finished:
            return None
        per_byte = sum(f.duration or 0 for f in finished) / max(1, sum(f.size for f in finished))
        total = sum(f.duration if f.duration else f.size * per_byte for f in job.files)
    return max(0.0, (total - done) / rate) if rate > 0 else None
