"""`long`: a 136 s Mandarin recording through tingji and through plain faster-whisper.

Each measurement runs in its own spawned process: the model is loaded first (not timed), then
the file is transcribed from its path and the generator consumed (timed). The process's peak RSS
(``ru_maxrss``) is read at the end, and its RSS right after loading, so the part that the audio
and the pipeline add is visible.

Every variant is measured :data:`ROUNDS` times, the variants taking turns, and the median time
is reported: the load that other processes put on a shared machine drifts over a run, and taking
turns spreads it over all variants alike.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks import common
from tingji.scoring import cer

NAME = "long"
CLIP = "long/zh_dev_concat.wav"
ROUNDS = 3
VARIANTS = {
    "tingji": "tingji default pipeline (VAD, packing, ITN, punctuation)",
    "plain": "WhisperModel.transcribe(language='zh', beam_size=5)",
    "plain+vad": "WhisperModel.transcribe(..., vad_filter=True)",
    "batched": "BatchedInferencePipeline.transcribe(..., batch_size=8)",
}


def measure(variant: str) -> dict[str, Any]:
    """Runs in a fresh process: load, transcribe once, report."""
    clip = next(c for c in common.manifest() if c.name == CLIP)
    if variant == "tingji":
        from tingji.service import Tingji

        service = Tingji(common.settings())
        service.backend()
        loaded = common.rss_mb()
        with common.stopwatch() as wall:
            text = service.transcribe(clip.path, service.options(language="zh")).text
    else:
        from faster_whisper import BatchedInferencePipeline

        model = common.plain_model()
        loaded = common.rss_mb()
        kwargs = {"language": "zh", "beam_size": common.BEAM_SIZE}
        with common.stopwatch() as wall:
            if variant == "batched":
                pipeline = BatchedInferencePipeline(model)
                segments, _ = pipeline.transcribe(clip.path, batch_size=8, **kwargs)
            else:
                segments, _ = model.transcribe(
                    clip.path, vad_filter=variant == "plain+vad", **kwargs
                )
            text = common.plain_text(segments)
    return {
        "variant": variant,
        "what": VARIANTS[variant],
        "cer": cer(clip.text, text),
        "wall_s": wall[0],
        "cpu_s": wall[1],
        "speed_x": clip.duration / wall[0],
        "rss_after_load_mb": loaded,
        "peak_rss_mb": common.peak_rss_mb(),
        "text": text,
    }


def main() -> dict[str, Any]:
    common.model_dir()  # assemble the embedded model here, not in the first worker
    print(f"[{NAME}] {CLIP}, {ROUNDS} rounds, each variant in its own process ...", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    for round_ in range(1, ROUNDS + 1):
        for variant in VARIANTS:
            run = common.in_fresh_process(measure, variant)
            print(
                f"  round {round_}  {variant:10} CER {run['cer']:.3f}  "
                f"{run['speed_x']:.2f}x real time  peak {run['peak_rss_mb']:.0f} MB",
                flush=True,
            )
            runs[variant].append(run)
    results = [_summary(variant_runs) for variant_runs in runs.values()]
    plain = next(r for r in results if r["variant"] == "plain")
    batched = next(r for r in results if r["variant"] == "batched")
    for r in results:
        r["speed_vs_plain"] = r["speed_x"] / plain["speed_x"]
        r["speed_vs_batched"] = r["speed_x"] / batched["speed_x"]
        r["peak_vs_plain"] = r["peak_rss_mb"] / plain["peak_rss_mb"]
    common.print_table(
        f"long: {CLIP} (136 s), Whisper base {common.settings().compute_type}, "
        f"{common.THREADS} threads, beam {common.BEAM_SIZE}; median of {ROUNDS} runs",
        [
            "variant",
            "CER",
            "speed",
            "runs",
            "speed/plain",
            "speed/batched",
            "CPU s",
            "RSS loaded",
            "peak RSS",
            "peak/plain",
        ],
        [
            [
                r["variant"],
                f"{r['cer']:.3f}",
                f"{r['speed_x']:.2f}x",
                " ".join(f"{x:.1f}" for x in r["speeds_x"]),
                f"{r['speed_vs_plain']:.2f}",
                f"{r['speed_vs_batched']:.2f}",
                f"{r['cpu_s']:.1f}",
                f"{r['rss_after_load_mb']:.0f} MB",
                f"{r['peak_rss_mb']:.0f} MB",
                f"{r['peak_vs_plain']:.2f}",
            ]
            for r in results
        ],
    )
    output = {"clip": CLIP, "rounds": ROUNDS, "results": results}
    common.save(NAME, output)
    return output


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One variant's runs: the median run's figures, every run's speed and CER, the highest
    peak memory."""
    median = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    return median | {
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "speed_x": statistics.median(r["speed_x"] for r in runs),
        "speeds_x": [r["speed_x"] for r in runs],
        "cers": [r["cer"] for r in runs],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }
