"""Uploaded audio on disk under ``<data_dir>/audio``, with generated names and a size limit.

A client's file name is kept for display only; it never becomes part of a path. An upload is
written under its name plus ``.part`` and renamed when complete, so that one cut off by a
killed server is recognisable; :meth:`AudioStore.sweep` removes such leftovers.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tingji.errors import EmptyAudioError, FileTypeError, TooLargeError

EXTENSIONS = frozenset(
    {
        "wav",
        "mp3",
        "flac",
        "m4a",
        "aac",
        "ogg",
        "oga",
        "opus",
        "webm",
        "mp4",
        "mkv",
        "mov",
        "wma",
        "amr",
        "3gp",
        "mpga",
        "mpeg",
    }
)
_SAFE_EXT = re.compile(r"^[a-z0-9]{1,5}$")
PARTIAL = ".part"
"""Suffix of an upload still being written."""


@dataclass(frozen=True)
class StoredAudio:
    file: str
    """Generated name under the audio directory."""
    name: str
    """The client's name for it (display only)."""
    size: int


def check_extension(name: str) -> str:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in EXTENSIONS:
        shown = f".{ext}" if ext else "no extension"
        raise FileTypeError(
            f"unsupported file type ({shown}); send one of " + ", ".join(sorted(EXTENSIONS)),
            source=name,
        )
    return ext


class AudioStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def save(self, stream: BinaryIO, name: str) -> StoredAudio:
        """Copy an upload to a new generated file, enforcing the size limit while copying."""
        ext = check_extension(name)
        self.root.mkdir(parents=True, exist_ok=True)
        suffix = ext if _SAFE_EXT.match(ext) else "bin"
        file = f"{time.strftime('%Y%m%d')}-{uuid.uuid4().hex}.{suffix}"
        target = self.root / file
        partial = self.root / (file + PARTIAL)
        size = 0
        try:
            with partial.open("xb") as out:
                while block := stream.read(1 << 20):
                    size += len(block)
                    if size > self.max_bytes:
                        raise TooLargeError(
                            f"the file is larger than the {self.max_bytes / 2**20:.3g} MiB limit",
                            source=name,
                        )
                    out.write(block)
            if size == 0:
                raise EmptyAudioError("file is empty", source=name)
            partial.rename(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return StoredAudio(file, name, size)

    def path(self, file: str) -> Path:
        """The path of a stored file (names come from :meth:`save`, never from a client)."""
        if "/" in file or "\\" in file or file.startswith("."):
            raise ValueError(f"not a stored audio name: {file!r}")
        return self.root / file

    def delete(self, files: list[str]) -> None:
        for file in files:
            self.path(file).unlink(missing_ok=True)

    def sweep(self, keep: set[str], idle_seconds: float) -> list[str]:
        """Delete leftovers untouched for ``idle_seconds``: uploads never completed (``.part``)
        and stored files not in ``keep``. Returns their names.

        The idle time spares another process's work on the same directory: an upload being
        written is touched with every block, and a completed one is kept that long before its
        history entry must exist.
        """
        if not self.root.is_dir():
            return []
        cutoff = time.time() - idle_seconds
        removed = []
        for entry in os.scandir(self.root):
            if not entry.is_file() or entry.name in keep or entry.name.startswith("."):
                continue
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed.append(entry.name)
            except OSError:  # gone meanwhile, or held open (Windows): the next sweep tries again
                continue
        return removed

    def older_than(self, days: int) -> list[str]:
        if not self.root.is_dir():
            return []
        cutoff = time.time() - days * 86400
        return [e.name for e in os.scandir(self.root) if e.is_file() and e.stat().st_mtime < cutoff]
