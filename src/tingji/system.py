"""What the machine offers: CPU, memory, GPUs, library versions."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import psutil

from tingji.engine.device import cuda_device_count, mps_available

_LIBRARIES = (
    "tingji",
    "faster-whisper",
    "ctranslate2",
    "onnxruntime",
    "av",
    "numpy",
    "opencc",
    "WeTextProcessing",
    "pypinyin",
    "funasr",
    "torch",
)


@dataclass
class GpuInfo:
    index: int
    name: str
    memory_used_mb: int | None = None
    memory_total_mb: int | None = None


@dataclass
class SystemInfo:
    cpu_cores: int
    cpu_model: str
    ram_total_mb: int
    ram_available_mb: int
    process_rss_mb: int
    python: str
    platform: str
    cuda_devices: int
    mps: bool
    gpus: list[GpuInfo] = field(default_factory=list)
    libraries: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _nvidia_smi() -> list[GpuInfo]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [
                exe,
                "--query-gpu=index,name,memory.used,memory.total",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4:
            used = int(parts[2]) if parts[2].isdigit() else None
            total = int(parts[3]) if parts[3].isdigit() else None
            gpus.append(GpuInfo(int(parts[0]), parts[1], used, total))
    return gpus


def _versions() -> dict[str, str]:
    found = {}
    for name in _LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def system_info() -> SystemInfo:
    memory = psutil.virtual_memory()
    return SystemInfo(
        cpu_cores=os.cpu_count() or 1,
        cpu_model=_cpu_model(),
        ram_total_mb=memory.total // 2**20,
        ram_available_mb=memory.available // 2**20,
        process_rss_mb=psutil.Process().memory_info().rss // 2**20,
        python=platform.python_version(),
        platform=platform.platform(),
        cuda_devices=cuda_device_count(),
        mps=mps_available(),
        gpus=_nvidia_smi(),
        libraries=_versions(),
    )
