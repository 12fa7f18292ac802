"""Agglomerative clustering of track voices into speakers (see ``pipeline``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tingji.engine.diarize.pipeline import SpeakerCount

MINOR_SHARE = 0.025
"""A speaker found with less than this share of the clean speech is folded into the nearest."""


def agglomerate(
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
        voice = unit((embeddings[clusters[small]] * weights[clusters[small], None]).sum(axis=0))
        options = []
        for j, other in enumerate(clusters):
            if j == small or conflicts[np.ix_(clusters[small], other)].any():
                continue
            centre = unit((embeddings[other] * weights[other, None]).sum(axis=0))
            options.append((float(centre @ voice), j))
        if not options:
            break
        _, target = max(options)
        clusters[target] += clusters[small]
        del clusters[small]
    return clusters


def unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)
