"""Choosing where a model runs: CUDA, then MPS where the backend supports it, then CPU."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from tingji.errors import OptionError

DEVICES = ("auto", "cuda", "mps", "cpu")


@dataclass(frozen=True)
class DeviceChoice:
    device: str
    reason: str


def cuda_device_count() -> int:
    """CUDA devices CTranslate2 can use (0 when the library or a driver is missing)."""
    try:
        import ctranslate2
    except ImportError:
        return 0
    try:
        return int(ctranslate2.get_cuda_device_count())
    except RuntimeError:
        return 0


def mps_available() -> bool:
    """Apple-silicon GPU through PyTorch, only when torch is installed."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.backends.mps.is_available())


def choose_device(requested: str, supported: tuple[str, ...]) -> DeviceChoice:
    """Resolve ``requested`` (auto, cuda, mps, cpu) against what the backend and machine offer."""
    if requested not in DEVICES:
        raise OptionError(f"unknown device '{requested}'; use one of {', '.join(DEVICES)}")
    if requested != "auto":
        if requested not in supported:
            raise OptionError(
                f"this model's backend cannot run on {requested}; it supports "
                f"{', '.join(supported)}"
            )
        if requested == "cuda" and cuda_device_count() == 0:
            raise OptionError("device cuda was asked for, but no CUDA GPU is visible")
        if requested == "mps" and not mps_available():
            raise OptionError("device mps was asked for, but PyTorch reports no MPS device")
        return DeviceChoice(requested, f"{requested} as requested")
    if "cuda" in supported:
        count = cuda_device_count()
        if count:
            return DeviceChoice("cuda", f"auto: {count} CUDA device(s) found")
    if "mps" in supported and mps_available():
        return DeviceChoice("mps", "auto: Apple MPS available")
    why = "no CUDA GPU found"
    if "mps" in supported:
        why += " and no MPS device"
    elif mps_available():
        why += "; MPS exists but this backend cannot use it"
    return DeviceChoice("cpu", f"auto: {why}, using the CPU")
