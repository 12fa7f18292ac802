"""The recogniser that runs on a cluster node: a tingji service of its own, with its models
loaded once, running the same pipeline as one box (decode, VAD, recognition, text, speakers).

It is a plain class; :mod:`tingji.cluster.dispatch` makes Ray actors of it. Several files may
run at once (a threaded actor); ``progress`` and ``cancel`` are answered meanwhile.
"""

from __future__ import annotations

import io
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tingji.config import Settings
from tingji.errors import TingjiError
from tingji.types import Transcript, options_from_dict

SHIPPED = (
    "model",
    "extra_models",
    "allow_model_downloads",
    "device",
    "compute_type",
    "decode_window",
    "beam_size",
    "language",
    "itn",
    "script",
    "vad",
    "max_audio_hours",
    "diarization_fetch",
    "voice_match",
)
"""The server's settings that a node's recogniser takes; where models live on the node is the
node's own business (its ``TINGJI_*`` environment, e.g. ``TINGJI_MODELS_DIR``)."""


def shipped_settings(settings: Settings) -> dict[str, Any]:
    return settings.model_dump(include=set(SHIPPED))


@dataclass
class Outcome:
    """What became of one file: ``done`` with its transcript, ``failed`` with the reason the
    user reads, or ``cancelled``."""

    status: str
    node: str
    transcript: Transcript | None = None
    error: str | None = None


@dataclass
class _Run:
    done: float = 0.0
    total: float | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


def this_node() -> str:
    """This node's name, as job files record it."""
    import ray

    from tingji.cluster.connect import node_name

    node_id = ray.get_runtime_context().get_node_id()
    return node_name(socket.gethostname(), ray.util.get_node_ip_address(), node_id)


class Recogniser:
    """One model on one node (made a Ray actor by the dispatcher)."""

    def __init__(self, settings: dict[str, Any], threads: int) -> None:
        from tingji.service import Tingji

        self._scratch = tempfile.TemporaryDirectory(prefix="tingji-node-")
        self.service = Tingji(
            Settings(**settings, data_dir=Path(self._scratch.name), cpu_threads=threads)
        )
        self.service.backend()  # the default model loaded before the first file comes
        self.node = this_node()
        self._runs: dict[str, _Run] = {}

    def ready(self) -> str:
        """The node's name, once the model is loaded."""
        return self.node

    def recognise(
        self,
        ticket: str,
        audio: bytes | str,
        name: str,
        options: dict[str, Any],
        model: str,
        voices: dict[str, np.ndarray],
    ) -> Outcome:
        """Recognise one file: its bytes, or its path where every node sees the data dir."""
        run = self._runs[ticket] = _Run()

        def progress(done: float, total: float | None) -> bool:
            run.done, run.total = done, total
            return not run.cancelled.is_set()

        from tingji.jobs.runner import JobCancelled

        source = io.BytesIO(audio) if isinstance(audio, bytes) else audio
        try:
            transcript = self.service.recognise_file(
                source, options_from_dict(options), model, progress, name=name, voices=voices
            )
        except JobCancelled:
            return Outcome("cancelled", self.node)
        except TingjiError as exc:
            return Outcome("failed", self.node, error=exc.message)
        finally:
            self._runs.pop(ticket, None)
        return Outcome("done", self.node, transcript=transcript)

    def progress(self, ticket: str) -> tuple[float, float | None] | None:
        """(audio seconds done, of total) of a running file; None once it has ended."""
        run = self._runs.get(ticket)
        return None if run is None else (run.done, run.total)

    def cancel(self, ticket: str) -> bool:
        """Stop a running file at its next segment; False when it is not running here."""
        run = self._runs.get(ticket)
        if run is not None:
            run.cancelled.set()
        return run is not None
