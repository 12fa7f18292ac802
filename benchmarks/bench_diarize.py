"""`diarize`: speaker diarization error on real recordings and on synthetic conversations.

* **Real**: the three 30 s recordings of ``diar/`` in the shared audio (a phone call and two AMI
  meeting excerpts, human references; hard: far field, short turns, overlap).
* **Synthetic**: the ten seeded Mandarin conversations of :mod:`benchmarks.diarize_synth`
  (2-5 speakers, 2-10 minutes, overlap in five; exact references).

Every file is diarized without a speaker hint and scored with a 0.25 s collar and without one;
the real set once more with the true number of speakers given. The pooled DER of a set weighs
each file by its scored speech; the synthetic set is also pooled in halves, A (odd-numbered
files) and B (even), so that whatever is tuned on one half can be checked on the other. The cost
on one core is measured in a fresh process each (one BLAS and one ONNX Runtime thread) over the
longest synthetic file and over :data:`benchmarks.diarize_synth.HOUR`, an hour-long seeded
conversation (scored too, but outside the bars on accuracy): wall time per second of audio and
the process's peak RSS. The bars are printed as PASS / FAIL lines. Then the held-out draws
(:data:`benchmarks.diarize_synth.DRAWS`: the ten plans with other seeds, never tuned on) are
scored the same way, outside the bars: how much of the result on the ten is the draw's.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import common, diarize_synth
from tingji.types import SpeakerTurn

NAME = "diarize"
COLLAR = 0.25
REAL = common.AUDIO / "diar"
BAR_REAL_POOLED_DER = 0.30
BAR_REAL_COUNT_SLACK = 1
BAR_SYNTH_DER = 0.05
BAR_SYNTH_DER_NO_COLLAR = 0.10
BAR_SYNTH_COUNT_RIGHT = 9
BAR_ONE_CORE_RTF = 0.05
BAR_HOUR_PEAK_RSS_MB = 1024
ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def real_files() -> list[dict[str, Any]]:
    lines = (REAL / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [
        {
            "name": e["name"],
            "audio": str(REAL / e["audio"]),
            "rttm": str(REAL / e["rttm"]),
            "speakers": int(e["speakers"]),
        }
        for e in map(json.loads, lines)
    ]


def synthetic_files(draw: int = 0) -> list[dict[str, Any]]:
    folder = diarize_synth.draw_folder(draw)
    return [
        {
            "name": e["name"],
            "audio": str(folder / e["audio"]),
            "rttm": str(folder / e["rttm"]),
            "speakers": int(e["speakers"]),
            "overlap_fraction_of_turns": e["overlap_fraction_of_turns"],
        }
        for e in diarize_synth.build(folder, draw=draw)
    ]


def turns_of(result: Any) -> list[SpeakerTurn]:
    """The turns of a diarizer's answer: a ``Diarization`` (``.turns``) or a plain list."""
    return list(getattr(result, "turns", result))


def score(diarizer: Any, file: dict[str, Any], exact: bool = False) -> dict[str, Any]:
    """Diarize one file (with its true speaker count when ``exact``) and score it."""
    from tingji.audio import SAMPLE_RATE, load
    from tingji.engine.diarize import SpeakerCount
    from tingji.scoring import diarization_error, read_rttm

    audio = load(file["audio"])
    duration = len(audio) / SAMPLE_RATE
    count = SpeakerCount(exact=file["speakers"]) if exact else SpeakerCount()
    with common.stopwatch() as took:
        turns = turns_of(diarizer(audio, count))
    reference = read_rttm(Path(file["rttm"]).read_text(encoding="utf-8"))
    scored = diarization_error(reference, turns, collar=COLLAR)
    plain = diarization_error(reference, turns, collar=0.0)
    return {
        "name": file["name"],
        "duration_s": duration,
        "speakers_true": file["speakers"],
        "speakers_found": len({t.speaker for t in turns}),
        "speaker_hint": file["speakers"] if exact else None,
        "der": scored.der,
        "miss": scored.miss,
        "false_alarm": scored.false_alarm,
        "confusion": scored.confusion,
        "speech_s": scored.speech,
        "der_no_collar": plain.der,
        "speech_s_no_collar": plain.speech,
        "wall_s": took[0],
        "cpu_s": took[1],
        "rtf": took[0] / duration,
        "turns": len(turns),
    }


def pooled(results: list[dict[str, Any]]) -> dict[str, float]:
    """DER of a set, each file weighted by its scored reference speech."""

    def weighted(key: str, speech: str) -> float:
        total = sum(r[speech] for r in results)
        return sum(r[key] * r[speech] for r in results) / total if total else 0.0

    return {
        "der": weighted("der", "speech_s"),
        "miss": weighted("miss", "speech_s"),
        "false_alarm": weighted("false_alarm", "speech_s"),
        "confusion": weighted("confusion", "speech_s"),
        "der_no_collar": weighted("der_no_collar", "speech_s_no_collar"),
        "speech_s": sum(r["speech_s"] for r in results),
        "audio_s": sum(r["duration_s"] for r in results),
        "wall_s": sum(r["wall_s"] for r in results),
    }


@contextmanager
def one_thread_environment() -> Iterator[None]:
    """``OMP_NUM_THREADS=1`` and friends for the processes spawned meanwhile."""
    saved = {name: os.environ.get(name) for name in ONE_THREAD}
    os.environ.update(dict.fromkeys(ONE_THREAD, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def one_core(path: str, rttm: str | None = None) -> dict[str, Any]:
    """Runs in a fresh process: load the diarizer on one thread, diarize ``path`` once (and
    score it against ``rttm``, when given)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        from tingji.audio import SAMPLE_RATE, load
        from tingji.engine.diarize import load_diarizer

        diarizer = load_diarizer(fetch=False, threads=1)
        audio = load(path)
        loaded = common.rss_mb()
        with common.stopwatch() as took:
            turns = turns_of(diarizer(audio))
    duration = len(audio) / SAMPLE_RATE
    out: dict[str, Any] = {
        "name": Path(path).stem,
        "duration_s": duration,
        "wall_s": took[0],
        "cpu_s": took[1],
        "rtf": took[0] / duration,
        "rtf_cpu": took[1] / duration,
        "speakers_found": len({t.speaker for t in turns}),
        "rss_after_load_mb": loaded,
        "peak_rss_mb": common.peak_rss_mb(),
    }
    if rttm is not None:
        from tingji.scoring import diarization_error, read_rttm

        reference = read_rttm(Path(rttm).read_text(encoding="utf-8"))
        out["speakers_true"] = len({t.speaker for t in reference})
        out["der"] = diarization_error(reference, turns, collar=COLLAR).der
        out["der_no_collar"] = diarization_error(reference, turns, collar=0.0).der
    return out


def halves(synthetic: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Half A: the odd-numbered synthetic files (conv01, conv03, …); half B: the even ones."""
    odd = [r for i, r in enumerate(synthetic) if i % 2 == 0]
    even = [r for i, r in enumerate(synthetic) if i % 2 == 1]
    return {"A": odd, "B": even}


def _row(r: dict[str, Any]) -> list[str]:
    return [
        r["name"],
        f"{r['speakers_found']}/{r['speakers_true']}",
        f"{r['der']:.3f}",
        f"{r['miss']:.3f}",
        f"{r['false_alarm']:.3f}",
        f"{r['confusion']:.3f}",
        f"{r['der_no_collar']:.3f}",
        f"{r['duration_s']:.0f} s",
        f"{r['wall_s']:.1f} s",
        f"{r['rtf']:.3f}",
    ]


def _pooled_row(label: str, p: dict[str, float]) -> list[str]:
    return [
        label,
        "",
        f"{p['der']:.3f}",
        f"{p['miss']:.3f}",
        f"{p['false_alarm']:.3f}",
        f"{p['confusion']:.3f}",
        f"{p['der_no_collar']:.3f}",
        f"{p['audio_s']:.0f} s",
        f"{p['wall_s']:.1f} s",
        f"{p['wall_s'] / p['audio_s']:.3f}",
    ]


HEADERS = [
    "file",
    "found/true",
    "DER",
    "miss",
    "FA",
    "conf",
    "DER no collar",
    "audio",
    "wall",
    "RTF",
]


def bars(
    real: list[dict[str, Any]],
    real_pooled: dict[str, float],
    synthetic: list[dict[str, Any]],
    cost: dict[str, Any],
    hour: dict[str, Any],
) -> list[dict[str, Any]]:
    counts_off = [
        f"{r['name']} {r['speakers_found']}/{r['speakers_true']}"
        for r in real
        if abs(r["speakers_found"] - r["speakers_true"]) > BAR_REAL_COUNT_SLACK
    ]
    over = [
        f"{r['name']} {r['der']:.3f}/{r['der_no_collar']:.3f}"
        for r in synthetic
        if r["der"] > BAR_SYNTH_DER or r["der_no_collar"] > BAR_SYNTH_DER_NO_COLLAR
    ]
    right = sum(r["speakers_found"] == r["speakers_true"] for r in synthetic)
    worst = max(synthetic, key=lambda r: r["der"])
    worst_plain = max(synthetic, key=lambda r: r["der_no_collar"])
    return [
        {
            "bar": f"real pooled DER (collar {COLLAR}) <= {BAR_REAL_POOLED_DER}",
            "value": f"{real_pooled['der']:.3f}",
            "passed": real_pooled["der"] <= BAR_REAL_POOLED_DER,
        },
        {
            "bar": f"real: speakers found within ±{BAR_REAL_COUNT_SLACK} of the truth, each file",
            "value": ", ".join(f"{r['speakers_found']}/{r['speakers_true']}" for r in real)
            + (f" (off: {'; '.join(counts_off)})" if counts_off else ""),
            "passed": not counts_off,
        },
        {
            "bar": f"synthetic: every file DER <= {BAR_SYNTH_DER} (collar {COLLAR}) and <= "
            f"{BAR_SYNTH_DER_NO_COLLAR} without",
            "value": f"worst {worst['der']:.3f} ({worst['name']}) / "
            f"{worst_plain['der_no_collar']:.3f} ({worst_plain['name']})"
            + (f"; over: {'; '.join(over)}" if over else ""),
            "passed": not over,
        },
        {
            "bar": f"synthetic: speaker count right on >= {BAR_SYNTH_COUNT_RIGHT} of "
            f"{len(synthetic)}",
            "value": f"{right} of {len(synthetic)}",
            "passed": right >= BAR_SYNTH_COUNT_RIGHT,
        },
        {
            "bar": f"real-time factor on one core <= {BAR_ONE_CORE_RTF}",
            "value": "; ".join(
                f"{c['rtf']:.4f} ({c['name']}, {c['duration_s'] / 60:.0f} min)"
                for c in (cost, hour)
            ),
            "passed": max(cost["rtf"], hour["rtf"]) <= BAR_ONE_CORE_RTF,
        },
        {
            "bar": "one hour peak RSS < 1 GB",
            "value": f"{hour['peak_rss_mb']:.0f} MB ({hour['name']}, "
            f"{hour['duration_s'] / 60:.0f} min; {cost['peak_rss_mb']:.0f} MB for "
            f"{cost['duration_s'] / 60:.0f} min)",
            "passed": hour["peak_rss_mb"] < BAR_HOUR_PEAK_RSS_MB,
        },
    ]


def main() -> dict[str, Any]:
    from tingji.engine.diarize import load_diarizer

    if not (REAL / "manifest.jsonl").is_file():
        print(f"[{NAME}] skipped: no diarization recordings at {REAL} (needs manifest.jsonl)")
        return {}
    started = datetime.datetime.now().astimezone()
    print(
        f"[{NAME}] CPU {cpu_model()} ({os.cpu_count()} cores), {started:%Y-%m-%d %H:%M %Z}",
        flush=True,
    )
    print(f"  building / checking the synthetic conversations in {diarize_synth.FOLDER} ...")
    real, synth = real_files(), synthetic_files()
    hour_file = diarize_synth.build_hour()
    diarizer = load_diarizer(fetch=False)
    results: dict[str, list[dict[str, Any]]] = {"real": [], "synthetic": [], "real_exact": []}
    for group, files, exact in (
        ("real", real, False),
        ("synthetic", synth, False),
        ("real_exact", real, True),
    ):
        for file in files:
            r = score(diarizer, file, exact=exact)
            results[group].append(r)
            print(
                f"  {group:10} {r['name']:18} DER {r['der']:.3f}  no collar "
                f"{r['der_no_collar']:.3f}  speakers {r['speakers_found']}/{r['speakers_true']}  "
                f"RTF {r['rtf']:.3f}",
                flush=True,
            )
    longest = max(synth, key=lambda f: Path(f["audio"]).stat().st_size)
    print(f"  one core: {longest['name']} in a fresh process, one thread ...", flush=True)
    hour_audio = str(diarize_synth.FOLDER / hour_file["audio"])
    hour_rttm = str(diarize_synth.FOLDER / hour_file["rttm"])
    with one_thread_environment():
        cost = common.in_fresh_process(one_core, longest["audio"])
        print(f"  one core: {hour_file['name']} (60 min) in a fresh process ...", flush=True)
        hour = common.in_fresh_process(one_core, hour_audio, hour_rttm)
    summary = {group: pooled(rs) for group, rs in results.items()}
    split = halves(results["synthetic"])
    for half, rs in split.items():
        summary[f"synthetic_{half}"] = pooled(rs)

    common.print_table(
        f"diarize, real recordings ({len(real)}, human references), no speaker hint; "
        f"DER/miss/FA/conf with a {COLLAR} s collar",
        HEADERS,
        [_row(r) for r in results["real"]] + [_pooled_row("pooled", summary["real"])],
    )
    common.print_table(
        f"diarize, synthetic Mandarin conversations ({len(synth)}), no speaker hint",
        [*HEADERS, "overlapping turns"],
        [
            [*_row(r), f"{f['overlap_fraction_of_turns']:.0%}"]
            for r, f in zip(results["synthetic"], synth, strict=True)
        ]
        + [[*_pooled_row("pooled", summary["synthetic"]), ""]]
        + [
            [
                *_pooled_row(f"half {half}", summary[f"synthetic_{half}"])[:1],
                f"{sum(r['speakers_found'] == r['speakers_true'] for r in rs)}/{len(rs)} right",
                *_pooled_row(f"half {half}", summary[f"synthetic_{half}"])[2:],
                "",
            ]
            for half, rs in split.items()
        ],
    )
    common.print_table(
        "diarize, real recordings with the true speaker count given (SpeakerCount(exact=n))",
        HEADERS,
        [_row(r) for r in results["real_exact"]] + [_pooled_row("pooled", summary["real_exact"])],
    )
    common.print_table(
        "diarize on one core (fresh process, 1 BLAS + 1 ONNX Runtime thread)",
        [
            "file",
            "audio",
            "wall",
            "CPU",
            "RTF",
            "RTF (CPU time)",
            "RSS after load",
            "peak RSS",
            "found/true",
            "DER",
            "DER no collar",
        ],
        [
            [
                c["name"],
                f"{c['duration_s']:.0f} s",
                f"{c['wall_s']:.1f} s",
                f"{c['cpu_s']:.1f} s",
                f"{c['rtf']:.4f}",
                f"{c['rtf_cpu']:.4f}",
                f"{c['rss_after_load_mb']:.0f} MB",
                f"{c['peak_rss_mb']:.0f} MB",
                f"{c['speakers_found']}/{c['speakers_true']}" if "der" in c else "",
                f"{c['der']:.3f}" if "der" in c else "",
                f"{c['der_no_collar']:.3f}" if "der" in c else "",
            ]
            for c in (cost, hour)
        ],
    )
    checks = bars(results["real"], summary["real"], results["synthetic"], cost, hour)
    print()
    for check in checks:
        print(f"{'PASS' if check['passed'] else 'FAIL'}  {check['bar']}: {check['value']}")
    output = {
        "cpu_model": cpu_model(),
        "started": started.isoformat(timespec="seconds"),
        "collar": COLLAR,
        "synthetic_version": diarize_synth.VERSION,
        "results": results,
        "pooled": summary,
        "one_core": cost,
        "one_core_hour": hour,
        "bars": checks,
    }
    output["held_out_draws"] = held_out(diarizer)
    common.save(NAME, output)
    return output


def held_out(diarizer: Any) -> dict[str, Any]:
    """The held-out draws, each scored like the ten and summed up in one table."""
    out: dict[str, Any] = {}
    rows = []
    for draw in diarize_synth.DRAWS:
        files = synthetic_files(draw)
        results = [score(diarizer, f) for f in files]
        total = pooled(results)
        within = [
            r["der"] <= BAR_SYNTH_DER and r["der_no_collar"] <= BAR_SYNTH_DER_NO_COLLAR
            for r in results
        ]
        counts = [r["speakers_found"] == r["speakers_true"] for r in results]
        worst = max(results, key=lambda r: (r["der"], r["der_no_collar"]))
        out[str(draw)] = {"results": results, "pooled": total}
        rows.append(
            [
                f"seeds +{draw}",
                f"{sum(counts)}/{len(counts)}",
                f"{sum(within)}/{len(within)}",
                f"{total['der']:.3f}",
                f"{total['der_no_collar']:.3f}",
                f"{worst['name']} {worst['der']:.3f} / {worst['der_no_collar']:.3f} "
                f"({worst['speakers_found']}/{worst['speakers_true']})",
                ", ".join(
                    f"{r['name']} {r['speakers_found']}/{r['speakers_true']}"
                    for r, right in zip(results, counts, strict=True)
                    if not right
                )
                or "-",
            ]
        )
    common.print_table(
        "diarize, held-out draws of the ten synthetic plans (other seeds; outside the bars)",
        [
            "draw",
            "counts right",
            "files within",
            "DER",
            "DER no collar",
            "worst file",
            "counts wrong",
        ],
        rows,
    )
    return out
