"""From labelled runs back to speaker turns on the recording's time line (see ``pipeline``)."""

from __future__ import annotations

import numpy as np

from tingji.engine.diarize.clustering import MINOR_SHARE
from tingji.engine.diarize.segmentation import FRAME_SPAN, FRAME_STEP, FRAMES, LOCAL_SPEAKERS
from tingji.engine.diarize.tracks import Run, WindowActivity, runs_by_local_speaker
from tingji.types import SpeakerTurn

NAMING_SECONDS = 0.5
MIN_TURN = 0.1
FILL_GAP = 0.1


def reconstruct(
    windows: list[WindowActivity], nodes: list[Run], labels: list[int], duration: float
) -> tuple[list[SpeakerTurn], dict[int, str]]:
    speakers = max(labels) + 1
    total = int(np.ceil(duration / FRAME_STEP)) + FRAMES
    activation = np.zeros((total, speakers))
    count = np.zeros(total)
    seen = np.zeros(total)
    by_window: dict[int, list[int]] = {}
    for i, node in enumerate(nodes):
        by_window.setdefault(node.window, []).append(i)
    runs_of = runs_by_local_speaker(nodes)
    for w, window in enumerate(windows):
        offset = window.offset
        seen[offset : offset + FRAMES] += 1
        count[offset : offset + FRAMES] += window.active.sum(axis=1)
        for i in by_window.get(w, []):
            node = nodes[i]
            span = slice(offset + node.first, offset + node.last)
            activation[span, labels[i]] += window.soft[node.first : node.last, node.local]
        for k in range(LOCAL_SPEAKERS):
            _fill_left_out(
                activation[offset : offset + FRAMES], window, k, nodes, runs_of.get((w, k)), labels
            )
    seen = np.maximum(seen, 1)
    count = np.rint(count / seen).astype(int)
    activation /= seen[:, None]
    active = _most_active(activation, count)
    # a speaker left with a sliver of the speech (it lost nearly every frame to louder
    # neighbours: stray stretches of someone's voice) is no speaker; its frames go to the next
    heard = active.sum(axis=0)
    minor = (heard > 0) & (heard < MINOR_SHARE * heard.sum())
    if minor.any() and (heard[~minor] > 0).any():
        activation[:, minor] = 0
        active = _most_active(activation, count)
    turns: list[SpeakerTurn] = []
    names = _names(active)
    for s in range(speakers):
        frames = np.flatnonzero(active[:, s])
        if len(frames) == 0:
            continue
        breaks = np.flatnonzero(np.diff(frames) > 1)
        starts = np.concatenate([[frames[0]], frames[breaks + 1]])
        ends = np.concatenate([frames[breaks], [frames[-1]]]) + 1
        spans: list[list[float]] = []
        for a, b in zip(starts, ends, strict=True):
            start = a * FRAME_STEP + FRAME_SPAN / 2 - FRAME_STEP / 2
            end = min(duration, b * FRAME_STEP + FRAME_SPAN / 2 - FRAME_STEP / 2)
            if spans and start - spans[-1][1] < FILL_GAP:
                spans[-1][1] = end
            else:
                spans.append([start, end])
        for start, end in spans:
            if end - start >= MIN_TURN:
                turns.append(SpeakerTurn(round(start, 3), round(end, 3), names[s]))
    return sorted(turns, key=lambda t: (t.start, t.speaker)), names


def _most_active(activation: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Per frame, the ``count`` speakers of the highest activation, each only where it has some."""
    order = np.argsort(-activation, axis=1)
    active = np.zeros_like(activation, dtype=bool)
    for c in range(1, min(LOCAL_SPEAKERS, activation.shape[1]) + 1):
        rows = np.flatnonzero(count >= c)
        picked = order[rows, c - 1]
        # a speaker with no run of speech here is no c-th voice, whatever the count says
        heard = activation[rows, picked] > 0
        active[rows[heard], picked[heard]] = True
    return active


def _fill_left_out(
    activation: np.ndarray,
    window: WindowActivity,
    local: int,
    nodes: list[Run],
    mine: list[int] | None,
    labels: list[int],
) -> None:
    """Add to ``activation`` (the window's frames) the frames where ``local`` talks but none of
    its runs ``mine`` does (Silero VAD cut them off: onsets, tails, soft words), each frame for
    the speaker of the nearest of those runs."""
    if not mine:
        return
    covered = np.zeros(FRAMES, dtype=bool)
    for i in mine:
        covered[nodes[i].first : nodes[i].last] = True
    rest = np.flatnonzero((window.active[:, local] > 0) & ~covered)
    if len(rest) == 0:
        return
    firsts = np.array([nodes[i].first for i in mine])
    lasts = np.array([nodes[i].last - 1 for i in mine])
    distance = np.minimum(np.abs(rest[:, None] - firsts), np.abs(rest[:, None] - lasts))
    owners = np.array([labels[i] for i in mine])[np.argmin(distance, axis=1)]
    np.add.at(activation, (rest, owners), window.soft[rest, local])


def _names(active: np.ndarray) -> dict[int, str]:
    """S1, S2, … in order of first speech (a first stretch of at least ``NAMING_SECONDS``: a
    blip of the other voice before someone's first sentence does not make it S1)."""
    need = max(1, int(NAMING_SECONDS / FRAME_STEP))
    first = []
    for s in range(active.shape[1]):
        column = active[:, s].astype(np.int64)
        sums = np.convolve(column, np.ones(need, dtype=np.int64), mode="valid")
        long_enough = np.flatnonzero(sums >= need)
        if len(long_enough):
            first.append((int(long_enough[0]), s))
        elif column.any():
            first.append((len(column) + int(np.argmax(column)), s))
        else:
            first.append((1 << 40, s))
    return {s: f"S{rank + 1}" for rank, (_, s) in enumerate(sorted(first))}
