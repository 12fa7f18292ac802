"""The one facade that the CLI, the server and the UI call.

It owns the loaded models, the history database, stored uploads, the bounded pool that runs
recognitions and the batch-job runner. Nothing here knows about HTTP or Gradio.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from tingji import audio, exports
from tingji.config import Settings
from tingji.engine.backend import Backend
from tingji.engine.buffered import BufferedRecognizer
from tingji.engine.diarize import Diarizer
from tingji.engine.manager import ModelManager
from tingji.engine.online import DecodeGate, OnlineRecognizer, StreamOptions
from tingji.engine.pipeline import Source, Transcription
from tingji.engine.streaming import LiveSession, Recognizer
from tingji.errors import AudioError, BusyError, NotFoundError, OptionError, TooManyFilesError
from tingji.jobs.audio_store import AudioStore, LiveRecording, StoredAudio
from tingji.jobs.runner import JobCancelled, JobRunner
from tingji.jobs.storage import Storage
from tingji.speaker_service import SpeakerService
from tingji.system import SystemInfo, system_info
from tingji.types import (
    ClusterInfo,
    HistoryEntry,
    JobStatus,
    ModelInfo,
    Segment,
    TranscribeOptions,
    Transcript,
    options_from_dict,
    options_to_dict,
)

if TYPE_CHECKING:
    from tingji.cluster.bridge import ClusterBridge

log = logging.getLogger("tingji")

LIVE_TICKET_SECONDS = 600.0
"""How long a web page's live-stream ticket is good for (a stream started in time goes on)."""
ORPHAN_IDLE_S = 3600.0
"""An upload untouched this long that nothing refers to is a leftover of a killed request, and
is removed at start. Long enough to spare the work of another server on the same data dir: an
upload being written is touched with every MiB, a recognition's history entry comes at its end.
"""


@dataclass
class MemoryReport:
    unloaded: list[ModelInfo]
    rss_before_mb: int
    rss_after_mb: int
    gpu_used_before_mb: int | None
    gpu_used_after_mb: int | None


@dataclass
class Saved:
    """A recognition and the id of its history entry."""

    transcript: Transcript
    entry_id: int


class Tingji(SpeakerService):
    """Recognition with the configured defaults, models loaded once and shared."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.models = ModelManager(
            self.settings.model_cache,
            device=self.settings.device,
            compute_type=self.settings.compute_type,
            cpu_threads=self.settings.cpu_threads,
            decode_window=self.settings.decode_window,
        )
        self._storage: Storage | None = None
        self._runner: JobRunner | None = None
        self._dispatch: ClusterBridge | None = None
        self._ticket_key = secrets.token_bytes(32)
        self._slots = threading.BoundedSemaphore(self.settings.workers + self.settings.max_queue)
        self._workers = threading.BoundedSemaphore(self.settings.workers)
        self._waiting = 0
        self._active = 0  # recognitions holding a model: release_memory unloads none then
        self._count_lock = threading.Lock()
        self._live: dict[int, LiveRecording | None] = {}  # open live streams' audio, by id
        self._live_starting = 0
        self._gates: weakref.WeakKeyDictionary[Backend, DecodeGate] = weakref.WeakKeyDictionary()
        shared = self.settings.database_url is not None  # uploads kept in the database too
        self.audio_store = AudioStore(
            self.settings.audio_dir,
            int(self.settings.max_upload_mb * 2**20),
            mirror=self._audio_mirror if shared else None,
        )
        self._diarizer: Diarizer | None = None
        self._diarizer_lock = threading.Lock()

    # -- recognition -------------------------------------------------------------------------
    def options(self, **overrides: Any) -> TranscribeOptions:
        """Request options: the settings' defaults with ``overrides`` applied."""
        s = self.settings
        base = TranscribeOptions(
            language=s.language, itn=s.itn, script=s.script, vad=s.vad.to_options()
        )
        return replace(base, **overrides)

    def offered_models(self) -> list[str]:
        """Models a client may ask for by name: the configured ones first, then those of the
        catalogue already on this machine. A client can start a download (of gigabytes) only
        where the operator allows it (``allow_model_downloads``)."""
        from tingji.engine.funasr.catalog import offered_models as funasr_models

        s = self.settings
        if s.allow_model_downloads:
            from faster_whisper.utils import available_models

            whisper = available_models()
        else:
            from tingji.engine.whisper import cached_models

            whisper = cached_models(s.model_cache)
        funasr = funasr_models(s.model_cache, downloadable=s.allow_model_downloads)
        return list(dict.fromkeys([s.model, *s.extra_models, *whisper, *funasr]))

    def models_on_disk(self) -> set[str]:
        """Of :meth:`offered_models`, those that need no download: the embedded model, local
        directories and the models already in the cache."""
        from tingji.engine.funasr.catalog import offered_models as funasr_models
        from tingji.engine.models import EMBEDDED_NAMES
        from tingji.engine.whisper import cached_models

        s = self.settings
        here = {*cached_models(s.model_cache), *funasr_models(s.model_cache)}
        for name in self.offered_models():
            if name in EMBEDDED_NAMES or Path(name).expanduser().is_dir():
                here.add(name)
        return here

    def check_model(self, model: str | None) -> str:
        """A client's model choice, checked against :meth:`offered_models` (never a path)."""
        if model is None or model in ("", "whisper-1", "default"):
            return self.settings.model
        if model not in self.offered_models():
            error = OptionError(
                f"model '{model}' is not offered here; choose one of "
                + ", ".join(self.offered_models())
            )
            error.model = model
            raise error
        return model

    def backend(self, model: str | None = None) -> Backend:
        return self.models.get(model or self.settings.model)

    def start(
        self,
        source: Source,
        options: TranscribeOptions | None = None,
        *,
        model: str | None = None,
        name: str | None = None,
        voices: dict[str, np.ndarray] | None = None,
        checkpoint: Callable[[], None] | None = None,
    ) -> Transcription:
        """Begin a run; iterate it for segments as they come, or call ``result()``.
        ``voices``: known speakers' voices (from :meth:`voice_of`), by name; ``checkpoint``:
        called while speakers are told apart, raise from it to stop (see Transcription)."""
        return Transcription(
            self.backend(model),
            source,
            options or self.options(),
            beam_size=self.settings.beam_size,
            name=name,
            max_seconds=self.settings.max_audio_hours * 3600,
            diarize=self._speakers_for(voices or {}),
            checkpoint=checkpoint,
        )

    def transcribe(
        self,
        source: Source,
        options: TranscribeOptions | None = None,
        *,
        model: str | None = None,
        name: str | None = None,
    ) -> Transcript:
        return self.start(source, options, model=model, name=name).result()

    # -- the bounded pool for API requests ---------------------------------------------------
    def recognise_and_save(
        self,
        stored: StoredAudio,
        options: TranscribeOptions,
        *,
        model: str | None = None,
        on_segment: Callable[[Segment, Transcription], None] | None = None,
        voices: dict[str, np.ndarray] | None = None,
        on_start: Callable[[Transcription], None] | None = None,
    ) -> Saved:
        """Recognise a stored upload in a worker slot and save it to history (blocking).

        ``on_start`` gets the recognition once it has a worker (its ``position``, ``duration``
        and ``stage`` tell how far it is); ``on_segment`` each segment as it is ready. Raises
        :class:`BusyError` at once when every worker is busy and the queue is full.
        """
        if not self._slots.acquire(blocking=False):
            raise BusyError("the server is busy: every worker and queue place is taken")
        try:
            with self._count_lock:
                self._waiting += 1
            with self._workers:
                with self._count_lock:
                    self._waiting -= 1
                path = self.audio_store.path(stored.file)
                with self._in_use():
                    run = self.start(
                        str(path), options, model=model, name=stored.name, voices=voices
                    )
                    if on_start is not None:
                        on_start(run)
                    for segment in run:
                        if on_segment is not None:
                            on_segment(segment, run)
                    transcript = run.result()
        finally:
            self._slots.release()
        keep = self.settings.audio_retention != "delete"
        entry_id = self.history.add_transcription(
            transcript,
            name=stored.name,
            options=options_to_dict(options),
            audio_file=stored.file if keep else None,
        )
        if not keep:
            self.audio_store.delete([stored.file])
        return Saved(transcript, entry_id)

    @contextmanager
    def _in_use(self) -> Iterator[None]:
        """Mark a recognition as holding a model, so that release_memory leaves it loaded."""
        with self._count_lock:
            self._active += 1
        try:
            yield
        finally:
            with self._count_lock:
                self._active -= 1

    def queue_length(self) -> int:
        with self._count_lock:
            waiting = self._waiting
        return waiting + (self._storage.queued_files() if self._storage else 0)

    def save_upload(self, stream: BinaryIO, name: str) -> StoredAudio:
        """Store an upload that opens as audio tingji decodes; else keep nothing and raise
        the ``AudioError`` under the client's ``name``."""
        stored = self.audio_store.save(stream, name)
        try:
            audio.probe(self.audio_store.path(stored.file))
        except BaseException as exc:
            self.discard_upload(stored)
            if isinstance(exc, AudioError):
                exc.source = name
            raise
        return stored

    def discard_upload(self, stored: StoredAudio) -> None:
        self.audio_store.delete([stored.file])

    # -- live streams ------------------------------------------------------------------------
    def start_live(
        self,
        options: TranscribeOptions | None = None,
        *,
        sample_rate: int = 16000,
        partials: bool = True,
        whole: bool = False,
        model: str | None = None,
        name: str = "live",
    ) -> LiveSession:
        """Open a live stream of s16le PCM (blocking: the model may load). End it with
        :meth:`end_live`, whatever happens.

        ``partials``: decode the utterance in progress too; ``whole``: keep the audio and
        transcribe it as a file when the stream ends. Raises :class:`BusyError` when
        ``stream_max_sessions`` streams are open.

        The audio is stored as it arrives, as uploads are (unless ``audio_retention`` is
        ``delete``), for the history entry that :meth:`end_live` makes.
        """
        s = self.settings
        options = options or self.options()
        with self._count_lock:
            open_now = len(self._live) + self._live_starting
            if open_now >= s.stream_max_sessions:
                raise BusyError(f"the server is busy: {open_now} live streams are open")
            self._active += 1
            self._live_starting += 1
        recording: LiveRecording | None = None
        try:
            backend = self.backend(model)
            recognizer: Recognizer
            if whole:
                recognizer = BufferedRecognizer(backend, options, beam_size=s.beam_size, name=name)
            else:
                stream = StreamOptions(
                    partials=partials,
                    min_silence_ms=s.stream_min_silence_ms,
                    partial_interval=s.stream_partial_interval_s,
                    final_beam_size=s.stream_beam_size,
                )
                with self._count_lock:
                    gate = self._gates.setdefault(backend, DecodeGate())
                recognizer = OnlineRecognizer(
                    backend, options, stream, beam_size=s.beam_size, gate=gate
                )
            recording = self._live_recording(name)
            session = LiveSession(
                recognizer,
                backend=backend,
                options=options,
                sample_rate=sample_rate,
                name=name,
                recording=recording,
            )
        except BaseException:
            if recording is not None:
                recording.discard()
            with self._count_lock:
                self._live_starting -= 1
                self._active -= 1
            raise
        with self._count_lock:
            self._live_starting -= 1
            self._live[id(session)] = recording
        return session

    def _live_recording(self, name: str) -> LiveRecording | None:
        """Where a live stream's audio is stored; None where it is not kept (retention
        ``delete``, or a store that cannot be written: the stream goes on without)."""
        if self.settings.audio_retention == "delete":
            return None
        try:
            return self.audio_store.record(name)
        except OSError as exc:
            log.warning("live audio %r will not be kept: %s", name, exc)
            return None

    def live_ticket(self, seconds: float = LIVE_TICKET_SECONDS) -> str:
        """A short-lived pass for the live WebSocket, handed to a signed-in web page (whose
        script cannot send the API key it never saw)."""
        expires = str(int(time.time() + seconds))
        return f"{expires}.{self._sign(expires)}"

    def check_live_ticket(self, ticket: str) -> bool:
        expires, _, signature = ticket.partition(".")
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(signature, self._sign(expires))

    def _sign(self, text: str) -> str:
        return hmac.new(self._ticket_key, text.encode(), "sha256").hexdigest()

    def end_live(self, session: LiveSession, *, save: bool = True) -> int | None:
        """Close a live stream and save what it recognised to history, with its audio (unless
        ``save`` is False or nothing was said: then its audio goes too); returns the history
        entry's id. Closing twice is harmless.
        """
        with self._count_lock:
            if id(session) not in self._live:
                return None
            recording = self._live.pop(id(session))
            self._active -= 1
        stored: StoredAudio | None = None
        try:
            session.close()
            transcript = session.transcript()
            if not save or not transcript.segments:
                return None
            stored = recording.keep() if recording is not None else None
            return self.history.add_transcription(
                transcript,
                name=session.name,
                options=options_to_dict(session.options),
                audio_file=stored.file if stored is not None else None,
            )
        except BaseException:
            if stored is not None:
                self.audio_store.delete([stored.file])
            raise
        finally:
            if recording is not None:
                recording.discard()  # what was not kept

    def live_streams(self) -> int:
        """Live streams open now."""
        with self._count_lock:
            return len(self._live) + self._live_starting

    # -- history -----------------------------------------------------------------------------
    @property
    def history(self) -> Storage:
        """The history database, opened (and migrated) on first use; raises
        :class:`tingji.errors.DatabaseError` when it cannot be reached."""
        if self._storage is None:
            self._storage = Storage.open(self.settings)
        return self._storage

    def _audio_mirror(self) -> Storage | None:
        return self.history if self.history.shares_audio else None

    def get_entry(self, entry_id: int) -> HistoryEntry:
        entry = self.history.get_transcription(entry_id)
        if entry is None:
            raise NotFoundError(f"no history entry {entry_id}")
        return entry

    def entry_audio(self, entry_id: int) -> Path | None:
        entry = self.get_entry(entry_id)
        if entry.audio_file is None:
            return None
        return self.audio_store.local(entry.audio_file)

    def delete_entries(self, ids: list[int]) -> int:
        """Delete history entries and their stored audio; returns how many existed."""
        existing = [i for i in ids if self.history.get_transcription(i) is not None]
        files = self.history.delete_transcriptions(existing)
        self.audio_store.delete(files)
        return len(existing)

    def history_csv(self, query: str = "", **filters: Any) -> Iterator[str]:
        """The history (filtered as in search) as CSV, streamed row by row."""
        return exports.history_csv(self.history.iter_entries(query, **filters))

    # -- batch jobs --------------------------------------------------------------------------
    @property
    def runner(self) -> JobRunner:
        if self._runner is None:
            if self.settings.ray_address:
                from tingji.cluster.bridge import ClusterBridge

                dispatch = self._dispatch = ClusterBridge(self.settings, self._voice_embeddings)

                def on_cluster(path: Path, *rest: Any) -> Any:  # the audio here first
                    return dispatch.recognise(self.audio_store.local(path.name) or path, *rest)

                self._runner = JobRunner(
                    self.history,
                    self.settings.audio_dir,
                    on_cluster,
                    options_from_dict,
                    lanes=self.settings.ray_max_running,
                    workers=dispatch,
                    lease_s=self.settings.job_lease_s,
                    node=self.settings.node_name,
                )
            else:
                self._runner = JobRunner(
                    self.history,
                    self.settings.audio_dir,
                    self._recognise_job_file,
                    options_from_dict,
                    lanes=self.settings.workers,
                    lease_s=self.settings.job_lease_s,
                    node=self.settings.node_name,
                )
            self._runner.on_file_done = self._after_job_file
        return self._runner

    def _voice_embeddings(self) -> dict[str, np.ndarray]:
        """The enrolled voices, by name, for diarization on a cluster node."""
        return {v.name: v.embedding for v in self.history.voices()}

    def cluster(self) -> ClusterInfo | None:
        """The Ray cluster batch jobs run on (nodes, CPUs, GPUs, files running there), or None
        when none is configured; an unreachable one says so in ``error``."""
        if not self.settings.ray_address:
            return None
        if self._dispatch is None:  # asked of the driver process: this one never joins Ray
            self.runner  # noqa: B018 - makes the bridge
        assert self._dispatch is not None
        self._dispatch.start()
        return self._dispatch.info()

    def start_jobs(self) -> None:
        """Start the batch runner (resuming files a killed server left unfinished), after
        removing the uploads a killed server left behind."""
        self.apply_retention()
        self.sweep_uploads()
        self.runner.start()
        if self._dispatch is not None:
            self._dispatch.start()

    def sweep_uploads(self) -> int:
        """Delete stored uploads that no history entry or job refers to, and uploads never
        completed, once untouched for ``ORPHAN_IDLE_S``; returns how many went."""
        removed = self.audio_store.sweep(self.history.audio_in_use(), ORPHAN_IDLE_S)
        if removed:
            log.info("removed %d upload(s) left behind by an interrupted request", len(removed))
        return len(removed)

    def stop_jobs(self) -> None:
        if self._runner is not None:
            self._runner.stop()
        if self._dispatch is not None:
            self._dispatch.close()

    def create_job(
        self, files: list[StoredAudio], options: TranscribeOptions, model: str | None = None
    ) -> str:
        if len(files) > self.settings.max_job_files:
            raise TooManyFilesError(
                f"{len(files)} files is more than the {self.settings.max_job_files} a job takes"
            )
        durations: list[float | None] = []
        for f in files:  # each file is checked before the job exists
            try:
                durations.append(audio.probe(self.audio_store.path(f.file)).duration)
            except AudioError as exc:
                exc.source = f.name
                raise
        job_id = uuid.uuid4().hex[:16]
        self.history.create_job(
            job_id,
            [(f.name, f.file, f.size) for f in files],
            options=options_to_dict(options),
            model=model or self.settings.model,
        )
        job = self.history.get_job(job_id)
        assert job is not None
        for job_file, duration in zip(job.files, durations, strict=True):
            self.history.set_file_duration(job_file.id, duration)
        self.runner.notify()
        return job_id

    def job(self, job_id: str) -> JobStatus:
        status = self.runner.status(job_id)
        if status is None:
            raise NotFoundError(f"no job {job_id}")
        return status

    def cancel_job(self, job_id: str) -> JobStatus:
        if not self.runner.cancel(job_id):
            raise NotFoundError(f"no job {job_id}")
        self._after_job_file(job_id)
        return self.job(job_id)

    def delete_job(self, job_id: str) -> None:
        """Delete a job (cancelling what is left of it) and the audio only it used; the
        history entries of its finished files stay."""
        files = self.runner.delete(job_id)
        if files is None:
            raise NotFoundError(f"no job {job_id}")
        self.audio_store.delete(files)

    def job_csv(self, job_id: str) -> str:
        return exports.job_csv(self.job(job_id), self._entry_of)

    def job_zip(self, job_id: str) -> bytes:
        return exports.job_zip(self.job(job_id), self._entry_of)

    def _entry_of(self, entry_id: int | None) -> HistoryEntry | None:
        return self.history.get_transcription(entry_id) if entry_id else None

    def recognise_file(
        self,
        source: Source,
        options: TranscribeOptions,
        model: str,
        progress: Callable[[float, float | None], bool],
        *,
        name: str,
        voices: dict[str, np.ndarray] | None = None,
    ) -> Transcript:
        """One file of a batch, start to end: ``progress(done_s, total_s)`` is told after each
        segment and now and then while speakers are told apart, and a False from it stops the
        file (:class:`JobCancelled`)."""
        duration: list[float | None] = [None]  # known once the run has opened the file

        def checkpoint() -> None:  # a cancel reaches a file while its speakers are told apart
            if not progress(0.0, duration[0]):
                raise JobCancelled

        with self._in_use():
            run = self.start(
                source, options, model=model, name=name, voices=voices, checkpoint=checkpoint
            )
            duration[0] = run.duration
            if not progress(0.0, run.duration):
                raise JobCancelled
            for _ in run:
                if not progress(run.position, run.duration):
                    raise JobCancelled
            return run.result()

    def _recognise_job_file(
        self,
        path: Path,
        options: TranscribeOptions,
        model: str,
        progress: Callable[[float, float | None], bool],
    ) -> Transcript:
        path = self.audio_store.local(path.name) or path  # stored by another server, maybe
        return self.recognise_file(str(path), options, model, progress, name=path.name)

    def _after_job_file(self, job_id: str) -> None:
        """Remove audio no longer of use: a failed file's always, and with
        ``audio_retention=delete`` every finished file's."""
        job = self.history.get_job(job_id)
        if job is None:
            return
        delete = self.settings.audio_retention == "delete"
        ended = ("done", "failed", "cancelled") if delete else ("failed",)
        gone = [f.audio_file for f in job.files if f.audio_file and f.status in ended]
        if gone:
            self.audio_store.delete(gone)
            self.history.forget_audio(gone)

    def apply_retention(self) -> int:
        """Delete stored audio past the retention period; returns how many files went."""
        days = self.settings.retention_days
        if days is None:
            return 0
        old = [
            f for f in self.audio_store.older_than(days) if f not in self.history.unfinished_audio()
        ]
        self.audio_store.delete(old)
        self.history.forget_audio(old)
        return len(old)

    # -- system ------------------------------------------------------------------------------
    def system(self) -> SystemInfo:
        return system_info()

    def release_memory(self) -> MemoryReport:
        """Unload the models when no recognition is using them; memory before and after."""
        before = system_info()
        with self._count_lock:  # a run starting now waits, then loads the model again
            unloaded = [] if self._active else self.models.unload()
        after = system_info()
        return MemoryReport(
            unloaded=unloaded,
            rss_before_mb=before.process_rss_mb,
            rss_after_mb=after.process_rss_mb,
            gpu_used_before_mb=_gpu_used(before),
            gpu_used_after_mb=_gpu_used(after),
        )

    def close(self) -> None:
        self.stop_jobs()
        if self._storage is not None:
            self._storage.close()
            self._storage = None


def _gpu_used(info: SystemInfo) -> int | None:
    used = [g.memory_used_mb for g in info.gpus if g.memory_used_mb is not None]
    return sum(used) if used else None
