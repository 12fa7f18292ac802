"""Run the benchmarks named on the command line, or all of them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from benchmarks import (
    bench_accuracy,
    bench_batch,
    bench_compute_type,
    bench_diarize,
    bench_hotwords,
    bench_long,
    bench_scale,
    bench_server,
    bench_streaming,
    common,
)

BENCHMARKS: dict[str, Callable[[], Any]] = {
    "accuracy": bench_accuracy.main,
    "long": bench_long.main,
    "batch": bench_batch.main,
    "hotwords": bench_hotwords.main,
    "compute": bench_compute_type.main,
    "streaming": bench_streaming.main,
    "server": bench_server.main,
    "diarize": bench_diarize.main,
    "scale": bench_scale.main,
}


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        return 2
    if not common.MANIFEST.is_file():
        print(f"benchmarks skipped: no shared audio at {common.AUDIO} (needs manifest.jsonl)")
        return 0
    for name in argv or list(BENCHMARKS):
        common.check_quiet()
        with common.stopwatch() as took:
            BENCHMARKS[name]()
        print(f"[{name}] took {took[0]:.0f} s\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
