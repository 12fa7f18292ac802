"""Speaker diarization: who speaks when.

1. **Segmentation.** pyannote's model labels up to three local speakers in 10 s windows, one
   window every ``STEP`` seconds, overlap included. Each local speaker's activity is cut into
   *runs* wherever Silero VAD hears a pause (the model sometimes carries one local speaker over
   a short pause into the next person's turn).
2. **Stitching.** Windows that share audio agree on who talks in the shared part: a run of one
   window and one of a nearby window whose activity there coincides (soft Dice ≥ ``LINK_DICE``)
   are the same stretch of speech. Links are taken strongest first; two runs of one window are
   never joined. What comes out are *tracks*: one stretch of one voice, followed across windows.
3. **Clustering.** Each track gets one speaker embedding from the audio in which it talks
   alone; tracks are joined by average-linkage agglomerative clustering (weighted by seconds),
   never two that talk at the same moment. The tree is cut where successive joins become most
   dissimilar, so the cut follows this recording's scale of similarity rather than a fixed
   threshold; given a speaker count, it is cut there. A speaker found with a tiny share of the
   speech is folded into the nearest; tracks too short for a reliable embedding join the
   nearest speaker afterwards (or become one when they talk over every known speaker); for those,
   the voice is weighed with the segmentation's continuity: the speaker of the same local
   speaker's nearest run in the same window.
4. **Reconstruction.** Per frame, the number of speakers is the segmentation's (averaged over the
   windows that see it), and that many of the speakers most active there are kept, each only
   where one of its runs talks. The frames of a local speaker that Silero cut off its runs
   (onsets, tails, soft words) count for the speaker of its nearest run in that window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tingji.engine.diarize.embedding import SpeakerEmbedder
from tingji.engine.diarize.segmentation import (
    FRAME_SPAN,
    FRAME_STEP,
    FRAMES,
    LOCAL_SPEAKERS,
    SAMPLE_RATE,
    Segmenter,
    WindowActivity,
)
from tingji.types import SpeakerTurn

MAX_SPEAKERS = 20
"""Most speakers told apart in one recording."""
STEP = 2.0
"""Seconds between the starts of two segmentation windows."""
REACH = 5
"""Windows ahead that a window is compared with when stitching (they share ≥ 5 s)."""
LINK_DICE = 0.6
MIN_NODE_FRAMES = 10
MERGE_FRAMES = 8
"""A pause up to this many frames (0.14 s) does not end a run of speech."""
SPEECH_PROBABILITY = 0.5
"""A local speaker active in fewer frames (about 0.17 s) is ignored."""
MIN_TRACK_SECONDS = 1.0
"""A track with less clean speech than this is attached to a speaker, not clustered."""
MIN_NEW_SPEAKER = 1.0
"""Seconds of speech a short track needs to count as a speaker of its own, when it talks at the
same time as every other speaker."""
NEIGHBOUR_WEIGHT = 0.25
"""How much the segmentation's continuity counts, beside the cosine similarity of voices, when a
short track joins a speaker: the whole weight when every window of the track has its nearest
labelled run of the same local speaker in one speaker (a quarter of the cosine scale: it decides
between voices that sound about as alike, it does not overrule a clear one)."""
NEIGHBOUR_GAP = 1.0
"""Seconds: a run of the same local speaker farther away than this says nothing."""
MINOR_SHARE = 0.025
"""A speaker found with less than this share of the clean speech is folded into the nearest."""
EMBED_TRACKS = 32
"""Tracks whose audio is cut out and embedded at once."""
NAMING_SECONDS = 0.5
MIN_TURN = 0.1
FILL_GAP = 0.1

Progress = Callable[[float], None]


@dataclass
class _Node:
    """One run of speech of one local speaker in one window (frames ``first``–``last``)."""

    window: int
    local: int
    first: int
    last: int

    def mask(self, window: WindowActivity) -> np.ndarray:
        out = np.zeros(FRAMES, dtype=bool)
        out[self.first : self.last] = window.active[self.first : self.last, self.local] > 0
        return out


@dataclass
class Diarization:
    turns: list[SpeakerTurn]
    """Sorted by start; speakers are named S1, S2, … in order of first speech."""
    voices: dict[str, np.ndarray]
    """Each speaker's voice embedding (unit vector), for naming it after a known voice."""

    @property
    def speakers(self) -> list[str]:
        return sorted({t.speaker for t in self.turns}, key=lambda s: (len(s), s))


@dataclass(frozen=True)
class SpeakerCount:
    exact: int | None = None
    minimum: int = 1
    maximum: int = MAX_SPEAKERS


class Diarizer:
    def __init__(
        self,
        segmenter: Segmenter,
        embedder: SpeakerEmbedder,
        *,
        threshold: float = 0.7,
    ) -> None:
        self.segmenter = segmenter
        self.embedder = embedder
        self.threshold = threshold

    def __call__(
        self,
        audio: np.ndarray,
        count: SpeakerCount = SpeakerCount(),
        progress: Progress | None = None,
    ) -> Diarization:
        """Who speaks when in ``audio`` (16 kHz mono float32); ``progress`` gets the share
        done (0–1) now and then, through every stage that takes time (an exception raised
        from it stops the work there)."""
        duration = len(audio) / SAMPLE_RATE
        windows = []
        total = max(1, int(np.ceil(max(0.0, duration - 10) / STEP)) + 1)
        for window in self.segmenter.windows(audio, STEP):
            windows.append(window)
            if progress and len(windows) % 16 == 0:
                progress(0.6 * min(1.0, len(windows) / total))
        speech = _speech(audio)
        nodes = _nodes(windows, speech)
        if not nodes:
            return Diarization([], {})
        tracks = _stitch(windows, nodes)
        labels, centroids = self._cluster(audio, windows, nodes, tracks, count, progress)
        if progress:
            progress(0.95)
        turns, names = _reconstruct(windows, nodes, labels, duration)
        voices = {names[c]: centroids[c] for c in names if c < len(centroids)}
        return Diarization(
            turns, {n: v for n, v in voices.items() if any(t.speaker == n for t in turns)}
        )

    # -- clustering ---------------------------------------------------------------------------

    def _cluster(
        self,
        audio: np.ndarray,
        windows: list[WindowActivity],
        nodes: list[_Node],
        tracks: list[list[int]],
        count: SpeakerCount,
        progress: Progress | None = None,
    ) -> tuple[list[int], np.ndarray]:
        """A global speaker number for every node, and each speaker's voice (unit vector);
        ``progress`` from 0.6 to 0.95 as the tracks are embedded."""
        # the clean audio of a few tracks at a time: what is kept per track is its embedding and
        # its seconds, so memory does not grow with the audio held by a long recording's tracks
        embeddings = np.zeros((len(tracks), self.embedder.dimension), np.float32)
        seconds = np.zeros(len(tracks))
        for first in range(0, len(tracks), EMBED_TRACKS):
            if progress:
                progress(0.6 + 0.35 * first / len(tracks))
            group = tracks[first : first + EMBED_TRACKS]
            frames = [_alone_frames(windows, nodes, t) for t in group]
            seconds[first : first + len(frames)] = [len(f) * FRAME_STEP for f in frames]
            clips = [_masked_audio(audio, f) for f in frames]
            embeddings[first : first + len(frames)] = self.embedder.embed(clips)
        big = [i for i, s in enumerate(seconds) if s >= MIN_TRACK_SECONDS]
        if not big:
            big = [int(np.argmax(seconds))]
        conflicts = _conflicts(windows, nodes, tracks)
        clusters = _agglomerate(
            embeddings[big], seconds[big], conflicts[np.ix_(big, big)], self.threshold, count
        )
        track_label = np.full(len(tracks), -1)
        for cluster_id, members in enumerate(clusters):
            for m in members:
                track_label[big[m]] = cluster_id
        centroids = np.stack(
            [
                _unit(
                    (
                        embeddings[[big[m] for m in members]]
                        * seconds[[big[m] for m in members], None]
                    ).sum(axis=0)
                )
                for members in clusters
            ]
        )
        speech = np.array([_track_speech(windows, nodes, track) for track in tracks])
        runs_of = _runs_by_local_speaker(nodes)
        track_of = {n: t for t, track in enumerate(tracks) for n in track}
        for t in sorted(range(len(tracks)), key=lambda t: -speech[t]):
            if track_label[t] >= 0:
                continue
            # a short track's voice is a poor guide; the segmentation's own word (the same local
            # speaker just before or after, in the same window) is weighed with it
            scores = centroids @ embeddings[t] + NEIGHBOUR_WEIGHT * _neighbours(
                nodes, tracks[t], runs_of, track_of, track_label, len(centroids)
            )
            for cluster_id in np.argsort(-scores):
                taken = any(
                    conflicts[t, other] for other in np.flatnonzero(track_label == cluster_id)
                )
                if not taken:
                    track_label[t] = cluster_id
                    break
            else:
                # heard at the same time as every speaker known so far: another speaker, when
                # there is enough of it and the count allows
                if speech[t] >= MIN_NEW_SPEAKER and len(centroids) < (count.exact or count.maximum):
                    track_label[t] = len(centroids)
                    centroids = np.vstack([centroids, embeddings[t][None]])
                else:
                    track_label[t] = int(np.argmax(scores))
        labels = [0] * len(nodes)
        for t, track in enumerate(tracks):
            for n in track:
                labels[n] = int(track_label[t])
        return labels, centroids


def _alone_frames(
    windows: list[WindowActivity], nodes: list[_Node], track: list[int]
) -> np.ndarray:
    """The frames (from the start of the audio) in which the track talks alone, sorted."""
    spans = []
    for n in track:
        node = nodes[n]
        w = windows[node.window]
        alone = node.mask(w) & (w.active.sum(axis=1) == 1)
        spans.append(np.flatnonzero(alone) + int(round(w.start / FRAME_STEP)))
    return np.unique(np.concatenate(spans)) if spans else np.zeros(0, np.int64)


def _runs_by_local_speaker(nodes: list[_Node]) -> dict[tuple[int, int], list[int]]:
    """The nodes of each (window, local speaker)."""
    out: dict[tuple[int, int], list[int]] = {}
    for i, node in enumerate(nodes):
        out.setdefault((node.window, node.local), []).append(i)
    return out


def _neighbours(
    nodes: list[_Node],
    track: list[int],
    runs_of: dict[tuple[int, int], list[int]],
    track_of: dict[int, int],
    track_label: np.ndarray,
    speakers: int,
) -> np.ndarray:
    """Per speaker, the share of the track's windows in which its nearest labelled run of the
    same local speaker (at most ``NEIGHBOUR_GAP`` away) is that speaker's."""
    votes = np.zeros(speakers)
    own = track_of[track[0]]
    for n in track:
        node, nearest = nodes[n], None
        for m in runs_of[(node.window, node.local)]:
            label = track_label[track_of[m]]
            if label < 0 or track_of[m] == own:
                continue
            gap = max(nodes[m].first - node.last, node.first - nodes[m].last)
            if gap * FRAME_STEP <= NEIGHBOUR_GAP and (nearest is None or gap < nearest[0]):
                nearest = (gap, int(label))
        if nearest is not None:
            votes[nearest[1]] += 1
    return votes / votes.sum() if votes.any() else votes


def _track_speech(windows: list[WindowActivity], nodes: list[_Node], track: list[int]) -> float:
    """Seconds in which the track talks (alone or not), each moment counted once."""
    spans = []
    for n in track:
        w = windows[nodes[n].window]
        frames = np.flatnonzero(nodes[n].mask(w))
        offset = int(round(w.start / FRAME_STEP))
        spans.append(frames + offset)
    return len(np.unique(np.concatenate(spans))) * FRAME_STEP


def _conflicts(
    windows: list[WindowActivity], nodes: list[_Node], tracks: list[list[int]]
) -> np.ndarray:
    """Tracks that talk at the same moment in some window (two people, for sure)."""
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
                if nodes[x].local != nodes[y].local and overlap >= MIN_NODE_FRAMES:
                    a, b = track_of[x], track_of[y]
                    out[a, b] = out[b, a] = True
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _masked_audio(audio: np.ndarray, frames: np.ndarray) -> np.ndarray:
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


def _speech(audio: np.ndarray) -> np.ndarray:
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


def _nodes(windows: list[WindowActivity], speech: np.ndarray) -> list[_Node]:
    """Runs of speech of each local speaker, cut where Silero VAD hears a pause longer than
    ``MERGE_FRAMES`` (the segmentation model sometimes carries one local speaker over a short
    pause into the next person's turn)."""
    nodes: list[_Node] = []
    for w, window in enumerate(windows):
        offset = int(round(window.start / FRAME_STEP))
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
                    nodes.append(_Node(w, k, int(a), int(b)))
    return nodes


def _shared(a: WindowActivity, b: WindowActivity) -> tuple[slice, slice] | None:
    shift = int(round((b.start - a.start) / FRAME_STEP))
    if shift >= FRAMES or shift < 0:
        return None
    return slice(shift, FRAMES), slice(0, FRAMES - shift)


def _stitch(windows: list[WindowActivity], nodes: list[_Node]) -> list[list[int]]:
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


def _agglomerate(
    embeddings: np.ndarray,
    weights: np.ndarray,
    conflicts: np.ndarray,
    threshold: float,
    count: SpeakerCount,
) -> list[list[int]]:
    """Average-linkage clustering on cosine similarity (each voice weighted by its seconds of
    speech); clusters that talk at the same time are never joined.

    With ``count.exact`` it stops there. Otherwise the tree is built to the top and cut where
    the similarity of successive joins drops most (a join of two people is a step down from the
    joins of one person's stretches, whatever the encoder's scale on this recording), within
    ``count.minimum``–``count.maximum``; a join above ``threshold`` is never the cut."""
    n = len(embeddings)
    similarity = (embeddings @ embeddings.T).astype(np.float64)
    np.fill_diagonal(similarity, -np.inf)
    blocked = conflicts.copy()
    size = weights.astype(np.float64).copy()
    alive = np.ones(n, dtype=bool)
    # the similarities a join may take: -inf for a pair that talks at once (kept up to date row
    # by row, not rebuilt for every join: an hour's tracks are a few thousand)
    scores = np.where(blocked, -np.inf, similarity)
    joins: list[tuple[float, int, int]] = []
    """Join i (from 0) merged cluster b into cluster a at similarity s: (s, a, b)."""
    while alive.sum() > 1:
        flat = int(np.argmax(scores))
        a, b = divmod(flat, n)
        best = float(scores[a, b])
        if not np.isfinite(best):
            break
        if count.exact is not None and alive.sum() <= count.exact:
            break
        total = size[a] + size[b]
        merged = (size[a] * similarity[a] + size[b] * similarity[b]) / total
        similarity[a], similarity[:, a] = merged, merged
        similarity[a, a] = -np.inf
        blocked[a] |= blocked[b]
        blocked[:, a] |= blocked[:, b]
        size[a] = total
        alive[b] = False
        row = np.where(blocked[a] | ~alive, -np.inf, similarity[a])
        scores[a], scores[:, a] = row, row
        scores[b], scores[:, b] = -np.inf, -np.inf
        joins.append((best, a, b))

    def clusters_after(done: int) -> list[list[int]]:
        members: dict[int, list[int]] = {i: [i] for i in range(n)}
        for _, a, b in joins[:done]:
            members[a] += members.pop(b)
        return list(members.values())

    if count.exact is not None:
        return clusters_after(len(joins))
    # cutting after i joins leaves n - i clusters; join i (from 1) had similarity joins[i - 1][0]
    candidates = [i for i in range(len(joins) + 1) if count.minimum <= n - i <= count.maximum]
    if not candidates:
        return clusters_after(len(joins))

    def drop(i: int) -> float:  # cutting after join i: how much the next join is worse
        if i >= len(joins):
            return joins[i - 1][0] - threshold if i > 0 else 0.0
        if joins[i][0] >= threshold:
            return -np.inf
        here = joins[i - 1][0] if i > 0 else 1.0
        return min(here, 1.0) - joins[i][0]

    chosen = max(candidates, key=lambda i: (drop(i), -i))
    return _absorb_minor(clusters_after(chosen), embeddings, weights, conflicts, count.minimum)


def _absorb_minor(
    clusters: list[list[int]],
    embeddings: np.ndarray,
    weights: np.ndarray,
    conflicts: np.ndarray,
    minimum: int,
) -> list[list[int]]:
    """A cluster with little speech (under ``MINOR_SHARE`` of all) is most often stray
    stretches of someone else's voice: it joins the cluster it sounds most like, unless they
    talk at the same time."""
    clusters = [list(c) for c in clusters]
    total = float(weights.sum())
    while len(clusters) > max(1, minimum):
        seconds = [float(weights[c].sum()) for c in clusters]
        small = int(np.argmin(seconds))
        if seconds[small] >= MINOR_SHARE * total:
            break
        voice = _unit((embeddings[clusters[small]] * weights[clusters[small], None]).sum(axis=0))
        options = []
        for j, other in enumerate(clusters):
            if j == small or conflicts[np.ix_(clusters[small], other)].any():
                continue
            centre = _unit((embeddings[other] * weights[other, None]).sum(axis=0))
            options.append((float(centre @ voice), j))
        if not options:
            break
        _, target = max(options)
        clusters[target] += clusters[small]
        del clusters[small]
    return clusters


def _reconstruct(
    windows: list[WindowActivity], nodes: list[_Node], labels: list[int], duration: float
) -> tuple[list[SpeakerTurn], dict[int, str]]:
    speakers = max(labels) + 1
    total = int(np.ceil(duration / FRAME_STEP)) + FRAMES
    activation = np.zeros((total, speakers))
    count = np.zeros(total)
    seen = np.zeros(total)
    by_window: dict[int, list[int]] = {}
    for i, node in enumerate(nodes):
        by_window.setdefault(node.window, []).append(i)
    runs_of = _runs_by_local_speaker(nodes)
    for w, window in enumerate(windows):
        offset = int(round(window.start / FRAME_STEP))
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
    order = np.argsort(-activation, axis=1)
    active = np.zeros_like(activation, dtype=bool)
    for c in range(1, min(LOCAL_SPEAKERS, speakers) + 1):
        rows = np.flatnonzero(count >= c)
        picked = order[rows, c - 1]
        # a speaker with no run of speech here is no c-th voice, whatever the count says
        heard = activation[rows, picked] > 0
        active[rows[heard], picked[heard]] = True
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


def _fill_left_out(
    activation: np.ndarray,
    window: WindowActivity,
    local: int,
    nodes: list[_Node],
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
