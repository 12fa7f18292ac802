"""Which FunASR models tingji knows, and where their directories are.

A model is named as FunASR names it (``paraformer-zh``, ``iic/SenseVoiceSmall`` …) or given as a
local directory. A named model is looked for in ``<models dir>/funasr/<model id>`` and in
ModelScope's own cache; where the machine reaches ModelScope (or Hugging Face) it is downloaded
into the former, otherwise the error says what is missing and how to fetch it elsewhere.

Nothing here imports torch or funasr: the registry asks :func:`claims` about every model name.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tingji.errors import MissingExtraError, ModelError

log = logging.getLogger("tingji")

EXTRA_COMMAND = "pip install 'tingji[funasr]'"
"""Installs funasr with the CPU build of PyTorch that tingji is tested with."""

Family = Literal["paraformer", "seaco", "sensevoice", "nano", "other"]
"""How a model is driven: hotword and language arguments, timestamps, punctuation."""

MODEL_CLASSES: dict[str, Family] = {
    "Paraformer": "paraformer",
    "BiCifParaformer": "paraformer",
    "SeacoParaformer": "seaco",
    "ContextualParaformer": "seaco",
    "SenseVoiceSmall": "sensevoice",
    "FunASRNano": "nano",
}
"""FunASR's model class (``model:`` in config.yaml) → family."""


@dataclass(frozen=True)
class KnownModel:
    modelscope_id: str
    huggingface_id: str | None


_SEACO = KnownModel(
    "iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch",
    "funasr/paraformer-zh",
)
KNOWN: dict[str, KnownModel] = {
    "paraformer-zh": _SEACO,
    _SEACO.modelscope_id: _SEACO,
    "iic/SenseVoiceSmall": KnownModel("iic/SenseVoiceSmall", "FunAudioLLM/SenseVoiceSmall"),
    "FunAudioLLM/Fun-ASR-Nano-2512": KnownModel(
        "FunAudioLLM/Fun-ASR-Nano-2512", "FunAudioLLM/Fun-ASR-Nano-2512"
    ),
}
"""The recognition models tingji offers by name (``paraformer-zh`` is FunASR's name for the
SeACo-Paraformer)."""

HELPERS: dict[str, KnownModel] = {
    "fsmn-vad": KnownModel("iic/speech_fsmn_vad_zh-cn-16k-common-pytorch", "funasr/fsmn-vad"),
    "ct-punc": KnownModel(
        "iic/punc_ct-transformer_cn-en-common-vocab471067-large", "funasr/ct-punc"
    ),
}
"""FunASR's VAD and punctuation models, used beside a recognition model when present."""

HUB_PREFIXES = ("iic/", "damo/", "FunAudioLLM/", "funasr/")
"""ModelScope / Hugging Face namespaces of FunASR models: such ids are served by this backend."""

_MODEL_CLASS = re.compile(r"^model:\s*['\"]?([\w./-]+)", re.MULTILINE)


def extra_installed() -> bool:
    """Whether funasr and torch can be imported (without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in ("funasr", "torch"))


def require_extra() -> None:
    if not extra_installed():
        raise MissingExtraError(
            f"FunASR models need the funasr extra (funasr and PyTorch); install it with: "
            f"{EXTRA_COMMAND}"
        )


def offered_models(cache_dir: Path, *, downloadable: bool = False) -> list[str]:
    """The FunASR model names to offer to API and UI users, when the extra is installed: those
    on this machine, or (``downloadable``) every known one, downloaded when first chosen."""
    if not extra_installed():
        return []
    if downloadable:
        return list(KNOWN)
    return [
        name
        for name, known in KNOWN.items()
        if find_local(known.modelscope_id, cache_dir, aliases=(name,)) is not None
    ]


def is_model_dir(path: Path) -> bool:
    """A directory laid out as FunASR loads it (not a CTranslate2 Whisper model)."""
    return (
        path.is_dir()
        and not (path / "model.bin").is_file()
        and ((path / "config.yaml").is_file() or (path / "configuration.json").is_file())
    )


def claims(model: str) -> bool:
    """True for the names and directories this backend serves; imports nothing heavy."""
    if model in KNOWN or model.startswith(HUB_PREFIXES):
        return True
    return is_model_dir(Path(model).expanduser())


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    """How the model is shown: the name asked for, or the directory's name."""
    path: Path
    family: Family
    from_hub: bool
    """Named (not a directory given by path): its VAD and punctuation helpers may be fetched."""


def resolve(model: str, cache_dir: Path, *, allow_download: bool = True) -> ResolvedModel:
    """The local directory of ``model``, downloading a named model where there is network."""
    path = Path(model).expanduser()
    if path.is_dir():
        check_model_dir(path)
        return ResolvedModel(path.name, path, family_of(path), from_hub=False)
    if path.exists():
        raise ModelError(f"{path} is a file; a FunASR model is a directory with config.yaml")
    if model not in KNOWN and not model.startswith(HUB_PREFIXES):
        raise ModelError(
            f"unknown FunASR model '{model}': not a directory, and not one of "
            f"{', '.join(KNOWN)} or a ModelScope model id"
        )
    known = KNOWN.get(model) or KnownModel(model, model)
    local = find_local(known.modelscope_id, cache_dir, aliases=(model,))
    if local is None:
        target = download_dir(known.modelscope_id, cache_dir)
        if not allow_download:
            raise ModelError(missing_message(model, known.modelscope_id, cache_dir))
        download(model, known, target, cache_dir)
        local = target
    check_model_dir(local)
    return ResolvedModel(model, local, family_of(local), from_hub=True)


def find_helper(name: str, cache_dir: Path, *, fetch: bool) -> Path | None:
    """A VAD or punctuation model's directory, when it is on disk (or, with ``fetch``, could
    be downloaded); None otherwise: the backend then works without it."""
    known = HELPERS[name]
    local = find_local(known.modelscope_id, cache_dir, aliases=(name,))
    if local is not None or not fetch:
        return local
    target = download_dir(known.modelscope_id, cache_dir)
    try:
        download(name, known, target, cache_dir)
        check_model_dir(target)
    except ModelError as exc:
        log.warning("working without FunASR's %s: %s", name, exc)
        return None
    return target


def download_dir(model_id: str, cache_dir: Path) -> Path:
    return cache_dir / "funasr" / model_id


def modelscope_cache() -> Path:
    return Path(os.environ.get("MODELSCOPE_CACHE") or Path.home() / ".cache" / "modelscope" / "hub")


def find_local(model_id: str, cache_dir: Path, aliases: tuple[str, ...] = ()) -> Path | None:
    """The first complete-looking copy of ``model_id`` in tingji's or ModelScope's cache."""
    ms = modelscope_cache()
    candidates = [
        download_dir(model_id, cache_dir),
        *(cache_dir / "funasr" / alias for alias in aliases),
        ms / "models" / model_id,
        ms / model_id,
    ]
    for candidate in candidates:
        if is_model_dir(candidate) and not _missing_files(candidate):
            return candidate
    return None


def check_model_dir(path: Path) -> None:
    """Raise a :class:`ModelError` naming the files a FunASR model directory lacks."""
    missing = _missing_files(path)
    if missing:
        raise ModelError(
            f"{path} is not a complete FunASR model: {', '.join(missing)} missing (copy the "
            "whole directory that `modelscope download --model <id> --local_dir <dir>` wrote)"
        )


def family_of(path: Path) -> Family:
    """The family by the model class named in the directory's config.yaml."""
    config = _config_file(path)
    if config is None or not config.is_file():
        return "other"
    found = _MODEL_CLASS.search(config.read_text(encoding="utf-8", errors="replace"))
    return MODEL_CLASSES.get(found.group(1), "other") if found else "other"


def _config_file(path: Path) -> Path | None:
    metas = _file_path_metas(path)
    config = metas.get("config") if metas else None
    if isinstance(config, str):
        return path / config
    return path / "config.yaml"


def _file_path_metas(path: Path) -> dict[str, object] | None:
    configuration = path / "configuration.json"
    if not configuration.is_file():
        return None
    try:
        data = json.loads(configuration.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{configuration} is not valid JSON ({exc})") from exc
    metas = data.get("file_path_metas") if isinstance(data, dict) else None
    return metas if isinstance(metas, dict) else {}


def _missing_files(path: Path) -> list[str]:
    """Files the directory's configuration names (or FunASR needs) that are not there."""
    metas = _file_path_metas(path)
    required = _meta_paths(metas) if metas else ["config.yaml", "model.pt"]
    return [name for name in dict.fromkeys(required) if not (path / name).exists()]


def _meta_paths(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [p for v in value.values() for p in _meta_paths(v)]
    if isinstance(value, list | tuple):
        return [p for v in value for p in _meta_paths(v)]
    return []


def missing_message(model: str, model_id: str, cache_dir: Path) -> str:
    return (
        f"the FunASR model '{model}' is not on this machine (looked in {cache_dir / 'funasr'} "
        f"and {modelscope_cache()}) and could not be downloaded. On a machine with network run "
        f"`modelscope download --model {model_id} --local_dir {model_id.split('/')[-1]}`, "
        f"copy that directory to {download_dir(model_id, cache_dir)} (or anywhere, and pass "
        "its path as the model)"
    )


def download(model: str, known: KnownModel, target: Path, cache_dir: Path) -> None:
    """Fetch a model into ``target`` from ModelScope, else Hugging Face; a ModelError (with
    the commands to fetch it elsewhere) when neither is reachable."""
    tried: list[str] = []
    if _reachable("www.modelscope.cn"):
        from modelscope.hub.snapshot_download import snapshot_download

        log.info("downloading %s from ModelScope into %s", known.modelscope_id, target)
        try:
            snapshot_download(known.modelscope_id, local_dir=str(target))
            return
        except Exception as exc:  # noqa: BLE001 - the hub client raises many types
            tried.append(f"ModelScope: {type(exc).__name__}: {exc}")
    else:
        tried.append("ModelScope is not reachable")
    if known.huggingface_id is not None:
        if _reachable("huggingface.co"):
            from huggingface_hub import snapshot_download as hf_snapshot_download

            log.info("downloading %s from Hugging Face into %s", known.huggingface_id, target)
            try:
                hf_snapshot_download(known.huggingface_id, local_dir=str(target))
                return
            except Exception as exc:  # noqa: BLE001 - the hub client raises many types
                tried.append(f"Hugging Face: {type(exc).__name__}: {exc}")
        else:
            tried.append("Hugging Face is not reachable")
    tried_text = "; ".join(tried)
    raise ModelError(f"{missing_message(model, known.modelscope_id, cache_dir)} ({tried_text})")


def _reachable(host: str, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False
