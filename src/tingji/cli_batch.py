"""``tingji batch``: an archive of files, in bulk, resumable (see :mod:`tingji.bulk`)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tingji.bulk import Item, Outputs, Result, find_items, recognise_here, recognise_with
from tingji.config import Settings
from tingji.errors import OptionError

SUMMARY_EVERY_S = 30.0
"""How often the summary is written while a run goes on (and always at its end)."""
DESCRIPTION = """\
Recognise an archive of audio files in bulk: every audio file under a directory, or those a
manifest lists. For each file its outputs are written under --output, mirroring the folders
(a/b.wav gives OUT/a/b.srt ...), and OUT/summary.csv lists every file with its status, length,
language, the node that did it and any error. A file that cannot be read is a row of the
summary, not the end of the run.

Resumable: a file whose outputs all exist is skipped, so after a stop (Ctrl-C, a crash, a
machine gone) run the same command again and it goes on where it was. Each output appears
only once complete. Files not reached yet are "waiting" in the summary.

Where it runs: with --ray-address (or TINGJI_RAY_ADDRESS) on a Ray cluster, one model per
GPU or per N cores on every node (TINGJI_RAY_CPUS_PER_MODEL), files streamed to the nodes
through Ray's object store; --ray-address local starts a Ray of this machine alone. Without
either, in this process, several files at once sharing one model (no Ray needed).

批量识别：目录下的全部音频，或清单（CSV 的 path 列 / JSONL 的 path）所列文件；每个文件的
结果写到 --output 下，另有 summary.csv 汇总。可续跑：已有全部输出的文件会跳过。
加 --ray-address 在 Ray 集群上运行（每块 GPU 或每 N 个 CPU 核一个模型）；不加则在本机运行。

Examples:
  tingji batch /archive/2019 --output /archive/2019-text --format srt,json
  tingji batch list.csv --output out/ --ray-address auto --language zh
  tingji batch calls/ --output out/ --ray-address 10.0.0.5:6379 --diarize
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser(
        "batch",
        help="recognise a directory or manifest of many files, resumable, optionally on Ray",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument(
        "source", type=Path, metavar="SOURCE", help="a directory, or a .csv/.jsonl manifest"
    )
    b.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="output folder")
    b.add_argument("-f", "--format", default="srt,json", help="output formats (default srt,json)")
    b.add_argument("-l", "--language", help="language code (zh, en ...); default: detect per file")
    b.add_argument(
        "-m", "--model", help="model (default base, embedded); on a cluster, every node needs it"
    )
    b.add_argument("--diarize", action="store_true", help="label each segment with its speaker")
    b.add_argument("--no-itn", action="store_true", help="keep numbers as spoken")
    b.add_argument(
        "--ray-address",
        help="Ray cluster: auto, HOST:PORT, ray://HOST:PORT, or local (default TINGJI_RAY_ADDRESS; "
        "none: this process)",
    )
    b.add_argument(
        "--shared",
        action="store_true",
        help="every node sees SOURCE's files at the same paths (NFS ...): nodes read them there",
    )
    b.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_batch(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from tingji.cli import EXIT_FAILED
    from tingji.cli_transcribe import _formats

    formats = _formats(args.format)
    items = find_items(args.source)
    if not items:
        raise OptionError(f"no audio files in {args.source}")
    outputs = Outputs(args.output, formats)
    earlier = outputs.earlier()
    todo = [item for item in items if not outputs.done(item)]
    skipped = len(items) - len(todo)
    waiting = set(todo)
    rows = {str(i.path): earlier.get(str(i.path)) or _row(outputs, i, i in waiting) for i in items}
    address = args.ray_address or settings.ray_address
    where = f"on the Ray cluster at {address}" if address else "in this process"
    print(
        f"{len(items)} files: {skipped} done before (skipped), {len(todo)} to recognise {where}",
        file=sys.stderr,
    )
    failed = 0
    started = saved = time.perf_counter()
    audio = 0.0
    bar = tqdm(
        total=len(todo),
        unit="file",
        disable=args.no_progress or not sys.stderr.isatty(),
        dynamic_ncols=True,
    )
    try:
        for result in _results(todo, settings, args, address) if todo else ():
            if result.transcript is not None:
                outputs.write(result.transcript, result.item)
                audio += result.transcript.duration
            else:
                failed += 1
                tqdm.write(f"{result.item.path}: {result.error}", file=sys.stderr)
            rows[str(result.item.path)] = outputs.row(result)
            bar.update(1)
            bar.set_postfix(failed=failed, refresh=False)
            if time.perf_counter() - saved > SUMMARY_EVERY_S:  # a killed run keeps most rows
                outputs.write_summary(list(rows.values()))
                saved = time.perf_counter()
    finally:
        bar.close()
        summary = outputs.write_summary(list(rows.values()))
    wall = time.perf_counter() - started
    print(
        f"{len(todo) - failed} recognised, {skipped} skipped, {failed} failed; "
        f"{audio:.0f} s of audio in {wall:.0f} s; summary: {summary}",
        file=sys.stderr,
    )
    return EXIT_FAILED if failed else 0


def _row(outputs: Outputs, item: Item, waiting: bool) -> dict[str, str]:
    """A file's row before this run: done (with no earlier summary to say more) or waiting."""
    if waiting:
        return {"file": str(item.path), "status": "waiting"}
    written = ";".join(str(p.relative_to(outputs.folder)) for p in outputs.paths(item))
    return {"file": str(item.path), "status": "done", "outputs": written}


def _results(
    todo: list[Item], settings: Settings, args: argparse.Namespace, address: str | None
) -> Iterator[Result]:
    from tingji.service import Tingji

    service = Tingji(settings)
    options = service.options(
        language=args.language or settings.language,
        itn=settings.itn and not args.no_itn,
        diarize=args.diarize,
    )
    model = settings.model  # --model, when given
    if address:
        from tingji.cluster.bulk import recognise_on_cluster

        yield from recognise_on_cluster(
            todo, settings, options, model, address=address, shared=args.shared
        )
        return
    service.backend(model)
    yield from recognise_here(
        todo, recognise_with(service.recognise_file, options, model), settings.workers
    )
