"""What every benchmark shares: the clips, one model configuration, timing, memory, output.

Both sides of every comparison load the same CTranslate2 directory (the embedded Whisper base,
assembled once into the per-user cache, ``~/.cache/tingji/models``) with the same device,
compute type, thread count and beam size, so the only difference measured is what tingji does
around the model.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

import psutil

from tingji.config import Settings
from tingji.engine.whisper import CPU_COMPUTE_TYPE, resolve_model_path
from tingji.scoring import edit_distance

REPO = Path(__file__).resolve().parents[1]
AUDIO = REPO.parent / "shared" / "audio"
MANIFEST = AUDIO / "manifest.jsonl"
OUTPUT = REPO / "bench-output"
THREADS = os.cpu_count() or 1
"""Given explicitly to tingji and to plain faster-whisper alike."""
BEAM_SIZE = 5
T = TypeVar("T")


@dataclass(frozen=True)
class Clip:
    name: str
    """The manifest path, e.g. ``zh/funasr/asr_example_zh.wav``."""
    path: str
    text: str
    lang: str
    duration: float


@cache
def manifest() -> tuple[Clip, ...]:
    """The shared clips that have a reference text."""
    clips = []
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("text"):
            clips.append(
                Clip(
                    entry["path"],
                    str(AUDIO / entry["path"]),
                    entry["text"],
                    entry["lang"],
                    float(entry["duration_s"]),
                )
            )
    return tuple(clips)


def clips(prefix: str) -> list[Clip]:
    return [c for c in manifest() if c.name.startswith(prefix)]


def settings(**overrides: Any) -> Settings:
    """tingji's defaults, pinned to what the plain-library side gets."""
    values: dict[str, Any] = {
        "data_dir": REPO / "data",
        "device": "cpu",
        "compute_type": CPU_COMPUTE_TYPE,
        "cpu_threads": THREADS,
        "beam_size": BEAM_SIZE,
    }
    return Settings(**(values | overrides))


def model_dir() -> str:
    """The embedded model's CTranslate2 directory (assembled on first use)."""
    s = settings()
    return str(resolve_model_path(s.model, s.model_cache)[1])


def plain_model(compute_type: str = CPU_COMPUTE_TYPE) -> Any:
    """faster-whisper's ``WhisperModel`` on the same files, threads and compute type."""
    from faster_whisper import WhisperModel

    return WhisperModel(model_dir(), device="cpu", compute_type=compute_type, cpu_threads=THREADS)


def plain_text(segments: Any) -> str:
    """Consume a faster-whisper segment generator (that is where the decoding happens)."""
    return "".join(s.text for s in segments)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` then ``t[0]`` is the wall time in seconds and ``t[1]``
    the CPU time of this process (all threads), which other processes' load disturbs less."""
    elapsed = [0.0, 0.0]
    start, cpu = time.perf_counter(), time.process_time()
    try:
        yield elapsed
    finally:
        elapsed[:] = [time.perf_counter() - start, time.process_time() - cpu]


def rss_mb() -> float:
    """Resident memory of this process now."""
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """Highest resident memory of this process so far.

    Linux's VmHWM, the high-water mark of this program's own memory. Not ``ru_maxrss``: a
    process started by fork and exec (multiprocessing's spawn) inherits its parent's peak there,
    so a fresh process measured after a parent that built an hour of audio read 802 MB for a
    10-minute file. ``ru_maxrss`` (KiB on Linux) only where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_fresh_process(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in a new spawned interpreter, so its peak RSS is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower().replace("\u2019", "'"))


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference words) on lower-cased words, punctuation dropped."""
    ref, hyp = words(reference), words(hypothesis)
    # one private-use character per distinct word turns a word sequence into a string
    code = {w: chr(0xE000 + i) for i, w in enumerate(dict.fromkeys(ref + hyp))}
    ref_codes, hyp_codes = "".join(code[w] for w in ref), "".join(code[w] for w in hyp)
    return edit_distance(ref_codes, hyp_codes), len(ref)


def source_version() -> str:
    """The commit measured, ``-dirty`` when the working tree has changes (read-only git)."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def environment() -> dict[str, Any]:
    import ctranslate2
    import faster_whisper

    return {
        "source": source_version(),
        "model_dir": model_dir(),
        "device": "cpu",
        "cpu_threads": THREADS,
        "beam_size": BEAM_SIZE,
        "cpu_count": os.cpu_count(),
        "load_average_at_save": os.getloadavg()[0],
        "machine": platform.machine(),
        "python": platform.python_version(),
        "faster_whisper": faster_whisper.__version__,
        "ctranslate2": ctranslate2.__version__,
    }


def check_quiet() -> None:
    """Warn when other processes compete for the CPU: speeds then mean little."""
    load = os.getloadavg()[0]
    if load > 0.5:
        print(
            f"  note: load average {load:.1f} before starting: other processes share the "
            f"{THREADS} cores, so speeds (not error rates) are lower and noisier than when idle"
        )


def print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    print(f"\n{title}")
    print(line(headers))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))


def save(name: str, results: dict[str, Any]) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.json"
    payload = {"benchmark": name, "environment": environment(), **results}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {path.relative_to(REPO)}")
    return path
