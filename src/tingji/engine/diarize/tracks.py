"""Runs and tracks: the segmentation's local speakers cut into runs of speech, and the runs of
nearby windows that are the same stretch of speech joined into tracks (see ``pipeline``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tingji.engine.diarize.segmentation import (
    FRAME_SPAN,
    FRAME_STEP,
    FRAMES,
    LOCAL_SPEAKERS,
    SAMPLE_RATE,
    WindowActivity,
)

REACH = 5
"""Windows ahead that a window is compared with when stitching (they share ≥ 5 s)."""
LINK_DICE = 0.6
MIN_NODE_FRAMES = 10
SAME_EDGE = 3
"""Frames (about 50 ms) within which two runs' starts or ends count as the same moment."""
MERGE_FRAMES = 8
"""A pause up to this many frames (0.14 s) does not end a run of speech."""
SPEECH_PROBABILITY = 0.5
"""A local speaker active in fewer frames (about 0.17 s) is ignored."""


@dataclass
class Run:
    """One run of speech of one local speaker in one window (frames ``first``–``last``)."""

    window: int
    local: int
    first: int
    last: int

    def mask(self, window: WindowActivity) -> np.ndarray:
        out = np.zeros(FRAMES, dtype=bool)
        out[self.first : self.last] = window.active[self.first : self.last, self.local] > 0
        return out


def alone_frames(windows: list[WindowActivity], nodes: list[Run], track: list[int]) -> np.ndarray:
    """The frames (from the start of the audio) in which the track talks alone, sorted."""
    spans = []
    for n in track:
        node = nodes[n]
        w = windows[node.window]
        alone = node.mask(w) & (w.active.sum(axis=1) == 1)
        spans.append(np.flatnonzero(alone) + w.offset)
    return np.unique(np.concatenate(spans)) if spans else np.zeros(0, np.int64)


def runs_by_local_speaker(nodes: list[Run]) -> dict[tuple[int, int], list[int]]:
    """The nodes of each (window, local speaker)."""
    out: dict[tuple[int, int], list[int]] = {}
    for i, node in enumerate(nodes):
        out.setdefault((node.window, node.local), []).append(i)
    return out


def track_speech(windows: list[WindowActivity], nodes: list[Run], track: list[int]) -> float:
    """Seconds in which the track talks (alone or not), each moment counted once."""
    spans = []
    for n in track:
        w = windows[nodes[n].window]
        frames = np.flatnonzero(nodes[n].mask(w))
        offset = w.offset
        spans.append(frames + offset)
    return len(np.unique(np.concatenate(spans))) * FRAME_STEP


def conflicting_tracks(
    windows: list[WindowActivity], nodes: list[Run], tracks: list[list[int]]
) -> np.ndarray:
    """Tracks that talk at the same moment in some window (two people, for sure), unless the two
    runs start or stop together there (see :func:`one_voice_heard_twice`)."""
    track_of = {n: t for t, track in enumerate(tracks) for n in track}
    by_window: dict[int, list[int]] = {}
    for i, node in enumerate(nodes):
        by_window.setdefault(node.window, []).append(i)
    out = np.zeros((len(tracks), len(tracks)), dtype=bool)
    for w, members in by_window.items():
        masks = {i: nodes[i].mask(windows[w]) for i in members}
        for x in members:
            for y in members:
                overlap = (masks[x] & masks[y]).sum() if x < y else 0
                if (
                    nodes[x].local != nodes[y].local
                    and overlap >= MIN_NODE_FRAMES
                    and not one_voice_heard_twice(nodes[x], nodes[y])
                ):
                    a, b = track_of[x], track_of[y]
                    out[a, b] = out[b, a] = True
    return out


def one_voice_heard_twice(a: Run, b: Run) -> bool:
    """Whether two overlapping runs of one window start or stop within ``SAME_EDGE`` frames of
    each other (away from the window's edges, where every run is cut). Two people seldom start
    or stop speaking within 50 ms of each other; one noisy voice that the segmentation hears as
    two speakers for a while does, since the same pause ends both."""
    starts = a.first > 0 and b.first > 0 and abs(a.first - b.first) <= SAME_EDGE
    ends = a.last < FRAMES and b.last < FRAMES and abs(a.last - b.last) <= SAME_EDGE
    return starts or ends


def masked_audio(audio: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The audio of ``frames`` (sorted frame numbers), each run of frames one piece."""
    hop = FRAME_STEP * SAMPLE_RATE
    if len(frames) == 0:
        return np.zeros(0, np.float32)
    breaks = np.flatnonzero(np.diff(frames) > 1)
    starts = np.concatenate([[frames[0]], frames[breaks + 1]])
    ends = np.concatenate([frames[breaks], [frames[-1]]]) + 1
    pieces = [
        audio[
            int(a * hop + FRAME_SPAN * SAMPLE_RATE / 2 - hop / 2) : int(
                b * hop + FRAME_SPAN * SAMPLE_RATE / 2 - hop / 2
            )
        ]
        for a, b in zip(starts, ends, strict=True)
    ]
    return np.concatenate(pieces)


def speech_frames(audio: np.ndarray) -> np.ndarray:
    """Silero VAD's speech/no-speech per segmentation frame (frame centres)."""
    from tingji.engine.vad import WINDOW, SileroProbabilities

    score = SileroProbabilities()
    block = 30 * SAMPLE_RATE
    parts = [score(audio[s : s + block]) for s in range(0, len(audio), block)]
    parts.append(score(np.zeros(0, np.float32), final=True))
    probabilities = np.concatenate(parts)
    frames = int(np.ceil(len(audio) / SAMPLE_RATE / FRAME_STEP)) + FRAMES
    centres = (np.arange(frames) * FRAME_STEP + FRAME_SPAN / 2) * SAMPLE_RATE / WINDOW
    index = np.minimum(centres.astype(int), max(len(probabilities) - 1, 0))
    if len(probabilities) == 0:
        return np.zeros(frames, dtype=bool)
    return np.asarray(probabilities[index] >= SPEECH_PROBABILITY)


def runs_of_speech(windows: list[WindowActivity], speech: np.ndarray) -> list[Run]:
    """Runs of speech of each local speaker, cut where Silero VAD hears a pause longer than
    ``MERGE_FRAMES`` (the segmentation model sometimes carries one local speaker over a short
    pause into the next person's turn)."""
    nodes: list[Run] = []
    for w, window in enumerate(windows):
        offset = window.offset
        heard = speech[offset : offset + FRAMES]
        heard = np.pad(heard, (0, FRAMES - len(heard)))
        for k in range(LOCAL_SPEAKERS):
            frames = np.flatnonzero((window.active[:, k] > 0) & heard)
            if len(frames) == 0:
                continue
            breaks = np.flatnonzero(np.diff(frames) > MERGE_FRAMES)
            starts = np.concatenate([[frames[0]], frames[breaks + 1]])
            ends = np.concatenate([frames[breaks], [frames[-1]]]) + 1
            for a, b in zip(starts, ends, strict=True):
                if window.active[a:b, k].sum() >= MIN_NODE_FRAMES:
                    nodes.append(Run(w, k, int(a), int(b)))
    return nodes


def _shared(a: WindowActivity, b: WindowActivity) -> tuple[slice, slice] | None:
    shift = int(round((b.start - a.start) / FRAME_STEP))
    if shift >= FRAMES or shift < 0:
        return None
    return slice(shift, FRAMES), slice(0, FRAMES - shift)


def stitch(windows: list[WindowActivity], nodes: list[Run]) -> list[list[int]]:
    """Runs of nearby windows that are the same stretch of speech, joined into tracks."""
    by_window: dict[int, list[int]] = {}
    for i, node in enumerate(nodes):
        by_window.setdefault(node.window, []).append(i)
    links: list[tuple[float, int, int]] = []
    for w in range(len(windows)):
        for d in range(1, REACH + 1):
            if w + d >= len(windows):
                break
            shared = _shared(windows[w], windows[w + d])
            if shared is None:
                break
            sa, sb = shared
            for i in by_window.get(w, []):
                a = windows[w].soft[:, nodes[i].local] * nodes[i].mask(windows[w])
                a = a[sa]
                if a.sum() <= 0:
                    continue
                for j in by_window.get(w + d, []):
                    b = windows[w + d].soft[:, nodes[j].local] * nodes[j].mask(windows[w + d])
                    b = b[sb]
                    mass = a.sum() + b.sum()
                    if mass < MIN_NODE_FRAMES:
                        continue
                    dice = 2 * float((a * b).sum()) / mass
                    if dice >= LINK_DICE:
                        links.append((dice, i, j))
    parent = list(range(len(nodes)))
    members: dict[int, set[int]] = {i: {nodes[i].window} for i in range(len(nodes))}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for _, first, second in sorted(links, reverse=True):
        ra, rb = root(first), root(second)
        if ra == rb or members[ra] & members[rb]:
            continue
        parent[rb] = ra
        members[ra] |= members.pop(rb)
    tracks: dict[int, list[int]] = {}
    for i in range(len(nodes)):
        tracks.setdefault(root(i), []).append(i)
    return list(tracks.values())
