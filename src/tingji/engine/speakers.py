"""Speaker turns meet the recognition: who holds the floor when, where to cut speech so that no
segment spans a change of speaker, and whose a segment is.

Pure functions over :class:`~tingji.types.SpeakerTurn` lists, so the pipeline stays free of the
diarizer's internals.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np

from tingji.engine import text as textproc
from tingji.engine.backend import Word
from tingji.types import SpeakerTurn

__all__ = ["Word", "changes", "floor", "speaker_of", "split_at_changes"]

STEP = 0.01
MIN_FLOOR_SECONDS = 0.5
"""A stretch in which another speaker holds the floor for less than this (a backchannel, an
"嗯") does not cut the main speaker's speech."""
CUT_REACH_SECONDS = 1.0
"""A cut at a change of speaker goes to the widest pause within this distance of it."""
MIN_CUT_PAUSE = 0.2


def floor(turns: Sequence[SpeakerTurn], duration: float) -> list[SpeakerTurn]:
    """Who holds the floor, without overlaps: where several talk, the one who was talking
    already keeps it until the end of that turn; holds shorter than :data:`MIN_FLOOR_SECONDS`
    go to their neighbours."""
    frames = int(np.ceil(duration / STEP)) + 1
    owner = np.full(frames, -1)
    names = sorted({t.speaker for t in turns})
    for turn in sorted(turns, key=lambda t: (t.start, t.speaker)):
        a, b = int(round(turn.start / STEP)), min(frames, int(round(turn.end / STEP)))
        free = owner[a:b] < 0
        owner[a:b][free] = names.index(turn.speaker)
    runs = _runs(owner)
    changed = True
    while changed:  # absorb short holds into the longer neighbour
        changed = False
        for i, (label, a, b) in enumerate(runs):
            if label < 0 or (b - a) * STEP >= MIN_FLOOR_SECONDS:
                continue
            left = runs[i - 1] if i > 0 and runs[i - 1][0] >= 0 else None
            right = runs[i + 1] if i + 1 < len(runs) and runs[i + 1][0] >= 0 else None
            target = max((n for n in (left, right) if n), key=lambda r: r[2] - r[1], default=None)
            if target is None:
                continue
            owner[a:b] = target[0]
            runs = _runs(owner)
            changed = True
            break
    return [
        SpeakerTurn(round(a * STEP, 3), round(b * STEP, 3), names[label])
        for label, a, b in runs
        if label >= 0
    ]


def _runs(owner: np.ndarray) -> list[tuple[int, int, int]]:
    runs: list[tuple[int, int, int]] = []
    start = 0
    for i in range(1, len(owner) + 1):
        if i == len(owner) or owner[i] != owner[start]:
            runs.append((int(owner[start]), start, i))
            start = i
    return runs


def changes(holds: Sequence[SpeakerTurn]) -> list[float]:
    """Times at which the floor passes from one speaker to another (silence between holds of
    the same speaker is no change)."""
    points = []
    for before, after in zip(holds, holds[1:], strict=False):
        if before.speaker != after.speaker:
            points.append(
                (before.end + after.start) / 2 if after.start > before.end else after.start
            )
    return points


def speaker_of(holds: Sequence[SpeakerTurn], start: float, end: float) -> str | None:
    """The speaker holding the floor longest within [start, end]; the nearest one when
    nobody does."""
    if not holds:
        return None
    share: dict[str, float] = {}
    for hold in holds:
        overlap = min(end, hold.end) - max(start, hold.start)
        if overlap > 0:
            share[hold.speaker] = share.get(hold.speaker, 0.0) + overlap
    if share:
        return max(share, key=lambda s: (share[s], s))
    middle = (start + end) / 2
    nearest = min(holds, key=lambda h: min(abs(h.start - middle), abs(h.end - middle)))
    return nearest.speaker


def split_at_changes(words: Sequence[Word], holds: Sequence[SpeakerTurn]) -> list[list[Word]]:
    """``words`` (times on the input's line) in runs of one speaker each: cut between the two
    words nearest each change of floor, only where a cut keeps words whole (in Chinese, at the
    end of a word of jieba's dictionary, never before a sentence-final particle)."""
    if len(words) < 2:
        return [list(words)]
    whole = textproc.whole_word_cuts([w.text for w in words])

    def allowed(n: int) -> bool:  # a cut after word n
        following = words[n + 1].text.strip()[:1]
        if following and unicodedata.category(following).startswith("P"):
            return False  # punctuation stays with the word before it
        return whole[n]

    typical = 2.0 * float(np.median([w.end - w.start for w in words]))

    def pause(n: int) -> float:
        """The pause after word n: alignment stretches a word over the silence after it."""
        stretch = words[n].end - words[n].start - typical
        return max(0.0, stretch) + max(0.0, words[n + 1].start - words[n].end)

    def boundary(n: int) -> float:
        return (words[n].end + words[n + 1].start) / 2

    cuts: list[int] = []
    for point in changes(holds):
        if not words[0].start < point < words[-1].end:
            continue
        choices = [n for n in range(len(words) - 1) if allowed(n) and n not in cuts]
        if not choices:
            continue
        # the widest pause near the change (speaker turns end in pauses; aligned word times
        # can be off by a fraction of a second), else the boundary nearest to it
        near = [n for n in choices if abs(boundary(n) - point) <= CUT_REACH_SECONDS]
        widest = max(near, key=pause, default=None)
        if widest is not None and pause(widest) >= MIN_CUT_PAUSE:
            cuts.append(widest)
        else:
            cuts.append(min(choices, key=lambda n: abs(boundary(n) - point)))
    runs, first = [], 0
    for n in sorted(cuts):
        runs.append(list(words[first : n + 1]))
        first = n + 1
    runs.append(list(words[first:]))
    # a cut that leaves one speaker on both sides was not a change after all
    merged: list[list[Word]] = []
    for run in runs:
        if merged and _owner(merged[-1], holds) == _owner(run, holds):
            merged[-1] = merged[-1] + run
        else:
            merged.append(run)
    return merged


def _owner(run: Sequence[Word], holds: Sequence[SpeakerTurn]) -> str | None:
    return speaker_of(holds, run[0].start, run[-1].end)
