"""The contract every recognition backend meets, and the registry that picks one by model name.

A backend decodes utterances (a few seconds to ~30 s of 16 kHz mono audio each), one or a batch
at a time; VAD, language detection policy and text post-processing live in the pipeline, so
every backend gets them alike. The built-in Whisper backend registers itself here the same
way a third-party one would::

    register(BackendSpec(name="mine", claims=lambda model: model.startswith("mine:"),
                         load=load_mine, devices=("cuda", "cpu")))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from tingji.errors import ModelError
from tingji.types import ModelInfo, Task


@dataclass(frozen=True)
class DecodeOptions:
    """What the pipeline asks of a backend for one utterance."""

    language: str | None
    task: Task = "transcribe"
    beam_size: int = 5
    hint: str | None = None
    """Words to bias decoding towards (Whisper: the ``hotwords`` prompt)."""
    hotwords: tuple[str, ...] = ()
    """The same terms as a list, for backends with native hotword support."""
    initial_prompt: str | None = None
    itn: bool = True
    fallback: bool = True
    """Decode again with other searches when the text looks wrong (Whisper). Live decoding
    turns it off: on a fraction of a word it can cost ten times a plain decode."""
    full_window: bool | None = None
    """Give each utterance Whisper's full 30 s context (True), or pad it less (False, faster);
    None: the backend's setting (``decode_window``)."""
    timestamps: bool = True
    """Split the utterance into timed pieces. Without, a backend may answer one piece for the
    whole clip (Whisper is more accurate on short utterances without timestamp tokens)."""


@dataclass(frozen=True)
class Word:
    """A word (in Chinese, a character or two) and when it is said."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Piece:
    """A timed piece of an utterance; times in seconds from the utterance start."""

    start: float
    end: float
    text: str
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    words: tuple[Word, ...] = ()
    """Its words with their times (same time line), when the backend knows them."""


@dataclass
class Decoded:
    pieces: list[Piece]
    language: str
    language_probability: float | None = None
    omitted: list[Piece] = field(default_factory=list)
    """Stretches whose text was dropped as not speech (a repetition loop no search escaped);
    ``text`` says why."""


@dataclass(frozen=True)
class LoadRequest:
    """How the caller wants a model loaded."""

    model: str
    device: str = "auto"
    compute_type: str = "auto"
    cpu_threads: int = 0
    cache_dir: Path = field(default_factory=lambda: Path("data/models"))
    decode_window: Literal["fit", "full"] = "fit"
    """``full``: Whisper's whole 30 s window for every utterance (what faster-whisper does);
    ``fit``: padding set by the utterance's own length, less encoder time."""


@runtime_checkable
class Backend(Protocol):
    """A loaded model. ``decode`` may be called from several threads."""

    info: ModelInfo

    def languages(self) -> frozenset[str]:
        """Language codes the model knows."""
        ...

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """Most likely language of ``audio`` and its probability."""
        ...

    def decode(self, audio: np.ndarray, options: DecodeOptions) -> Decoded:
        """Recognise one utterance."""
        ...

    def decode_many(self, clips: Sequence[np.ndarray], options: DecodeOptions) -> list[Decoded]:
        """Recognise several utterances with the same options (batched where the backend can)."""
        ...

    def close(self) -> None:
        """Free the model's memory (GPU memory included)."""
        ...


@dataclass(frozen=True)
class BackendSpec:
    name: str
    claims: Callable[[str], bool]
    """True when this backend serves the model name or path."""
    load: Callable[[LoadRequest], Backend]
    devices: tuple[str, ...] = ("cpu",)
    fallback: bool = False
    """Takes every model no other backend claims (the Whisper backend)."""


_REGISTRY: dict[str, BackendSpec] = {}
_BUILTIN_MODULES = ("tingji.engine.whisper", "tingji.engine.funasr.backend")
_builtins_loaded = False


def register(spec: BackendSpec) -> None:
    """Add (or replace) a backend."""
    _REGISTRY[spec.name] = spec


def backends() -> list[BackendSpec]:
    _load_builtins()
    return list(_REGISTRY.values())


def find_backend(model: str) -> BackendSpec:
    """The backend that serves ``model``: the first that claims it, else the fallback."""
    specs = backends()
    for spec in specs:
        if not spec.fallback and spec.claims(model):
            return spec
    for spec in specs:
        if spec.fallback:
            return spec
    raise ModelError(f"no backend can load the model '{model}'")


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        _builtins_loaded = True
