"""The server's batch-job files, recognised by a pool of recognisers on a Ray cluster.

The server claims each queued file in its database as one box does (so a file is never taken
twice), then hands it to a recogniser with a free place: one Ray actor per model on each node
(:mod:`tingji.cluster.plan`), pinned to its node. The audio goes with it through Ray's object
store (or, with ``ray_audio=shared``, as a path every node sees). While the file runs its
progress is polled into the job's status, and a cancel reaches it at its next segment. The
transcript comes back with the node's name and is saved here, by ``finish_file``, whose claim
check keeps it to one history entry per file.

A recogniser whose process or node dies takes no file with it: the file starts again on
another recogniser, up to ``ray_max_attempts`` times, then fails with the reason; when the
cluster's head does not answer either, the file goes back to the queue instead (the cluster is
down, not the file's fault). A keeper
thread fits the pool to the cluster every few seconds: recognisers on nodes that left are
dropped, nodes that joined get theirs.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from tingji.cluster.connect import check_reachable, connect, nodes
from tingji.cluster.plan import Slot, plan
from tingji.cluster.worker import Outcome, Recogniser, shipped_settings
from tingji.config import Settings
from tingji.errors import ClusterError, TingjiError
from tingji.jobs.runner import FileProgress, JobCancelled, Recognised, Requeue
from tingji.types import TranscribeOptions, options_to_dict

log = logging.getLogger("tingji.cluster")

FIT_EVERY_S = 5.0
"""How often the pool is fitted to the cluster's nodes."""
POLL_S = 0.5
"""How often a running file's progress is asked for."""
RETRY_START_S = 30.0
"""After a recogniser failed to start on a node, how long until another try there."""
ASK_TIMEOUT_S = 10.0


@dataclass(eq=False)
class _Model:
    slot: Slot
    handle: Any
    starting: Any
    """The reference that resolves once the model is loaded."""
    node: str | None = None
    """The node's name, once the model is ready."""
    busy: int = 0
    since: float = field(default_factory=time.monotonic)


class _Lost(Exception):
    """The recogniser running a file died (its process, or its node)."""


class RayDispatch:
    """Recognise job files on the cluster at ``settings.ray_address``, with the
    :class:`~tingji.jobs.runner.Workers` places of the runner's lanes (run by
    :mod:`tingji.cluster.agent`, the server's driver process)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cond = threading.Condition()
        self._models: list[_Model] = []
        self._reserved = 0
        self._mine = threading.local()
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._keeper: threading.Thread | None = None
        self._start_failed: dict[str, float] = {}
        self._ray: ModuleType | None = None
        self._actor: Any = None
        self._unreachable: str | None = None

    # -- the pool ----------------------------------------------------------------------------
    def start(self) -> None:
        """Join the cluster and start the recognisers, in the background."""
        with self._cond:
            if self._keeper is None:
                self._keeper = threading.Thread(target=self._keep, name="tingji-cluster")
                self._keeper.daemon = True
                self._keeper.start()

    def close(self) -> None:
        self._stop.set()
        self._kick.set()
        with self._cond:
            self._cond.notify_all()
            models, self._models = self._models, []
        if self._keeper is not None:
            self._keeper.join(10.0)
        for model in models:
            self._kill(model)

    def load(self) -> tuple[int, int]:
        """(files running on the cluster, models ready there)."""
        with self._cond:
            ready = [m for m in self._models if m.node is not None]
            return sum(m.busy for m in ready), len(ready)

    def _keep(self) -> None:
        while not self._stop.is_set():
            try:
                self._fit()
            except TingjiError as exc:  # unreachable, or Ray missing here
                if exc.message != self._unreachable:
                    log.error("%s; batch jobs wait until it answers", exc.message)
                self._unreachable = exc.message
            except Exception:  # noqa: BLE001 - the keeper must outlive a bad answer from Ray
                log.exception("could not fit the recognisers to the Ray cluster")
            self._kick.wait(FIT_EVERY_S)
            self._kick.clear()

    def _fit(self) -> None:
        ray = self._joined()
        if self._unreachable is not None:
            log.info("the Ray cluster at %s answers again", self.settings.ray_address)
            self._unreachable = None
        listed = nodes(ray)
        alive = {n.node_id for n in listed if n.alive}
        with self._cond:
            gone = [m for m in self._models if m.slot.node_id not in alive]
            self._models = [m for m in self._models if m not in gone]
            starting = [m for m in self._models if m.node is None]
        for model in gone:
            where = model.node or model.slot.node_id[:8]
            log.warning("node %s left the cluster: its recogniser is dropped", where)
            self._kill(model)
        if starting:
            refs = [m.starting for m in starting]
            done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            for model in (m for m in starting if m.starting in done):
                self._started(ray, model)
        now = time.monotonic()
        with self._cond:
            have: dict[str, int] = {}
            for m in self._models:
                have[m.slot.node_id] = have.get(m.slot.node_id, 0) + 1
        for slot in plan(listed, self.settings):
            if have.get(slot.node_id, 0) > 0:
                have[slot.node_id] -= 1
                continue
            if now - self._start_failed.get(slot.node_id, -RETRY_START_S) < RETRY_START_S:
                continue
            self._launch(ray, slot)

    def _joined(self) -> ModuleType:
        if self._ray is None:
            ray = connect(self.settings.ray_address or "auto")
            self._actor = ray.remote(Recogniser)
            self._ray = ray
        return self._ray

    def _launch(self, ray: ModuleType, slot: Slot) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        handle = self._actor.options(
            num_cpus=slot.cpus,
            num_gpus=slot.gpus,
            max_concurrency=slot.files + 2,  # progress and cancel are answered meanwhile
            max_restarts=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(slot.node_id, soft=False),
        ).remote(shipped_settings(self.settings), slot.threads)
        with self._cond:
            self._models.append(_Model(slot, handle, handle.ready.remote()))

    def _started(self, ray: ModuleType, model: _Model) -> None:
        try:
            node = ray.get(model.starting)
        except Exception as exc:  # noqa: BLE001 - whatever stopped it is logged, then retried
            self._start_failed[model.slot.node_id] = time.monotonic()
            log.error("a recogniser could not start on node %s: %s", model.slot.node_id[:8], exc)
            with self._cond:
                if model in self._models:
                    self._models.remove(model)
            self._kill(model)
            return
        with self._cond:
            model.node = str(node)
            self._cond.notify_all()
        log.info(
            "recogniser ready on %s (%g CPUs, %g GPUs, %d file(s) at once) in %.0f s",
            node,
            model.slot.cpus,
            model.slot.gpus,
            model.slot.files,
            time.monotonic() - model.since,
        )

    def _kill(self, model: _Model) -> None:
        if self._ray is not None:
            try:
                self._ray.kill(model.handle, no_restart=True)
            except Exception:  # noqa: BLE001 - already dead is as good as killed
                log.debug("recogniser on %s was already gone", model.node)

    def _drop(self, model: _Model) -> None:
        with self._cond:
            if model not in self._models:
                return
            self._models.remove(model)
        self._kill(model)
        self._kick.set()

    # -- places: the runner's Workers ----------------------------------------------------------
    def _free(self) -> int:
        return sum(m.slot.files - m.busy for m in self._models if m.node is not None)

    def reserve(self, timeout: float) -> bool:
        self.start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._free() - self._reserved <= 0:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return False
                self._cond.wait(left)
            self._reserved += 1
            self._mine.reserved = True
            return True

    def release(self) -> None:
        with self._cond:
            self._unreserve()

    def _unreserve(self) -> None:
        if getattr(self._mine, "reserved", False):
            self._mine.reserved = False
            self._reserved -= 1
            self._cond.notify_all()

    def _take(self, progress: FileProgress) -> _Model:
        """The recogniser with the most room (this thread's reserved place first)."""
        with self._cond:
            self._unreserve()
            while True:
                free = [m for m in self._models if m.node is not None and m.busy < m.slot.files]
                if free:
                    model = min(free, key=lambda m: m.busy / m.slot.files)
                    model.busy += 1
                    return model
                self._cond.wait(1.0)
                if not progress(0.0, None):
                    raise JobCancelled

    def _give(self, model: _Model) -> None:
        with self._cond:
            model.busy -= 1
            self._cond.notify_all()

    # -- one file ------------------------------------------------------------------------------
    def recognise(
        self,
        path: Path,
        options: TranscribeOptions,
        model: str,
        progress: FileProgress,
        voices: dict[str, np.ndarray],
    ) -> Recognised:
        """Recognise one stored upload on the cluster (blocking), labelling the enrolled
        ``voices`` when it diarizes; retried elsewhere when the recogniser running it dies."""
        ray = self._joined()
        audio = self._audio(ray, path)
        request = (path.name, options_to_dict(options), model, voices)
        attempts, last = self.settings.ray_max_attempts, ""
        for attempt in range(1, attempts + 1):
            worker = self._take(progress)
            progress.node = worker.node
            try:
                outcome = self._run(ray, worker, audio, request, progress)
            except _Lost as lost:
                self._drop(worker)
                if not self._head_answers():  # the whole cluster went: no attempt is spent
                    raise Requeue(f"the Ray cluster's head does not answer ({lost})") from lost
                log.warning(
                    "%s: the recogniser on %s was lost (%s)%s",
                    path.name,
                    worker.node,
                    lost,
                    f"; starting it again, attempt {attempt + 1} of {attempts}"
                    if attempt < attempts
                    else "",
                )
                last = f"{worker.node}: {lost}"
                continue
            finally:
                self._give(worker)
            if outcome.status == "cancelled":
                raise JobCancelled
            if outcome.status == "failed" or outcome.transcript is None:
                raise TingjiError(outcome.error or "the recogniser gave no result", source=None)
            return Recognised(outcome.transcript, outcome.node)
        raise ClusterError(
            f"the cluster lost the worker of this file {attempts} times (last on {last})"
        )

    def _head_answers(self) -> bool:
        try:
            check_reachable(self.settings.ray_address or "auto")
        except ClusterError:
            return False
        return True

    def _audio(self, ray: ModuleType, path: Path) -> Any:
        if self.settings.ray_audio == "shared":
            return str(path.resolve())
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TingjiError(f"the uploaded audio cannot be read: {exc.strerror}") from exc
        return ray.put(data)

    def _run(
        self,
        ray: ModuleType,
        worker: _Model,
        audio: Any,
        request: tuple[str, dict[str, Any], str, dict[str, np.ndarray]],
        progress: FileProgress,
    ) -> Outcome:
        from ray.exceptions import (
            GetTimeoutError,
            NodeDiedError,
            ObjectLostError,
            RayActorError,
            WorkerCrashedError,
        )

        ticket = uuid.uuid4().hex
        name, options, model, voices = request
        result = worker.handle.recognise.remote(ticket, audio, name, options, model, voices)
        last: tuple[float, float | None] = (0.0, None)
        stopping = False
        while not ray.wait([result], timeout=POLL_S)[0]:
            try:
                report = ray.get(worker.handle.progress.remote(ticket), timeout=ASK_TIMEOUT_S)
            except (GetTimeoutError, RayActorError):
                report = None  # the result will say what happened
            if report is not None:
                last = report
            if not progress(*last) and not stopping:
                worker.handle.cancel.remote(ticket)
                stopping = True
        try:
            outcome: Outcome = ray.get(result)
        except (RayActorError, ObjectLostError, NodeDiedError, WorkerCrashedError) as exc:
            raise _Lost(_first_line(exc)) from exc
        return outcome


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
