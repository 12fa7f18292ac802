"""Changes of voice inside a track.

The segmentation model sometimes carries one local speaker through an overlap into the next
person's turn: A talks, B starts over A's last words, A stops, and the model goes on calling B
by A's local name while the overlap itself gets a second local speaker that lives only there.
With no pause in between, nothing cuts that run, and the track holds two voices.

Such a place is easy to find (a run of another local speaker lying wholly inside the run, in
the same window) but is as often a listener's "mm-hm" over one speaker's sentence. So the voice
decides: the track's clean speech on each side of each such place is embedded on its own and
compared with the speakers found; where the two sides sound most like different speakers, the
track is cut there. Each side must hold enough clean speech to be embedded reliably (the same
bar a track needs to be clustered), and a side that would then talk at the same moment as
another stretch of its speaker leaves the track whole.
"""

from __future__ import annotations

import itertools

import numpy as np

from tingji.engine.diarize.embedding import SpeakerEmbedder
from tingji.engine.diarize.segmentation import FRAME_STEP, WindowActivity
from tingji.engine.diarize.tracks import MIN_NODE_FRAMES, Run, alone_frames, masked_audio

MAX_CHOICES = 4
"""Changes in one track up to which every choice of cut frames is tried."""


def cut_at_changes_of_voice(
    audio: np.ndarray,
    windows: list[WindowActivity],
    nodes: list[Run],
    tracks: list[list[int]],
    track_label: np.ndarray,
    centroids: np.ndarray,
    embedder: SpeakerEmbedder,
    min_seconds: float,
) -> list[int]:
    """A speaker for every run in ``nodes`` (the track's label, or the label of its side of a
    change of voice); runs that cross a change are cut there, their second part appended to
    ``nodes``."""
    labels = [0] * len(nodes)
    for t, track in enumerate(tracks):
        for n in track:
            labels[n] = int(track_label[t])
    by_window: dict[int, list[int]] = {}
    for i, node in enumerate(nodes):
        by_window.setdefault(node.window, []).append(i)
    need = int(np.ceil(min_seconds / FRAME_STEP))
    for track in tracks:
        alone = alone_frames(windows, nodes, track)
        if len(alone) < 2 * need:
            continue
        places = _places(windows, nodes, track, by_window, labels)
        changes = _changes(audio, alone, places, centroids, embedder, need)
        # each cut at one end of the overlap or at the other, the likelier first
        if len(changes) > MAX_CHOICES:
            options = [[c[0] for c in changes], [c[1] for c in changes]]
        else:
            options = [list(o) for o in itertools.product(*[c[:2] for c in changes])]
        for frames in options if changes else []:
            cuts = [(f, c[2], c[3]) for f, c in zip(frames, changes, strict=True)]
            if not _would_clash(windows, nodes, track, cuts, by_window, labels):
                for i in _apply(windows, nodes, track, cuts, labels):
                    by_window[nodes[i].window].append(i)
                break
    return labels


def _places(
    windows: list[WindowActivity],
    nodes: list[Run],
    track: list[int],
    by_window: dict[int, list[int]],
    labels: list[int],
) -> list[tuple[int, int, list[int]]]:
    """Where another local speaker talks wholly inside one of the track's runs: (first, end)
    frames from the start of the audio, places seen by several windows merged, with the
    speakers of those other runs."""
    found = []
    for n in track:
        node = nodes[n]
        offset = windows[node.window].offset
        for m in by_window[node.window]:
            other = nodes[m]
            if other.local != node.local and node.first < other.first and other.last < node.last:
                found.append((other.first + offset, other.last + offset, labels[m]))
    places: list[tuple[int, int, list[int]]] = []
    for first, end, label in sorted(found):
        if places and first < places[-1][1]:
            places[-1] = (places[-1][0], max(end, places[-1][1]), places[-1][2] + [label])
        else:
            places.append((first, end, [label]))
    return places


def _changes(
    audio: np.ndarray,
    alone: np.ndarray,
    places: list[tuple[int, int, list[int]]],
    centroids: np.ndarray,
    embedder: SpeakerEmbedder,
    need: int,
) -> list[tuple[int, int, int, int]]:
    """(frame, other frame, speaker before, speaker after) for each place where the voice
    changes: the track's run in the overlap is likelier the one of the two voices that the other
    local speaker there is not, so the first frame is the end of the overlap or its start."""
    kept: list[tuple[int, int, list[int]]] = []
    edge = -1
    for first, end, partners in places:
        before = np.count_nonzero((alone > edge) & (alone < first))
        after = np.count_nonzero(alone >= end)
        if before >= need and after >= need:
            kept.append((first, end, partners))
            edge = int(end) - 1
    if not kept:
        return []
    edges = [-1] + [end - 1 for _, end, _ in kept]
    firsts = [first for first, _, _ in kept] + [int(alone[-1]) + 1]
    sides = [alone[(alone > e) & (alone < f)] for e, f in zip(edges, firsts, strict=True)]
    voices = embedder.embed([masked_audio(audio, side) for side in sides])
    speaker = [int(np.argmax(centroids @ v)) for v in voices]
    cuts: list[tuple[int, int, int, int]] = []
    for i, (first, end, partners) in enumerate(kept):
        left, right = speaker[i], speaker[i + 1]
        if left == right:
            continue
        partner = max(set(partners), key=partners.count)
        likely, other = (end, first) if partner == right else (first, end)
        cuts.append((likely, other, left, right))
    return cuts


def _pieces(node: Run, offset: int, cuts: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The run cut at ``cuts``: (first, last, speaker) in the window's frames."""
    out, first = [], node.first
    for frame, before, _ in cuts:
        cut = min(max(frame - offset, node.first), node.last)
        if cut > first:
            out.append((first, cut, before))
        first = max(first, cut)
    if first < node.last:
        out.append((first, node.last, cuts[-1][2]))
    return out


def _would_clash(
    windows: list[WindowActivity],
    nodes: list[Run],
    track: list[int],
    cuts: list[tuple[int, int, int]],
    by_window: dict[int, list[int]],
    labels: list[int],
) -> bool:
    """Whether a piece would talk at the same moment as another run of its new speaker."""
    mine = set(track)
    for n in track:
        node = nodes[n]
        window = windows[node.window]
        for first, last, speaker in _pieces(node, window.offset, cuts):
            piece = Run(node.window, node.local, first, last).mask(window)
            for m in by_window[node.window]:
                other = nodes[m]
                if m in mine or labels[m] != speaker or other.local == node.local:
                    continue
                if np.count_nonzero(piece & other.mask(window)) >= MIN_NODE_FRAMES:
                    return True
    return False


def _apply(
    windows: list[WindowActivity],
    nodes: list[Run],
    track: list[int],
    cuts: list[tuple[int, int, int]],
    labels: list[int],
) -> list[int]:
    """Cut the track's runs at ``cuts``; the numbers of the runs added."""
    added = []
    for n in track:
        node = nodes[n]
        pieces = _pieces(node, windows[node.window].offset, cuts)
        (node.first, node.last, labels[n]), rest = pieces[0], pieces[1:]
        for first, last, speaker in rest:
            added.append(len(nodes))
            nodes.append(Run(node.window, node.local, first, last))
            labels.append(speaker)
    return added
