"""The FunASR backend: loads a model with ``funasr.AutoModel`` and decodes windows with it.

The pipeline hands over one packed window (≤ 30 s) at a time. Where FunASR's VAD (fsmn-vad) is
on disk it cuts the window again and, with its punctuation model (ct-punc, for the Paraformer
family, whose output has none), FunASR returns sentences with times; otherwise the window is
decoded whole and cut into sentences by its token times. Hotwords reach SeACo-Paraformer
(``hotword``) and Fun-ASR-Nano (``hotwords``) natively; tingji's correction pass runs on every
model's text in the pipeline. ``funasr`` and ``torch`` are imported when a model is loaded.

Fun-ASR-Nano times its tokens by CTC forced alignment, which FunASR does with torchaudio; where
torchaudio is absent (it has no build for tingji's torch) its model gets the same alignment in
plain torch (:func:`_forced_align`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib.util
import itertools
import json
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tingji.engine.backend import (
    Backend,
    BackendSpec,
    Decoded,
    DecodeOptions,
    LoadRequest,
    register,
)
from tingji.engine.device import DeviceChoice, choose_device
from tingji.engine.funasr.catalog import (
    Family,
    ResolvedModel,
    claims,
    find_helper,
    require_extra,
    resolve,
)
from tingji.engine.funasr.results import majority_language, pieces_from_result, strip_tags
from tingji.errors import ModelError, OptionError
from tingji.types import ModelInfo

SAMPLE_RATE = 16000
BATCH_SIZE_S = 60
"""Seconds of speech FunASR batches together after its VAD (FunASR's ``batch_size_s``)."""
VAD_MAX_SEGMENT_MS = 30000
"""Longest segment fsmn-vad cuts, in milliseconds (a window is at most 30 s anyway)."""
SENSEVOICE_LANGUAGES = ("zh", "en", "yue", "ja", "ko")
NANO_LANGUAGES = {"zh": "中文", "en": "英文", "ja": "日文"}
"""Fun-ASR-Nano takes the language in its prompt, in Chinese."""
PARAFORMER_FAMILY: tuple[Family, ...] = ("paraformer", "seaco")


class FunasrBackend:
    """A loaded FunASR model (with fsmn-vad and ct-punc where present); one decode at a time."""

    def __init__(self, request: LoadRequest) -> None:
        require_extra()
        self.resolved: ResolvedModel = resolve(request.model, request.cache_dir)
        family = self.resolved.family
        choice = _choose_device(request.device)
        fp16 = (
            choice.device == "cuda"
            and family in PARAFORMER_FAMILY
            and request.compute_type in ("auto", "float16")
        )
        cache = request.cache_dir
        fetch = self.resolved.from_hub
        self.vad_model = find_helper("fsmn-vad", cache, fetch=fetch)
        self.punc_model = (
            find_helper("ct-punc", cache, fetch=fetch) if family in PARAFORMER_FAMILY else None
        )
        kwargs: dict[str, Any] = {
            "model": str(self.resolved.path),
            "device": {"cuda": "cuda:0"}.get(choice.device, choice.device),
            "ncpu": request.cpu_threads or os.cpu_count() or 1,
            "disable_update": True,
            "disable_pbar": True,
            "disable_log": True,
        }
        if fp16:
            kwargs["fp16"] = True
        if self.vad_model is not None:
            kwargs["vad_model"] = str(self.vad_model)
            kwargs["vad_kwargs"] = {"max_single_segment_time": VAD_MAX_SEGMENT_MS}
        if self.punc_model is not None:
            kwargs["punc_model"] = str(self.punc_model)
        funasr = import_funasr()
        try:
            with _quiet_setup():
                self.model: Any = funasr.AutoModel(**kwargs)
        except (RuntimeError, ValueError, OSError, KeyError, AssertionError) as exc:
            raise ModelError(
                f"cannot load the FunASR model at {self.resolved.path}: {type(exc).__name__}: {exc}"
            ) from exc
        if family == "nano":
            _align_without_torchaudio(self.model.model)
        self._lock = threading.Lock()
        self._languages = _languages(self.resolved)
        self.info = ModelInfo(
            backend="funasr",
            name=self.resolved.name,
            path=str(self.resolved.path),
            device=choice.device,
            compute_type="float16" if fp16 else "float32",
            device_reason=choice.reason,
        )

    @property
    def family(self) -> Family:
        return self.resolved.family

    def languages(self) -> frozenset[str]:
        return self._languages

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """SenseVoice: its language tags (the probability is the majority tag's share over the
        VAD segments); Fun-ASR-Nano: the script of its text; other models know one language."""
        if self.family == "sensevoice":
            results = self._generate(audio, {"language": "auto", "use_itn": False})
            found = majority_language(str(r.get("text", "")) for r in results)
            return found or (_default_language(self._languages), 0.0)
        if self.family == "nano":
            results = self._generate(audio, {"language": None, "itn": False})
            return _language_by_script(" ".join(str(r.get("text", "")) for r in results))
        return _default_language(self._languages), 1.0

    def decode(self, audio: np.ndarray, options: DecodeOptions) -> Decoded:
        if options.task != "transcribe":
            raise OptionError(
                "FunASR models transcribe only; choose a Whisper model for --task translate"
            )
        if options.language is not None and options.language not in self._languages:
            raise OptionError(f"the model does not know the language '{options.language}'")
        kwargs = self.generate_options(options)
        try:
            results = self._generate(audio, kwargs)
        except IndexError:
            # SenseVoice aligns its tokens to frames for the times, and that step fails on
            # some texts (a tag inside the text); decode again without token times.
            if not kwargs.get("output_timestamp") or self.family != "sensevoice":
                raise
            results = self._generate(audio, {**kwargs, "output_timestamp": False})
        duration = len(audio) / SAMPLE_RATE
        pieces = [piece for result in results for piece in pieces_from_result(result, duration)]
        language = options.language
        if language is None and self.family == "sensevoice":
            found = majority_language(str(r.get("text", "")) for r in results)
            language = found[0] if found else None
        return Decoded(pieces, language or _default_language(self._languages))

    def decode_many(self, clips: Sequence[np.ndarray], options: DecodeOptions) -> list[Decoded]:
        return [self.decode(clip, options) for clip in clips]

    def generate_options(self, options: DecodeOptions) -> dict[str, Any]:
        """The keyword arguments of ``AutoModel.generate`` for these options."""
        # A long glossary is hinted in a second pass with only the terms that sound like the
        # first pass (the pipeline's hint); otherwise every term goes to the model.
        terms = options.hint.split() if options.hint else list(options.hotwords)
        kwargs: dict[str, Any] = {}
        if self.family in PARAFORMER_FAMILY:
            kwargs["output_timestamp"] = True
            if self.family == "seaco" and terms:
                kwargs["hotword"] = " ".join(terms)
        elif self.family == "sensevoice":
            kwargs["language"] = options.language or "auto"
            kwargs["use_itn"] = options.itn
            kwargs["output_timestamp"] = True
        elif self.family == "nano":
            kwargs["language"] = NANO_LANGUAGES.get(options.language or "")
            kwargs["itn"] = options.itn
            kwargs["hotwords"] = terms
        return kwargs

    def _generate(self, audio: np.ndarray, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        kwargs = dict(kwargs)
        if self.vad_model is not None:
            kwargs.update(batch_size_s=BATCH_SIZE_S, sentence_timestamp=True)
        if self.punc_model is not None:
            kwargs["return_raw_text"] = True
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        data: Any = audio
        if self.family == "nano":  # its chat template takes a tensor or a path, not an array
            import torch

            data = torch.from_numpy(audio)
        with self._lock:
            if "model" not in self.__dict__:
                raise ModelError("the FunASR model was unloaded")
            results = self.model.generate(input=data, **kwargs)
        return [r for r in results if isinstance(r, dict)]

    def close(self) -> None:
        with self._lock:
            model = self.__dict__.pop("model", None)
            del model
            gc.collect()
            if self.info.device == "cuda":
                import torch

                torch.cuda.empty_cache()


@functools.cache
def import_funasr() -> Any:
    """``funasr`` (several seconds the first time), imported once and quietly: it prints a
    notice to install ffmpeg on stdout (where it would end up in a transcript piped from the
    CLI) and warns about pydub's ffmpeg; tingji needs neither, audio arrives decoded."""
    require_extra()
    with (
        warnings.catch_warnings(),
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull),
    ):
        warnings.filterwarnings(
            "ignore", message="Couldn't find ffmpeg or avconv", category=RuntimeWarning
        )
        import funasr
    logging.getLogger().addFilter(_FunasrChatter(os.path.dirname(funasr.__file__) + os.sep))
    return funasr


class _FunasrChatter(logging.Filter):
    """FunASR logs progress on the root logger at every call; keep only its errors."""

    def __init__(self, package_dir: str) -> None:
        super().__init__()
        self.package_dir = package_dir

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not record.pathname.startswith(self.package_dir)


@contextlib.contextmanager
def _quiet_setup() -> Iterator[None]:
    """AutoModel calls ``logging.basicConfig`` (which would configure the application's root
    logger) and prints its version; a handler in place makes the first a no-op."""
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        root.removeHandler(guard)


def _align_without_torchaudio(model: Any) -> None:
    """Give a Fun-ASR-Nano model with a CTC branch :func:`_forced_align` in place of FunASR's
    ``forced_align``, which raises ImportError at every decode without torchaudio."""
    if getattr(model, "ctc_decoder", None) is None or importlib.util.find_spec("torchaudio"):
        return
    module: Any = sys.modules.get(type(model).__module__)
    if module is not None and hasattr(module, "forced_align"):
        module.forced_align = _forced_align


def _forced_align(log_probs: Any, targets: Any, blank: int = 0) -> list[dict[str, Any]]:
    """FunASR's Fun-ASR-Nano ``forced_align`` (``tools/utils.py``) without torchaudio: the
    frames of each target token on the best CTC path, by FunASR's plain-torch alignment (the
    one SenseVoice uses). ``log_probs`` is (frames, vocabulary), ``targets`` (tokens,); the
    tokens as ``{"token", "start_time", "end_time", "score"}`` in frames, none when the
    targets do not fit the frames."""
    import torch
    from funasr.models.sense_voice.utils.ctc_alignment import ctc_forced_align

    frames, length = log_probs.shape[0], targets.shape[0]
    repeats = int((targets[1:] == targets[:-1]).sum())  # a blank must part two equal tokens
    if length == 0 or frames < length + repeats:
        return []
    log_probs = log_probs.detach().float().cpu()
    path = ctc_forced_align(
        log_probs[None],
        targets[None].clone().cpu(),
        torch.tensor([frames]),
        torch.tensor([length]),
        blank=blank,
    )[0]
    scores = log_probs.gather(1, path[:, None])[:, 0].exp().tolist()
    items = []
    for token, group in itertools.groupby(enumerate(path.tolist()), key=lambda item: item[1]):
        if token == blank:
            continue
        times = [t for t, _ in group]
        start, end = times[0], times[-1] + 1
        score = round(max(scores[start:end]), 3)
        items.append({"token": token, "start_time": start, "end_time": end, "score": score})
    return items


def _choose_device(requested: str) -> DeviceChoice:
    """``choose_device``, checked against what this PyTorch build can use."""
    choice = choose_device(requested, FUNASR.devices)
    if choice.device != "cuda":
        return choice
    import torch

    if torch.cuda.is_available():
        return choice
    if requested == "cuda":
        raise OptionError(
            "device cuda was asked for, but this PyTorch build has no CUDA support "
            "(install a CUDA build of torch for FunASR models)"
        )
    return DeviceChoice("cpu", "auto: a CUDA GPU is visible but this PyTorch build cannot use it")


def _languages(resolved: ResolvedModel) -> frozenset[str]:
    if resolved.family == "sensevoice":
        return frozenset(SENSEVOICE_LANGUAGES)
    if resolved.family == "nano":
        return frozenset(NANO_LANGUAGES)
    return frozenset({"zh", "en"}) if _has_cjk_tokens(resolved) else frozenset({"en"})


def _default_language(languages: frozenset[str]) -> str:
    return "zh" if "zh" in languages else sorted(languages)[0]


def _has_cjk_tokens(resolved: ResolvedModel) -> bool:
    """Whether the model's token list has Chinese characters (a Chinese model)."""
    for name in ("tokens.json", "tokens.txt"):
        path = resolved.path / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            if name == "tokens.json":
                with contextlib.suppress(json.JSONDecodeError):
                    text = " ".join(map(str, json.loads(text)))
            return any("\u4e00" <= ch <= "\u9fff" for ch in text)
    return True  # a FunASR model without a token list: most are Chinese


def _language_by_script(text: str) -> tuple[str, float]:
    """Fun-ASR-Nano names no language: tell it by the script of the text it wrote."""
    text = strip_tags(text)
    kana = sum("\u3040" <= ch <= "\u30ff" for ch in text)
    han = sum("\u4e00" <= ch <= "\u9fff" for ch in text)
    latin = sum(ch.isascii() and ch.isalpha() for ch in text)
    total = kana + han + latin
    if total == 0:
        return "zh", 0.0
    if kana:
        return "ja", (kana + han) / total
    if han * 2 >= latin:  # a Chinese sentence often carries a few English words
        return "zh", han / total
    return "en", latin / total


def _load(request: LoadRequest) -> Backend:
    return FunasrBackend(request)


FUNASR = BackendSpec(name="funasr", claims=claims, load=_load, devices=("cuda", "mps", "cpu"))
register(FUNASR)
