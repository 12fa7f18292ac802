"""Bulk mode: an archive of audio files recognised into a folder of outputs, one set per file,
and a ``summary.csv`` of them all. Resumable: a file whose outputs all exist is done, and a
rerun skips it.

The files come from a directory (every audio file under it) or a manifest: a ``.csv`` with a
``path`` column or a ``.jsonl`` with a ``path`` per line, relative paths read from the
manifest's folder. Outputs mirror the files' folders: ``a/b.wav`` gives ``OUT/a/b.srt``. Each
output is written to a temporary name and renamed, so one that exists is complete.

Recognition itself runs elsewhere: :func:`recognise_here` in this process, or
:func:`tingji.cluster.bulk.recognise_on_cluster` on a Ray cluster.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tingji.errors import OptionError, OutputError, TingjiError
from tingji.formats import render
from tingji.jobs.audio_store import EXTENSIONS
from tingji.types import TranscribeOptions, Transcript

SUMMARY = "summary.csv"
SUMMARY_FIELDS = (
    "file",
    "status",
    "outputs",
    "duration_s",
    "processing_s",
    "language",
    "node",
    "error",
)


@dataclass(frozen=True)
class Item:
    """One input file and the name its outputs take (``a/b`` for ``OUT/a/b.srt``)."""

    path: Path
    key: str


@dataclass
class Result:
    item: Item
    transcript: Transcript | None = None
    error: str | None = None
    node: str | None = None


def find_items(source: Path) -> list[Item]:
    """The files of a directory (recursively, audio and video by extension) or a manifest."""
    if source.is_dir():
        paths = sorted(
            p
            for p in source.rglob("*")
            if p.is_file() and p.suffix[1:].lower() in EXTENSIONS and not p.name.startswith(".")
        )
        return _keyed(paths, source)
    if not source.is_file():
        raise OptionError(f"{source} is neither a directory nor a manifest file")
    suffix = source.suffix.lower()
    if suffix == ".csv":
        paths = _csv_paths(source)
    elif suffix in (".jsonl", ".ndjson"):
        paths = _jsonl_paths(source)
    else:
        raise OptionError(f"a manifest is a .csv with a 'path' column or a .jsonl, not {source}")
    return _keyed([p if p.is_absolute() else source.parent / p for p in paths], source.parent)


def _csv_paths(manifest: Path) -> list[Path]:
    with manifest.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if "path" not in (reader.fieldnames or []):
            raise OptionError(f"{manifest} has no 'path' column (its first row names the columns)")
        return [Path(row["path"]) for row in reader if (row.get("path") or "").strip()]


def _jsonl_paths(manifest: Path) -> list[Path]:
    paths = []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            paths.append(Path(entry["path"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise OptionError(f"{manifest} line {number}: no JSON object with a 'path'") from exc
    return paths


def _keyed(paths: Iterable[Path], base: Path) -> list[Item]:
    items, taken = [], set()
    for path in dict.fromkeys(paths):
        try:
            relative = PurePosixPath(path.relative_to(base).as_posix())
        except ValueError:  # outside the base: its whole path, without the root
            relative = PurePosixPath(*path.parts[1:]) if path.is_absolute() else PurePosixPath(path)
        key = str(relative.with_suffix(""))
        if key in taken:  # talk.wav and talk.mp3 side by side
            key = str(relative)
        taken.add(key)
        items.append(Item(path, key))
    return items


class Outputs:
    """Where each file's outputs go, which files are done, and the summary."""

    def __init__(self, folder: Path, formats: list[str]) -> None:
        self.folder = folder
        self.formats = formats
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot make the output folder {folder}: {exc.strerror}") from exc

    def paths(self, item: Item) -> list[Path]:
        return [self.folder / f"{item.key}.{fmt}" for fmt in self.formats]

    def done(self, item: Item) -> bool:
        return all(p.is_file() for p in self.paths(item))

    def write(self, transcript: Transcript, item: Item) -> None:
        for fmt, target in zip(self.formats, self.paths(item), strict=True):
            _write_atomic(target, render(transcript, fmt))

    def earlier(self) -> dict[str, dict[str, str]]:
        """The rows of the summary of an earlier run, by file."""
        path = self.folder / SUMMARY
        if not path.is_file():
            return {}
        with path.open(encoding="utf-8", newline="") as handle:
            return {row["file"]: row for row in csv.DictReader(handle) if row.get("file")}

    def row(self, result: Result) -> dict[str, str]:
        t = result.transcript
        return {
            "file": str(result.item.path),
            "status": "done" if t is not None else "failed",
            "outputs": ";".join(str(p.relative_to(self.folder)) for p in self.paths(result.item))
            if t is not None
            else "",
            "duration_s": f"{t.duration:.2f}" if t is not None else "",
            "processing_s": f"{t.processing_time:.2f}" if t is not None else "",
            "language": t.language if t is not None else "",
            "node": result.node or "",
            "error": result.error or "",
        }

    def write_summary(self, rows: list[dict[str, str]]) -> Path:
        import io

        text = io.StringIO()
        writer = csv.DictWriter(text, SUMMARY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        path = self.folder / SUMMARY
        _write_atomic(path, text.getvalue())
        return path


def _write_atomic(target: Path, text: str) -> None:
    temporary = target.with_name(f".{target.name}.part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {exc.strerror}") from exc


Recognise = Callable[[Path, str], Transcript]
"""(file, its name) -> transcript, raising TingjiError for a file that cannot be recognised."""


def recognise_here(items: list[Item], recognise: Recognise, lanes: int) -> Iterator[Result]:
    """Recognise the files in this process, ``lanes`` at once (their decodes share batches);
    results as they finish."""
    if not items:
        return
    with ThreadPoolExecutor(max_workers=max(1, lanes), thread_name_prefix="tingji-bulk") as pool:
        running = {pool.submit(recognise, item.path, item.path.name): item for item in items}
        try:
            for future in as_completed(running):
                item = running[future]
                try:
                    yield Result(item, future.result())
                except TingjiError as exc:
                    yield Result(item, error=exc.message)
                except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
                    yield Result(item, error=f"internal error: {exc}")
        finally:
            for future in running:
                future.cancel()


def recognise_with(
    service_recognise: Callable[..., Transcript],
    options: TranscribeOptions,
    model: str,
) -> Recognise:
    """A :data:`Recognise` from :meth:`tingji.service.Tingji.recognise_file`."""

    def run(path: Path, name: str) -> Transcript:
        return service_recognise(str(path), options, model, lambda done, total: True, name=name)

    return run
