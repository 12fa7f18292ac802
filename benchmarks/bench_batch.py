"""`batch`: the 15 Mandarin clips as separate files, one tingji job vs faster-whisper one by one.

tingji gets one job of 15 files through the service (stored uploads, the job runner, history),
exactly as `POST /api/jobs` would; its lanes run several files at once and their utterances
share the model's decode batches. The plain side loads the same model and calls
``transcribe(path, language="zh", beam_size=5)`` on each file in turn. Each side runs in its
own process; the model load is not timed.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import common
from tingji.scoring import pooled_cer

NAME = "batch"
VARIANTS = {
    "tingji": "one tingji job of 15 files (service + job runner)",
    "plain": "WhisperModel.transcribe(path, language='zh', beam_size=5), file after file",
}


def measure(variant: str) -> dict[str, Any]:
    clips = common.clips("zh/")
    audio_seconds = sum(c.duration for c in clips)
    if variant == "tingji":
        from tingji.service import Tingji

        with tempfile.TemporaryDirectory() as tmp:
            model_dir = common.settings().model_cache
            service = Tingji(common.settings(data_dir=Path(tmp), models_dir=model_dir))
            service.backend()
            stored = []
            for clip in clips:
                with open(clip.path, "rb") as f:
                    stored.append(service.save_upload(f, Path(clip.path).name))
            with common.stopwatch() as wall:
                job_id = service.create_job(stored, service.options(language="zh"))
                service.start_jobs()
                while service.job(job_id).status in ("queued", "running"):
                    time.sleep(0.05)
            job = service.job(job_id)
            texts = [service.get_entry(f.transcription_id or 0).text for f in job.files]
            service.close()
    else:
        model = common.plain_model()
        texts = []
        with common.stopwatch() as wall:
            for clip in clips:
                segments, _ = model.transcribe(clip.path, language="zh", beam_size=common.BEAM_SIZE)
                texts.append(common.plain_text(segments))
    return {
        "variant": variant,
        "what": VARIANTS[variant],
        "files": len(clips),
        "audio_s": audio_seconds,
        "wall_s": wall[0],
        "cpu_s": wall[1],
        "files_per_min": len(clips) / wall[0] * 60,
        "speed_x": audio_seconds / wall[0],
        "cer": pooled_cer(zip([c.text for c in clips], texts, strict=True)),
        "peak_rss_mb": common.peak_rss_mb(),
    }


def main() -> dict[str, Any]:
    common.model_dir()
    print(f"[{NAME}] 15 Mandarin clips as one job vs one by one, each in its own process ...")
    results = []
    for variant in VARIANTS:
        result = common.in_fresh_process(measure, variant)
        print(
            f"  {variant:7} {result['wall_s']:.1f} s  {result['files_per_min']:.1f} files/min  "
            f"CER {result['cer']:.3f}",
            flush=True,
        )
        results.append(result)
    plain = next(r for r in results if r["variant"] == "plain")
    for r in results:
        r["throughput_vs_plain"] = plain["wall_s"] / r["wall_s"]
    common.print_table(
        f"batch: {len(common.clips('zh/'))} files, {plain['audio_s']:.0f} s of audio, Whisper "
        f"base {common.settings().compute_type}, {common.THREADS} threads, beam {common.BEAM_SIZE}",
        ["variant", "wall", "files/min", "throughput/plain", "CER", "peak RSS"],
        [
            [
                r["variant"],
                f"{r['wall_s']:.1f} s",
                f"{r['files_per_min']:.1f}",
                f"{r['throughput_vs_plain']:.2f}",
                f"{r['cer']:.3f}",
                f"{r['peak_rss_mb']:.0f} MB",
            ]
            for r in results
        ],
    )
    output = {"results": results}
    common.save(NAME, output)
    return output
