"""The one facade that the CLI, the server and the UI call."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tingji.config import Settings
from tingji.engine.backend import Backend
from tingji.engine.manager import ModelManager
from tingji.engine.pipeline import Source, Transcription
from tingji.system import SystemInfo, system_info
from tingji.types import ModelInfo, TranscribeOptions, Transcript


@dataclass
class MemoryReport:
    unloaded: list[ModelInfo]
    rss_before_mb: int
    rss_after_mb: int
    gpu_used_before_mb: int | None
    gpu_used_after_mb: int | None


class Tingji:
    """Recognition with the configured defaults, models loaded once and shared."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.models = ModelManager(
            self.settings.model_cache,
            device=self.settings.device,
            compute_type=self.settings.compute_type,
            cpu_threads=self.settings.cpu_threads,
        )

    def options(self, **overrides: Any) -> TranscribeOptions:
        """Request options: the settings' defaults with ``overrides`` applied."""
        s = self.settings
        base = TranscribeOptions(
            language=s.language, itn=s.itn, script=s.script, vad=s.vad.to_options()
        )
        return replace(base, **overrides)

    def backend(self, model: str | None = None) -> Backend:
        return self.models.get(model or self.settings.model)

    def start(
        self,
        source: Source,
        options: TranscribeOptions | None = None,
        *,
        model: str | None = None,
        name: str | None = None,
    ) -> Transcription:
        """Begin a run; iterate it for segments as they come, or call ``result()``."""
        return Transcription(
            self.backend(model),
            source,
            options or self.options(),
            beam_size=self.settings.beam_size,
            name=name,
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

    def system(self) -> SystemInfo:
        return system_info()

    def release_memory(self) -> MemoryReport:
        """Unload every model and return memory before and after."""
        before = system_info()
        unloaded = self.models.unload()
        after = system_info()
        return MemoryReport(
            unloaded=unloaded,
            rss_before_mb=before.process_rss_mb,
            rss_after_mb=after.process_rss_mb,
            gpu_used_before_mb=_gpu_used(before),
            gpu_used_after_mb=_gpu_used(after),
        )


def _gpu_used(info: SystemInfo) -> int | None:
    used = [g.memory_used_mb for g in info.gpus if g.memory_used_mb is not None]
    return sum(used) if used else None
