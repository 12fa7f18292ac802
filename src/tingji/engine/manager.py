"""Loaded models, shared across calls and threads, and released on request."""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Literal

from tingji.engine.backend import Backend, LoadRequest, find_backend
from tingji.types import ModelInfo


class ModelManager:
    """Loads each (model, device, compute type) once and hands the same instance to every caller."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        device: str = "auto",
        compute_type: str = "auto",
        cpu_threads: int = 0,
        decode_window: Literal["fit", "full"] = "fit",
    ) -> None:
        self.cache_dir = cache_dir
        self.decode_window: Literal["fit", "full"] = decode_window
        self.device = device
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self._models: dict[tuple[str, str, str], Backend] = {}
        self._lock = threading.Lock()

    def get(
        self, model: str, *, device: str | None = None, compute_type: str | None = None
    ) -> Backend:
        key = (model, device or self.device, compute_type or self.compute_type)
        with self._lock:
            backend = self._models.get(key)
            if backend is None:
                spec = find_backend(model)
                backend = spec.load(
                    LoadRequest(
                        model=model,
                        device=key[1],
                        compute_type=key[2],
                        cpu_threads=self.cpu_threads,
                        cache_dir=self.cache_dir,
                        decode_window=self.decode_window,
                    )
                )
                self._models[key] = backend
            return backend

    def loaded(self) -> list[ModelInfo]:
        with self._lock:
            return [backend.info for backend in self._models.values()]

    def unload(self) -> list[ModelInfo]:
        """Free every loaded model (and the GPU memory it held); returns what was unloaded."""
        with self._lock:
            models, self._models = self._models, {}
        for backend in models.values():
            backend.close()
        infos = [backend.info for backend in models.values()]
        del models
        gc.collect()
        return infos
