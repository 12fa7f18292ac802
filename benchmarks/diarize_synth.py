"""Seeded synthetic Mandarin conversations for the `diarize` benchmark, with exact references.

Every speaker is one source: the single-speaker Mandarin clips of the shared audio (two AISHELL
clips of speaker S0764 are one speaker; the two MOSS-TTSD dialogues and the 1.3 s CCTV clip,
which may be another person than the longer one, are left out). Each speaker's audio is cut
into utterances at pauses: 30 ms frames, a frame is
speech when its energy is above a threshold set between the clip's noise floor and its peak,
silence runs of at least 0.3 s split, pieces of at least 0.6 s are kept, trimmed to their
speech frames so that the reference turn is the speech itself. In a noisy clip (the meeting
recording: its noise is within 12 dB of its voice) noise passes that threshold too, so each piece
is also trimmed at both edges to the 32 ms windows Silero VAD hears as speech (the audio with
it: what is left out is not in the mix either).

A conversation (``random.Random(seed)``, one per file) picks its speakers, then draws turns: a
speaker (mostly not the previous one), one of its utterances (with replacement) at a random
gain of ±6 dB (every utterance first brought to the same loudness), and a gap of 0.2-1.0 s. In
the files with overlap, a share of the turns starts 0.5-1.5 s before the previous turn ends;
overlapping audio is added and clipped to [-1, 1]. Never more than two people talk at once.

``build(folder)`` writes ``<name>.wav`` (16 kHz mono PCM16), ``<name>.rttm`` and
``manifest.jsonl``, byte for byte the same on every run; it rebuilds only when a file is
missing or :data:`VERSION` changed. ``build_hour(folder)`` does the same for :data:`HOUR`, one
60-minute conversation (5 speakers, overlap) for measuring the cost of long recordings; it is not
one of the ten. ``python -m benchmarks.diarize_synth [--force]`` builds the ten (``--force``:
even when current) and prints a summary.
"""

from __future__ import annotations

import json
import random
import sys
import wave
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common

VERSION = 3
"""Bump when anything that changes the files changes: they are rebuilt then."""
FOLDER = common.OUTPUT / "diarize" / "synthetic"
RATE = 16000
FRAME = 480
"""30 ms."""
SPLIT_FRAMES = 10
"""A silence run of this many frames (0.3 s) ends an utterance."""
MIN_UTTERANCE = 0.6
FLAT_RANGE_DB = 12.0
"""A clip whose loudest and quietest frames differ by less than this has no pause: it is one
utterance, kept whole."""
LEVEL_DBFS = -26.0
"""Every utterance is brought to this RMS level before its random gain."""
GAIN_DB = 6.0
GAP = (0.2, 1.0)
OVERLAP = (0.5, 1.5)
OVERLAP_SHARE = (0.12, 0.28)
"""The share of turns that overlap, drawn per file with overlap: a turn starts early whenever
fewer than that share of the turns so far did and the previous turn is long enough for it."""
SAME_SPEAKER = 0.1
"""Chance that a turn continues the previous speaker after a pause."""
VOICED = 0.5
"""Silero's speech probability at which an utterance's edge counts as speech."""
VAD_WINDOW = 512
"""Silero's window, in samples (32 ms)."""
FADE = 160
"""10 ms fade in and out at each utterance's edges, against clicks."""

SPEAKERS: dict[str, tuple[str, ...]] = {
    "cosyvoice": ("zh/cosyvoice/zero_shot_prompt.wav",),
    "aishell_S0764": (
        "zh/fireredasr/BAC009S0764W0121.wav",
        "zh/s3tokenizer/BAC009S0764W0122.wav",
    ),
    "aishell_S0724": ("zh/wenet/aishell-BAC009S0724W0121.wav",),
    "IT0011": ("zh/fireredasr/IT0011W0001.wav",),
    "meeting": ("zh/fireredasr/TEST_MEETING_T0000000001_S00000.wav",),
    "net": ("zh/fireredasr/TEST_NET_Y0000000000_-KTKHdZ2fb8_S00000.wav",),
    "funasr": ("zh/funasr/asr_example_zh.wav",),
    "sichuan": ("zh/higgs/zh_man_sichuan.wav",),
    "moon1": ("zh/mossttsd/zh_spk1_moon.wav",),
    "moon2": ("zh/mossttsd/zh_spk2_moon.wav",),
    # CCTV_1 (1.3 s) is left out: nothing says it is the same person as CCTV_104
    "cctv": ("zh/speechio/e5oipIfM49I__20190201_CCTV_104.wav",),
}
"""Speaker name (the RTTM label) → its clips, relative to the shared audio folder."""


@dataclass(frozen=True)
class Plan:
    name: str
    speakers: int
    minutes: float
    overlap: bool
    seed: int


PLANS = tuple(
    Plan(f"conv{i:02d}_{n}spk", n, minutes, overlap, 7000 + i)
    for i, (n, minutes, overlap) in enumerate(
        [
            (2, 2, False),
            (3, 2, True),
            (4, 3, False),
            (5, 3, True),
            (2, 4, True),
            (3, 4, False),
            (4, 5, True),
            (4, 5, False),
            (3, 7, False),
            (5, 10, True),
        ],
        start=1,
    )
)
"""45 minutes in all: 2-5 speakers, 2-10 minutes, overlap in five files."""
DRAWS = (2000, 4000)
"""Held-out draws: the same ten plans with their seeds moved by these (other speakers, turns
and overlaps), scored beside the ten but never tuned on and outside the bars: whether a result
on the ten is the pipeline's or the draw's."""
HOUR = Plan("hour_5spk", 5, 60, True, 7100)
"""An hour of conversation, for the cost of diarizing long recordings (memory, time)."""


@dataclass(frozen=True)
class Turn:
    start: int
    """In samples."""
    audio: np.ndarray
    speaker: str
    overlapped: bool
    """It starts before the previous turn ends."""

    @property
    def end(self) -> int:
        return self.start + len(self.audio)


def frame_db(audio: np.ndarray) -> np.ndarray:
    frames = len(audio) // FRAME
    power = (audio[: frames * FRAME].reshape(frames, FRAME).astype(np.float64) ** 2).mean(axis=1)
    return 10 * np.log10(power + 1e-10)


def utterances(audio: np.ndarray) -> list[np.ndarray]:
    """``audio`` cut at its pauses into pieces that start and end with speech."""
    db = frame_db(audio)
    if len(db) == 0:
        return []
    floor, peak = np.percentile(db, [10, 99])
    if peak - floor < FLAT_RANGE_DB:
        return [audio]
    speech = np.flatnonzero(db > max(floor + 0.3 * (peak - floor), peak - 40))
    runs = []
    first = last = int(speech[0])
    for frame in speech[1:]:
        if frame - last - 1 >= SPLIT_FRAMES:
            runs.append((first, last + 1))
            first = int(frame)
        last = int(frame)
    runs.append((first, last + 1))
    voiced = _voiced(audio)
    pieces = [audio[a:b] for a, b in (_trimmed(a * FRAME, b * FRAME, voiced) for a, b in runs)]
    kept = [p for p in pieces if len(p) >= MIN_UTTERANCE * RATE]
    # a clip without a piece long enough gives its longest one
    return kept or [max(pieces, key=len)]


def _voiced(audio: np.ndarray) -> np.ndarray:
    """Silero VAD's speech/no-speech per 32 ms window of a whole source clip."""
    from tingji.engine.vad import SileroProbabilities

    score = SileroProbabilities()
    probabilities = np.concatenate([score(audio), score(np.zeros(0, np.float32), final=True)])
    return np.asarray(probabilities >= VOICED)


def _trimmed(start: int, end: int, voiced: np.ndarray) -> tuple[int, int]:
    """``start``–``end`` (samples) without the windows at either edge that Silero does not
    hear as speech: in a noisy clip, noise as loud as the voice passes the energy threshold."""
    first, last = start // VAD_WINDOW, (end - 1) // VAD_WINDOW
    while first <= last and first < len(voiced) and not voiced[first]:
        first += 1
    while last >= first and last < len(voiced) and not voiced[last]:
        last -= 1
    if first > last:
        return start, start
    return max(start, first * VAD_WINDOW), min(end, (last + 1) * VAD_WINDOW)


def _levelled(piece: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt((piece.astype(np.float64) ** 2).mean()))
    out = (piece * np.float32(10 ** (LEVEL_DBFS / 20) / max(rms, 1e-6))).astype(np.float32)
    ramp = np.linspace(0.0, 1.0, min(FADE, len(out) // 2), dtype=np.float32)
    if len(ramp):
        out[: len(ramp)] *= ramp
        out[-len(ramp) :] *= ramp[::-1]
    return out


@cache
def speaker_utterances() -> dict[str, tuple[np.ndarray, ...]]:
    """Every speaker's utterances, levelled, in a fixed order."""
    from tingji.audio import load

    pool = {}
    for speaker, paths in SPEAKERS.items():
        pieces = []
        for path in paths:
            pieces += [_levelled(p) for p in utterances(load(str(common.AUDIO / path)))]
        pool[speaker] = tuple(pieces)
    return pool


def conversation(plan: Plan) -> tuple[np.ndarray, list[Turn]]:
    """The mixed audio (float32, ``plan.minutes`` long) and its turns."""
    pool = speaker_utterances()
    rng = random.Random(plan.seed)
    names = rng.sample(sorted(pool), plan.speakers)
    introductions = rng.sample(names, len(names))  # everyone talks once before anyone repeats
    share = rng.uniform(*OVERLAP_SHARE) if plan.overlap else 0.0
    total = int(round(plan.minutes * 60 * RATE))
    turns: list[Turn] = []
    cursor = int(round(rng.uniform(0.3, 1.0) * RATE))
    running = 0  # the latest end of the turns before the previous one
    while True:
        previous = turns[-1] if turns else None
        if len(turns) < len(introductions):
            speaker = introductions[len(turns)]
        elif previous is not None and rng.random() < SAME_SPEAKER:
            speaker = previous.speaker
        else:
            speaker = rng.choice([n for n in names if previous is None or n != previous.speaker])
        start, overlapped = cursor + int(round(rng.uniform(*GAP) * RATE)), False
        choices: Sequence[np.ndarray] = pool[speaker]
        behind = sum(t.overlapped for t in turns) < share * (len(turns) + 1)
        if previous is not None and speaker != previous.speaker and behind:
            # at most two voices at once, the previous turn started at least 0.5 s before, and
            # the new one goes on at least 0.5 s after the previous one ends
            busy = max(previous.start + RATE // 2, running + RATE // 5)
            longest = max(len(u) for u in pool[speaker]) - RATE // 2
            most = min(int(OVERLAP[1] * RATE), previous.end - busy, longest)
            if most >= OVERLAP[0] * RATE:
                early = rng.randint(int(OVERLAP[0] * RATE), most)
                start, overlapped = previous.end - early, True
                choices = [u for u in pool[speaker] if len(u) >= early + RATE // 2]
        audio = choices[rng.randrange(len(choices))]
        gain = np.float32(10 ** (rng.uniform(-GAIN_DB, GAIN_DB) / 20))
        if start + len(audio) > total - int(0.3 * RATE):
            break
        if previous is not None:
            running = max(running, previous.end)
        turns.append(Turn(start, audio * gain, speaker, overlapped))
        cursor = max(cursor, start + len(audio))
    mix = np.zeros(total, dtype=np.float32)
    for turn in turns:
        mix[turn.start : turn.end] += turn.audio
    return np.clip(mix, -1.0, 1.0), turns


def write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        block = 60 * RATE  # a minute at a time: an hour's copies would take a GB
        for start in range(0, len(audio), block):
            piece = audio[start : start + block]
            out.writeframes(np.round(np.clip(piece, -1.0, 1.0) * 32767).astype("<i2").tobytes())


def rttm(uri: str, turns: list[Turn]) -> str:
    return "".join(
        f"SPEAKER {uri} 1 {t.start / RATE:.3f} {len(t.audio) / RATE:.3f} <NA> <NA> "
        f"{t.speaker} <NA> <NA>\n"
        for t in turns
    )


def _overlap_seconds(turns: list[Turn], total: int) -> float:
    voices = np.zeros(total, dtype=np.int8)
    for t in turns:
        voices[t.start : t.end] += 1
    return float((voices > 1).sum() / RATE)


def plans(draw: int = 0) -> tuple[Plan, ...]:
    """The ten plans, their seeds moved by ``draw`` (0: the benchmark's own ten)."""
    return tuple(replace(p, seed=p.seed + draw) for p in PLANS)


def draw_folder(draw: int) -> Path:
    return FOLDER if draw == 0 else FOLDER.parent / f"synthetic_draw{draw}"


def _current(folder: Path, draw: int = 0) -> list[dict[str, Any]] | None:
    manifest = folder / "manifest.jsonl"
    if not manifest.is_file():
        return None
    entries = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    names = [(e.get("name"), e.get("seed")) for e in entries]
    if names != [(p.name, p.seed) for p in plans(draw)] or any(
        e.get("version") != VERSION for e in entries
    ):
        return None
    for e in entries:
        if not (folder / e["audio"]).is_file() or not (folder / e["rttm"]).is_file():
            return None
    return entries


def _write(folder: Path, plan: Plan) -> dict[str, Any]:
    """Build one conversation into ``folder``: its audio, its RTTM, its manifest entry."""
    audio, turns = conversation(plan)
    write_wav(folder / f"{plan.name}.wav", audio)
    (folder / f"{plan.name}.rttm").write_text(rttm(plan.name, turns), encoding="utf-8")
    return {
        "name": plan.name,
        "audio": f"{plan.name}.wav",
        "rttm": f"{plan.name}.rttm",
        "speakers": len({t.speaker for t in turns}),
        "speaker_names": sorted({t.speaker for t in turns}),
        "duration_s": len(audio) / RATE,
        "turns": len(turns),
        "speech_s": round(sum(len(t.audio) for t in turns) / RATE, 3),
        "overlap_s": round(_overlap_seconds(turns, len(audio)), 3),
        "overlap_fraction_of_turns": round(sum(t.overlapped for t in turns) / len(turns), 4),
        "seed": plan.seed,
        "version": VERSION,
    }


def build(
    folder: Path | None = None, *, force: bool = False, draw: int = 0
) -> list[dict[str, Any]]:
    """The conversations' manifest entries, writing the files first unless they are current;
    ``draw``: one of the held-out draws (:data:`DRAWS`), in its own folder by default."""
    folder = draw_folder(draw) if folder is None else folder
    if not force and (entries := _current(folder, draw)) is not None:
        return entries
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.jsonl").unlink(missing_ok=True)
    entries = [_write(folder, plan) for plan in plans(draw)]
    # the manifest last: a build cut short leaves none, so the next run builds again
    (folder / "manifest.jsonl").write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), encoding="utf-8"
    )
    return entries


def build_hour(folder: Path = FOLDER, *, force: bool = False) -> dict[str, Any]:
    """:data:`HOUR`'s manifest entry (``<name>.json``), writing its files first unless current."""
    manifest = folder / f"{HOUR.name}.json"
    if not force and manifest.is_file():
        entry: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
        if (
            entry.get("version") == VERSION
            and (folder / entry["audio"]).is_file()
            and (folder / entry["rttm"]).is_file()
        ):
            return entry
    folder.mkdir(parents=True, exist_ok=True)
    manifest.unlink(missing_ok=True)
    entry = _write(folder, HOUR)
    manifest.write_text(json.dumps(entry, ensure_ascii=False) + "\n", encoding="utf-8")
    return entry


def main(argv: list[str]) -> None:
    entries = build(force="--force" in argv)
    pool = speaker_utterances()
    common.print_table(
        f"speakers: {len(pool)} sources, cut into utterances at pauses",
        ["speaker", "utterances", "shortest", "longest", "total"],
        [
            [
                name,
                str(len(pieces)),
                f"{min(len(p) for p in pieces) / RATE:.2f} s",
                f"{max(len(p) for p in pieces) / RATE:.2f} s",
                f"{sum(len(p) for p in pieces) / RATE:.1f} s",
            ]
            for name, pieces in pool.items()
        ],
    )
    common.print_table(
        f"synthetic conversations in {FOLDER.relative_to(common.REPO)} (version {VERSION})",
        ["file", "speakers", "duration", "turns", "speech", "overlap", "overlapping turns", "seed"],
        [
            [
                e["name"],
                str(e["speakers"]),
                f"{e['duration_s'] / 60:.1f} min",
                str(e["turns"]),
                f"{e['speech_s']:.0f} s",
                f"{e['overlap_s']:.1f} s",
                f"{e['overlap_fraction_of_turns']:.0%}",
                str(e["seed"]),
            ]
            for e in entries
        ],
    )
    minutes = sum(e["duration_s"] for e in entries) / 60
    print(f"\n{len(entries)} files, {minutes:.0f} minutes of audio")


if __name__ == "__main__":
    main(sys.argv[1:])
