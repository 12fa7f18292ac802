"""The built-in backend: Whisper models in CTranslate2 format through faster-whisper.

faster-whisper and CTranslate2 are imported when a model is loaded, not when this module is.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tingji.engine import text as textproc
from tingji.engine.backend import (
    Backend,
    BackendSpec,
    Decoded,
    DecodeOptions,
    LoadRequest,
    register,
)
from tingji.engine.batcher import Batcher
from tingji.engine.device import choose_device
from tingji.engine.models import EMBEDDED_NAMES, ensure_embedded_model
from tingji.engine.whisper_decode import decode_batch
from tingji.errors import ModelError, OptionError
from tingji.types import ModelInfo

MAX_BATCH = 16
"""Utterances decoded together on a CPU (measured on 2 cores: 16 beats 8 by ~10 %)."""
GPU_MAX_BATCH = 32
CPU_WORKERS = 2
"""Model replicas on a CPU, each with its share of the threads, each running its own batch."""
CPU_COMPUTE_TYPE = "int8"
"""Chosen by measurement on Mandarin and English clips (see benchmarks/bench_compute_type.py)."""
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def resolve_model_path(model: str, cache_dir: Path) -> tuple[str, Path]:
    """Turn a model name or path into (display name, local directory)."""
    if model in EMBEDDED_NAMES:
        return "whisper-base (embedded)", ensure_embedded_model(cache_dir)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise ModelError(
                f"{path} is not a CTranslate2 Whisper model: it has no model.bin "
                "(convert one with ct2-transformers-converter, or pick a model name)"
            )
        return path.name, path
    if path.exists():
        raise ModelError(f"{path} is a file; a model is a directory with model.bin in it")
    from faster_whisper.utils import available_models, download_model

    if model not in available_models() and not _HUB_ID.match(model):
        raise ModelError(
            f"unknown model '{model}': not a local directory, and not one of "
            f"{', '.join(['base', *available_models()])} or a Hugging Face model id"
        )
    hub_cache = str(cache_dir / "hub")
    try:
        local = download_model(model, cache_dir=hub_cache, local_files_only=True)
    except Exception:  # noqa: BLE001 - huggingface_hub raises many types for "not cached"
        try:
            local = download_model(model, cache_dir=hub_cache)
        except Exception as exc:
            error = ModelError(
                f"model '{model}' is not in the cache ({hub_cache}) and could not be "
                f"downloaded ({type(exc).__name__}). On a machine with network run "
                f"`tingji download {model}` (or copy a CTranslate2 model directory) and pass "
                "its path with --model"
            )
            error.unavailable = model  # for a UI to say it in its own words
            raise error from exc
    return model, Path(local)


def cached_models(cache_dir: Path) -> list[str]:
    """The Whisper size names whose files are already in tingji's hub cache (no network)."""
    from faster_whisper.utils import available_models, download_model

    present = []
    for name in available_models():
        try:
            download_model(name, cache_dir=str(cache_dir / "hub"), local_files_only=True)
        except Exception:  # noqa: BLE001 - huggingface_hub raises many types for "not cached"
            continue
        present.append(name)
    return present


class WhisperBackend:
    """A loaded faster-whisper model; thread-safe (decodes of all threads share batches)."""

    def __init__(self, request: LoadRequest) -> None:
        name, path = resolve_model_path(request.model, request.cache_dir)
        choice = choose_device(request.device, WHISPER.devices)
        compute_type = request.compute_type
        if compute_type == "auto":
            compute_type = "float16" if choice.device == "cuda" else CPU_COMPUTE_TYPE
        threads = request.cpu_threads or os.cpu_count() or 1
        # On a CPU, two replicas of half the threads each, each running its own batch: one
        # batch gains little from a second thread (a 10.8 s clip: 1.16 s on two threads, 0.86 s
        # on one, with another process on the machine), and two batches keep both cores busy.
        workers = min(CPU_WORKERS, threads) if choice.device == "cpu" else 1
        if choice.device == "cpu":
            _one_blas_thread()
        from faster_whisper import WhisperModel

        textproc.warm()  # while the model loads
        try:
            self._model: Any = WhisperModel(
                str(path),
                device=choice.device,
                compute_type=compute_type,
                cpu_threads=max(1, threads // workers),
                num_workers=workers,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"cannot load the model at {path}: {exc}") from exc
        self._lock = threading.Lock()
        self._full_window = request.decode_window == "full"
        self._batcher: Batcher[Decoded] | None = Batcher(
            self._run_batch,
            max_batch=MAX_BATCH if choice.device == "cpu" else GPU_MAX_BATCH,
            workers=workers,
        )
        self.info = ModelInfo(
            backend="whisper",
            name=name,
            path=str(path),
            device=choice.device,
            compute_type=compute_type,
            device_reason=choice.reason,
        )

    def languages(self) -> frozenset[str]:
        return frozenset(self._model.supported_languages)

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        with self._lock:
            language, probability, _ = self._model.detect_language(audio=audio)
        return str(language), float(probability)

    def decode(self, audio: np.ndarray, options: DecodeOptions) -> Decoded:
        return self.decode_many([audio], options)[0]

    def decode_many(self, clips: Sequence[np.ndarray], options: DecodeOptions) -> list[Decoded]:
        """Decode through the shared batcher, so concurrent callers share batches."""
        if options.language is not None and options.language not in self.languages():
            raise OptionError(f"the model does not know the language '{options.language}'")
        batcher = self._batcher
        if batcher is None:
            raise ModelError("the model was unloaded")
        return batcher.submit(options, clips)

    def _run_batch(self, options: Hashable, clips: list[np.ndarray]) -> list[Decoded]:
        """On a batcher worker; the model's replicas run the workers' batches at once (it is
        unloaded only once the batcher's workers have stopped)."""
        assert isinstance(options, DecodeOptions)
        full = self._full_window if options.full_window is None else options.full_window
        return decode_batch(self._model, clips, options, full_window=full)

    def close(self) -> None:
        batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.close()
        with self._lock:
            model = self.__dict__.pop("_model", None)
            if model is not None:
                model.model.unload_model()
            del model


def _one_blas_thread() -> None:
    """Keep numpy's BLAS on the calling thread.

    OpenBLAS starts a thread per core and keeps them spinning after every call. The mel
    filterbank product of each replica's feature extraction is such a call, so those threads
    took CPU from the other replica's decoding; the replicas already keep every core busy.
    Measured on the 136 s file: 0.4 s less CPU time (about 9.4 s), 4 % less wall time.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def _load(request: LoadRequest) -> Backend:
    return WhisperBackend(request)


WHISPER = BackendSpec(
    name="whisper",
    claims=lambda model: True,
    load=_load,
    devices=("cuda", "cpu"),
    fallback=True,
)
register(WHISPER)
