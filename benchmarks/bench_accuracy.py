"""`accuracy`: tingji against plain faster-whisper, on each CPU kernel family CTranslate2 has here.

For every family (``CT2_FORCE_CPU_ISA=AVX2``, and ``AVX512`` where the CPU lists avx512f), each
variant runs in a fresh process: the 15 Mandarin clips one by one (pooled CER), the 9 English
clips (pooled WER), and the 136 s long file (CER), with the language given and beam 5.

- ``tingji``: the default pipeline through the service;
- ``tingji full``: ``TINGJI_DECODE_WINDOW=full`` (every utterance padded to 30 s);
- ``plain``: ``WhisperModel.transcribe(path, language=..., beam_size=5)``;
- ``batched``: faster-whisper's ``BatchedInferencePipeline`` (batch 8), on the long file only:
  the speed tingji's long-file path is measured against, per family.

Speed is audio seconds per wall second over the same work (the clips decode one at a time on
both sides here; batch jobs and the long file's batching are measured by `batch` and `long`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import common
from tingji.scoring import pooled_cer

NAME = "accuracy"
VARIANTS = ("tingji", "tingji full", "plain", "batched")
LONG = "long/zh_dev_concat.wav"


def families() -> list[str]:
    """The kernel families to force: AVX2 always (on x86), AVX512 where the CPU has it."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    return ["AVX2", "AVX512"] if " avx512f" in flags else ["AVX2"]


def long_clip() -> common.Clip:
    return next(c for c in common.manifest() if c.name == LONG)


def measure(variant: str, family: str) -> dict[str, Any]:
    os.environ["CT2_FORCE_CPU_ISA"] = family
    zh, en, long = common.clips("zh/"), common.clips("en/"), long_clip()
    if variant == "batched":
        from faster_whisper import BatchedInferencePipeline

        pipeline = BatchedInferencePipeline(common.plain_model())
        zh, en = [], []

        def run(clip: common.Clip) -> str:
            segments, _ = pipeline.transcribe(
                clip.path, language=clip.lang, beam_size=common.BEAM_SIZE, batch_size=8
            )
            return common.plain_text(segments)
    elif variant == "plain":
        model = common.plain_model()

        def run(clip: common.Clip) -> str:
            segments, _ = model.transcribe(
                clip.path, language=clip.lang, beam_size=common.BEAM_SIZE
            )
            return common.plain_text(segments)
    else:
        from tingji.service import Tingji

        tmp = tempfile.mkdtemp()
        window = "full" if variant == "tingji full" else "fit"
        service = Tingji(
            common.settings(
                data_dir=Path(tmp), models_dir=common.settings().model_cache, decode_window=window
            )
        )
        service.backend()

        def run(clip: common.Clip) -> str:
            return service.transcribe(clip.path, service.options(language=clip.lang)).text

    results: dict[str, Any] = {"family": family, "variant": variant}
    for label, clips in (("zh", zh), ("en", en), ("long", [long])):
        texts = []
        with common.stopwatch() as took:
            for clip in clips:
                texts.append(run(clip))
        audio = sum(c.duration for c in clips)
        if not clips:
            results[label] = None
            continue
        if label == "en":
            edits = words = 0
            for clip, text in zip(clips, texts, strict=True):
                e, n = common.word_errors(clip.text, text)
                edits, words = edits + e, words + n
            error = edits / max(1, words)
        else:
            error = pooled_cer((c.text, t) for c, t in zip(clips, texts, strict=True))
        results[label] = {
            "error": error,
            "speed": audio / took[0],
            "texts": {c.name: t for c, t in zip(clips, texts, strict=True)},
        }
    return results


def main() -> dict[str, Any]:
    runs = []
    for family in families():
        for variant in VARIANTS:
            runs.append(common.in_fresh_process(measure, variant, family))
    rows = []
    for run in runs:
        plain = next(r for r in runs if r["family"] == run["family"] and r["variant"] == "plain")
        cells = [run["family"], run["variant"]]
        for label in ("zh", "en", "long"):
            if run[label] is None:
                cells += ["–", "–"]
                continue
            error, base = run[label]["error"], plain[label]["error"]
            ratio = f" ({error / base:.2f}×)" if run is not plain and base else ""
            cells += [f"{error:.3f}{ratio}", f"{run[label]['speed']:.1f}×"]
        rows.append(cells)
    common.print_table(
        "accuracy: tingji vs plain faster-whisper per CPU kernel family "
        "(zh: 15 clips pooled CER; en: 9 clips pooled WER; long: 136 s CER; error, speed)",
        ["family", "variant", "zh CER", "zh speed", "en WER", "en speed", "long CER", "long speed"],
        rows,
    )
    for family in families():
        mine = next(r for r in runs if r["family"] == family and r["variant"] == "tingji")
        batched = next(r for r in runs if r["family"] == family and r["variant"] == "batched")
        print(
            f"{family}: long file {mine['long']['speed']:.1f}× real time, "
            f"{mine['long']['speed'] / batched['long']['speed']:.2f}× the batched pipeline "
            f"({batched['long']['speed']:.1f}×, CER {batched['long']['error']:.3f})"
        )
    demo = "zh/funasr/asr_example_zh.wav"
    print("\nthe demo clip:")
    for run in runs:
        if run["zh"] is not None:
            print(f"  {run['family']:7s} {run['variant']:12s} {run['zh']['texts'][demo]}")
    results = {"runs": runs}
    common.save(NAME, results)
    return results
