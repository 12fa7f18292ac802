"""Uploaded audio on disk under ``<data_dir>/audio``, with generated names and a size limit.

A client's file name is kept for display only; it never becomes part of a path. An upload is
written under its name plus ``.part`` and renamed when complete, so that one cut off by a
killed server is recognisable; :meth:`AudioStore.sweep` removes such leftovers. A live
stream's audio is written the same way as it arrives (:class:`LiveRecording`).

Servers that share a PostgreSQL database but no disk keep each stored file in the database too
(a :class:`Mirror`, :mod:`tingji.jobs.audio_blobs`); :meth:`AudioStore.local` fetches one that
another server stored.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from tingji.errors import EmptyAudioError, FileTypeError, TingjiError, TooLargeError

log = logging.getLogger("tingji")

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


class Mirror(Protocol):
    """Where stored files are kept for other servers too (the shared database)."""

    def put_audio(self, file: str, path: Path) -> None: ...

    def fetch_audio(self, file: str, target: Path) -> bool: ...

    def delete_audio(self, files: Sequence[str]) -> None: ...

    def audio_stored_before(self, cutoff: float) -> list[str]: ...


class AudioStore:
    def __init__(
        self, root: Path, max_bytes: int, mirror: Callable[[], Mirror | None] | None = None
    ) -> None:
        """``mirror``: gives where stored files are kept for other servers too, if anywhere
        (asked when first needed)."""
        self.root = root
        self.max_bytes = max_bytes
        self._mirror = mirror

    @property
    def mirror(self) -> Mirror | None:
        return self._mirror() if self._mirror is not None else None

    def share(self, file: str) -> None:
        """Keep a stored file for the other servers too (where they share a database)."""
        mirror = self.mirror
        if mirror is not None:
            mirror.put_audio(file, self.path(file))

    def local(self, file: str) -> Path | None:
        """The path of a stored file on this machine, fetched first when another server stored
        it; None when it is stored nowhere."""
        path = self.path(file)
        if path.is_file():
            return path
        mirror = self.mirror
        if mirror is not None and mirror.fetch_audio(file, path):
            return path
        return None

    def save(self, stream: BinaryIO, name: str) -> StoredAudio:
        """Copy an upload to a new generated file, enforcing the size limit while copying."""
        ext = check_extension(name)
        file = self.new_name(ext if _SAFE_EXT.match(ext) else "bin")
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
            self.share(file)
        except BaseException:
            partial.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
            raise
        return StoredAudio(file, name, size)

    def new_name(self, suffix: str) -> str:
        """A fresh generated name for a stored file (in a directory that exists)."""
        self.root.mkdir(parents=True, exist_ok=True)
        return f"{time.strftime('%Y%m%d')}-{uuid.uuid4().hex}.{suffix}"

    def record(self, name: str, sample_rate: int = 16000) -> LiveRecording:
        """Start storing a live stream's audio (see :class:`LiveRecording`); raises
        :class:`OSError` when the file cannot be created."""
        return LiveRecording(self, name, sample_rate)

    def path(self, file: str) -> Path:
        """The path of a stored file (names come from :meth:`save`, never from a client)."""
        if "/" in file or "\\" in file or file.startswith("."):
            raise ValueError(f"not a stored audio name: {file!r}")
        return self.root / file

    def delete(self, files: list[str]) -> None:
        mirror = self.mirror
        if mirror is not None:  # first, so that no server fetches them again
            mirror.delete_audio(files)
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
        mirror = self.mirror
        if mirror is not None:
            orphans = [f for f in mirror.audio_stored_before(cutoff) if f not in keep]
            mirror.delete_audio(orphans)
            removed += [f for f in orphans if f not in removed]
        return removed

    def older_than(self, days: int) -> list[str]:
        """Stored files older than ``days``, here or (where shared) in the database."""
        cutoff = time.time() - days * 86400
        found = []
        if self.root.is_dir():
            found = [
                e.name for e in os.scandir(self.root) if e.is_file() and e.stat().st_mtime < cutoff
            ]
        mirror = self.mirror
        if mirror is not None:
            found += [f for f in mirror.audio_stored_before(cutoff) if f not in found]
        return found


class LiveRecording:
    """A live stream's audio, written to the store as it arrives: 16-bit mono WAV under a
    generated name plus ``.part``, renamed by :meth:`keep`.

    The header is brought up to date with every block, so the file is whole at any moment. A
    disk error or the store's size limit ends the recording, never the stream: it is logged,
    what was written is removed, and :meth:`keep` keeps nothing. Blocks may come from any one
    thread at a time and :meth:`keep` or :meth:`discard` from another.
    """

    def __init__(self, store: AudioStore, name: str, sample_rate: int = 16000) -> None:
        self.store = store
        self.name = name
        self.file = store.new_name("wav")
        self.size = 0
        """Bytes of audio written so far."""
        self._partial = store.root / (self.file + PARTIAL)
        self._lock = threading.Lock()
        self._out = self._partial.open("xb")  # noqa: SIM115 - open for the stream
        try:
            self._wav: wave.Wave_write | None = wave.open(self._out, "wb")  # noqa: SIM115
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(sample_rate)
        except BaseException:
            self._out.close()
            self._partial.unlink(missing_ok=True)
            raise

    def write(self, pcm: bytes) -> None:
        """Append s16le samples; never raises for the disk's sake (see the class)."""
        with self._lock:
            if self._wav is None or not pcm:
                return
            if self.size + len(pcm) > self.store.max_bytes:
                log.warning(
                    "live audio %r reached the %.3g MiB limit: its audio is not kept",
                    self.name,
                    self.store.max_bytes / 2**20,
                )
                self._remove()
                return
            try:
                self._wav.writeframes(pcm)
            except OSError as exc:
                log.warning("live audio %r could not be written, not kept: %s", self.name, exc)
                self._remove()
                return
            self.size += len(pcm)

    def keep(self) -> StoredAudio | None:
        """End the recording and store it under :attr:`file`; None when nothing is kept (no
        audio, or an error ended it)."""
        with self._lock:
            if self._wav is None:
                return None
            if self.size == 0:
                self._remove()
                return None
            try:
                self._close()
                self._partial.rename(self.store.path(self.file))
            except OSError as exc:
                log.warning("live audio %r could not be stored: %s", self.name, exc)
                self._remove()
                return None
            try:
                self.store.share(self.file)
            except (OSError, TingjiError) as exc:  # kept here; other servers cannot play it
                log.warning(
                    "live audio %r was not shared with the other servers: %s", self.name, exc
                )
            return StoredAudio(self.file, self.name, self.size)

    def discard(self) -> None:
        """End the recording and remove what was written (harmless after :meth:`keep`: the
        stored file is the caller's then)."""
        with self._lock:
            if self._wav is not None:
                self._remove()

    def _close(self) -> None:
        wav, self._wav = self._wav, None
        try:
            if wav is not None:
                wav.close()
        finally:
            self._out.close()

    def _remove(self) -> None:
        try:
            self._close()
        except OSError:
            log.debug("closing the dropped live audio %r", self.name, exc_info=True)
        try:
            self._partial.unlink(missing_ok=True)
        except OSError as exc:  # the sweep at the next start removes it
            log.warning("live audio %r could not be removed: %s", self.name, exc)
