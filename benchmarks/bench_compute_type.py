"""`compute`: int8 against float32 for the embedded model on the CPU, through tingji's pipeline.

The evidence for ``CPU_COMPUTE_TYPE`` in ``tingji.engine.whisper``. Mandarin is scored by pooled
CER (:func:`tingji.scoring.pooled_cer`); English by pooled WER over lower-cased words with
punctuation dropped (:func:`benchmarks.common.word_errors`). Both models are loaded in one
process and every clip is run on both, one right after the other.
"""

from __future__ import annotations

from typing import Any

from benchmarks import common
from tingji.scoring import cer, pooled_cer
from tingji.service import Tingji

NAME = "compute"
COMPUTE_TYPES = ("int8", "float32")
LONG = "long/zh_dev_concat.wav"


def measure(sets: dict[str, list[common.Clip]]) -> list[dict[str, Any]]:
    """Both models loaded; each clip runs on one then the other (order alternating), so a
    spell of load from other processes slows both alike."""
    services = {ct: Tingji(common.settings(compute_type=ct)) for ct in COMPUTE_TYPES}
    for service in services.values():
        service.backend()
    texts: dict[str, dict[str, str]] = {ct: {} for ct in COMPUTE_TYPES}
    walls = dict.fromkeys(((ct, name) for ct in COMPUTE_TYPES for name in sets), 0.0)
    cpu = dict.fromkeys(COMPUTE_TYPES, 0.0)
    n = 0
    for name, clips in sets.items():
        for clip in clips:
            n += 1
            for ct in COMPUTE_TYPES[:: 1 if n % 2 else -1]:
                service = services[ct]
                with common.stopwatch() as wall:
                    options = service.options(language=clip.lang)
                    texts[ct][clip.name] = service.transcribe(clip.path, options).text
                walls[ct, name] += wall[0]
                cpu[ct] += wall[1]
    return [summarise(ct, sets, texts[ct], walls) | {"cpu_s": cpu[ct]} for ct in COMPUTE_TYPES]


def summarise(
    compute_type: str,
    sets: dict[str, list[common.Clip]],
    texts: dict[str, str],
    walls: dict[tuple[str, str], float],
) -> dict[str, Any]:
    result: dict[str, Any] = {"compute_type": compute_type}
    for name, clips in sets.items():
        pairs = [(c.text, texts[c.name]) for c in clips]
        result[f"{name}_wall_s"] = walls[compute_type, name]
        result[f"{name}_speed_x"] = sum(c.duration for c in clips) / walls[compute_type, name]
        if name == "en":
            counts = [common.word_errors(ref, hyp) for ref, hyp in pairs]
            result["en_wer"] = sum(e for e, _ in counts) / sum(n for _, n in counts)
        else:
            result[f"{name}_cer"] = pooled_cer(pairs) if name == "zh" else cer(*pairs[0])
    audio = sum(c.duration for clips in sets.values() for c in clips)
    result["speed_x"] = audio / sum(result[f"{name}_wall_s"] for name in sets)
    result["outputs"] = texts
    return result


def main() -> dict[str, Any]:
    common.model_dir()
    sets = {
        "zh": common.clips("zh/"),
        "en": common.clips("en/"),
        "long": [c for c in common.manifest() if c.name == LONG],
    }
    print(
        f"[{NAME}] {' vs '.join(COMPUTE_TYPES)}: {len(sets['zh'])} zh clips, "
        f"{len(sets['en'])} en clips, {LONG}; clip by clip, alternating",
        flush=True,
    )
    results = measure(sets)
    int8, f32 = results
    columns = [
        ("zh CER (pooled)", "zh_cer", "{:.3f}"),
        ("en WER (pooled)", "en_wer", "{:.3f}"),
        ("long CER", "long_cer", "{:.3f}"),
        ("zh speed", "zh_speed_x", "{:.2f}x"),
        ("en speed", "en_speed_x", "{:.2f}x"),
        ("long speed", "long_speed_x", "{:.2f}x"),
        ("all speed", "speed_x", "{:.2f}x"),
        ("all CPU s", "cpu_s", "{:.0f}"),
    ]
    common.print_table(
        f"compute: tingji pipeline, Whisper base on CPU, {common.THREADS} threads, "
        f"beam {common.BEAM_SIZE}",
        ["metric", "int8", "float32", "float32 / int8"],
        [
            [label, fmt.format(int8[key]), fmt.format(f32[key]), f"{f32[key] / int8[key]:.2f}"]
            for label, key, fmt in columns
        ],
    )
    errors = ("zh_cer", "en_wer", "long_cer")
    better = [key for key in errors if f32[key] < int8[key]]
    speeds = sorted(results, key=lambda r: r["speed_x"])
    verdict = (
        f"{speeds[1]['compute_type']} is {speeds[1]['speed_x'] / speeds[0]['speed_x']:.2f}x as "
        f"fast; float32 has the lower error on {len(better)} of {len(errors)} measures "
        f"({', '.join(better) or 'none'})"
    )
    print(f"\nmeasurement: {verdict}")
    output = {"verdict": verdict, "results": results}
    common.save(NAME, output)
    return output
