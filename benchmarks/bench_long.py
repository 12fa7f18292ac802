"""`long`: a 136 s Mandarin recording through tingji and through plain faster-whisper.

Each variant runs in its own spawned process: the model is loaded first (not timed), then the
file is transcribed from its path and the generator consumed (timed). The process's peak RSS
(``ru_maxrss``) is read at the end, and its RSS right after loading, so the part that the audio
and the pipeline add is visible.
"""

from __future__ import annotations

from typing import Any

from benchmarks import common
from tingji.scoring import cer

NAME = "long"
CLIP = "long/zh_dev_concat.wav"
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
    print(f"[{NAME}] {CLIP}, each variant in its own process ...", flush=True)
    results = []
    for variant in VARIANTS:
        result = common.in_fresh_process(measure, variant)
        print(
            f"  {variant:10} CER {result['cer']:.3f}  {result['speed_x']:.2f}x real time  "
            f"peak {result['peak_rss_mb']:.0f} MB",
            flush=True,
        )
        results.append(result)
    plain = next(r for r in results if r["variant"] == "plain")
    for r in results:
        r["speed_vs_plain"] = r["speed_x"] / plain["speed_x"]
        r["peak_vs_plain"] = r["peak_rss_mb"] / plain["peak_rss_mb"]
    common.print_table(
        f"long: {CLIP} (136 s), Whisper base {common.settings().compute_type}, "
        f"{common.THREADS} threads, beam {common.BEAM_SIZE}",
        ["variant", "CER", "speed", "speed/plain", "CPU s", "RSS loaded", "peak RSS", "peak/plain"],
        [
            [
                r["variant"],
                f"{r['cer']:.3f}",
                f"{r['speed_x']:.2f}x",
                f"{r['speed_vs_plain']:.2f}",
                f"{r['cpu_s']:.1f}",
                f"{r['rss_after_load_mb']:.0f} MB",
                f"{r['peak_rss_mb']:.0f} MB",
                f"{r['peak_vs_plain']:.2f}",
            ]
            for r in results
        ],
    )
    output = {"clip": CLIP, "results": results}
    common.save(NAME, output)
    return output
