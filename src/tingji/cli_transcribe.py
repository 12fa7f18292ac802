"""``tingji transcribe``: many files, one progress bar each, a summary line at the end."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tingji.config import Settings
from tingji.errors import OptionError, OutputError, TingjiError
from tingji.formats import FORMATS, render
from tingji.types import Script, TranscribeOptions

if TYPE_CHECKING:
    from tingji.engine.pipeline import Transcription

_E = TypeVar("_E", bound=BaseException)


def _caused_by(error: _E, cause: BaseException) -> _E:
    """``error`` chained to ``cause``, so that --debug prints the original traceback."""
    error.__cause__ = cause
    return error


def _formats(spec: str) -> list[str]:
    formats = [f.strip().lower() for f in spec.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise OptionError(f"unknown format '{','.join(unknown) or spec}'; use {', '.join(FORMATS)}")
    return formats


def _hotwords(args: argparse.Namespace) -> tuple[str, ...]:
    from tingji.engine.hotwords import parse_hotwords

    if args.hotwords_file is not None:
        try:
            text = Path(args.hotwords_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise OptionError(f"cannot read the hotwords file {args.hotwords_file}: {exc}") from exc
        return tuple(parse_hotwords(text))
    if args.hotwords:
        return tuple(parse_hotwords(args.hotwords))
    return ()


def _check_output_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".tingji-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OutputError(
            f"cannot write to the output directory {out_dir}: {exc.strerror}"
        ) from exc


def _options(args: argparse.Namespace, base: TranscribeOptions) -> TranscribeOptions:
    script: Script | None = None
    if args.traditional:
        script = "traditional"
    elif args.original_script:
        script = "original"
    vad = base.vad
    if args.no_vad:
        vad = replace(vad, enabled=False)
    if args.max_segment is not None:
        if not 1 < args.max_segment <= 600:
            raise OptionError("--max-segment must be between 1 and 600 seconds")
        vad = replace(vad, max_segment_s=args.max_segment)
    return replace(
        base,
        language=args.language or base.language,
        task=args.task,
        hotwords=_hotwords(args),
        itn=base.itn and not args.no_itn,
        script=script or base.script,
        punctuate=not args.no_punctuation,
        vad=vad,
        diarize=bool(args.diarize or args.speakers or args.min_speakers or args.max_speakers),
        speakers=args.speakers,
        min_speakers=args.min_speakers,
        max_speakers=args.max_speakers,
    )


@contextmanager
def _speaker_progress(run: Transcription, bar: Any, name: str) -> Iterator[None]:
    """While speakers are told apart (before the first segment), the bar shows that stage."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.25):
            if run.stage == "speakers" and bar.total:
                bar.set_description_str(f"{name} · speakers", refresh=False)
                bar.n = round(run.stage_progress * bar.total, 1)
                bar.refresh()
            elif bar.desc != name:
                bar.set_description_str(name, refresh=False)
                bar.n = round(run.position, 1)
                bar.refresh()

    watcher = threading.Thread(target=watch, daemon=True) if run.options.diarize else None
    if watcher is not None and not bar.disable:
        watcher.start()
    try:
        yield
    finally:
        done.set()
        if watcher is not None and watcher.is_alive():
            watcher.join()
        if not bar.disable:
            bar.set_description_str(name, refresh=False)


def run_transcribe(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from tingji.cli import EXIT_FAILED, fail, write_outputs
    from tingji.service import Tingji

    formats = _formats(args.format)
    if args.output_dir is not None:
        _check_output_dir(args.output_dir)
    service = Tingji(settings)
    options = _options(args, service.options())
    service.backend()  # load once, before the first progress bar
    show_progress = not args.no_progress and sys.stderr.isatty()
    failed = 0
    audio_total = 0.0
    started = time.perf_counter()
    for path in args.files:
        try:
            run = service.start(path, options, name=path)
            total = round(run.duration, 1) if run.duration else None
            with (
                tqdm(
                    total=total,
                    unit="s",
                    desc=Path(path).name,
                    disable=not show_progress,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} s "
                    "audio [{elapsed}<{remaining}]",
                    leave=False,
                ) as bar,
                _speaker_progress(run, bar, Path(path).name),
            ):
                for _ in run:
                    bar.update(round(run.position - bar.n, 1))
            transcript = run.result()
            audio_total += transcript.duration
            if args.output_dir is not None:
                write_outputs(transcript, formats, args.output_dir, Path(path).stem)
            else:
                if len(args.files) > 1:
                    print(f"# {path}")
                for fmt in formats:
                    sys.stdout.write(render(transcript, fmt))
                sys.stdout.flush()
            print(
                f"{path}: {transcript.duration:.1f} s audio in "
                f"{transcript.processing_time:.1f} s ({transcript.speed:.1f}× real time), "
                f"language {transcript.language or '?'}",
                file=sys.stderr,
            )
            if options.diarize:
                found = sorted({t.speaker for t in transcript.speakers}, key=lambda s: (len(s), s))
                print(
                    f"{path}: {len(found)} speaker{'s' if len(found) != 1 else ''}"
                    + (f" ({', '.join(found)})" if found else ""),
                    file=sys.stderr,
                )
            for gap in transcript.omitted:
                print(
                    f"{path}: {gap.start:.1f}–{gap.end:.1f} s left out: the model "
                    f"repeated itself there under every search ({gap.reason})",
                    file=sys.stderr,
                )
        except OptionError:
            raise
        except TingjiError as exc:
            failed += 1
            message = str(exc) if exc.source else f"{path}: {exc}"
            fail(_caused_by(TingjiError(message), exc), debug=args.debug, code=EXIT_FAILED)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            failed += 1
            error = _caused_by(RuntimeError(f"{path}: {exc}"), exc)
            fail(error, debug=args.debug, code=EXIT_FAILED)
    wall = time.perf_counter() - started
    done = len(args.files) - failed
    speed = audio_total / wall if wall > 0 else 0.0
    print(
        f"{done} of {len(args.files)} files, {audio_total:.1f} s audio in {wall:.1f} s "
        f"({speed:.1f}× real time)" + (f", {failed} failed" if failed else ""),
        file=sys.stderr,
    )
    return EXIT_FAILED if failed else 0
