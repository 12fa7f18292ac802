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
   never two that talk at the same moment (unless their runs start or stop together there: one
   noisy voice heard as two). The tree is cut where successive joins become most
   dissimilar, so the cut follows this recording's scale of similarity rather than a fixed
   threshold; given a speaker count, it is cut there. A speaker found with a tiny share of the
   speech is folded into the nearest; tracks too short for a reliable embedding join the
   nearest speaker afterwards (or become one when they talk over every known speaker); for those,
   the voice is weighed with the segmentation's continuity: the speaker of the same local
   speaker's nearest run in the same window. A track that another local speaker overlaps
   somewhere inside is cut there when its clean speech on the two sides sounds most like two
   different speakers (the model sometimes carries one local speaker through an overlap into
   the next person's turn; see ``changes``).
4. **Reconstruction.** Per frame, the number of speakers is the segmentation's (averaged over the
   windows that see it), and that many of the speakers most active there are kept, each only
   where one of its runs talks. The frames of a local speaker that Silero cut off its runs
   (onsets, tails, soft words) count for the speaker of its nearest run in that window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tingji.engine.diarize.changes import cut_at_changes_of_voice
from tingji.engine.diarize.clustering import agglomerate, unit
from tingji.engine.diarize.embedding import SpeakerEmbedder
from tingji.engine.diarize.reconstruction import reconstruct
from tingji.engine.diarize.segmentation import (
    FRAME_STEP,
    SAMPLE_RATE,
    Segmenter,
    WindowActivity,
)
from tingji.engine.diarize.tracks import (
    Run,
    alone_frames,
    conflicting_tracks,
    masked_audio,
    runs_by_local_speaker,
    runs_of_speech,
    speech_frames,
    stitch,
    track_speech,
)
from tingji.types import SpeakerTurn

MAX_SPEAKERS = 20
"""Most speakers told apart in one recording."""
STEP = 2.0
"""Seconds between the starts of two segmentation windows."""
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
EMBED_TRACKS = 32
"""Tracks whose audio is cut out and embedded at once."""

Progress = Callable[[float], None]


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
        speech = speech_frames(audio)
        nodes = runs_of_speech(windows, speech)
        if not nodes:
            return Diarization([], {})
        tracks = stitch(windows, nodes)
        labels, centroids = self._cluster(audio, windows, nodes, tracks, count, progress)
        if progress:
            progress(0.95)
        turns, names = reconstruct(windows, nodes, labels, duration)
        voices = {names[c]: centroids[c] for c in names if c < len(centroids)}
        return Diarization(
            turns, {n: v for n, v in voices.items() if any(t.speaker == n for t in turns)}
        )

    # -- clustering ---------------------------------------------------------------------------

    def _cluster(
        self,
        audio: np.ndarray,
        windows: list[WindowActivity],
        nodes: list[Run],
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
            frames = [alone_frames(windows, nodes, t) for t in group]
            seconds[first : first + len(frames)] = [len(f) * FRAME_STEP for f in frames]
            clips = [masked_audio(audio, f) for f in frames]
            embeddings[first : first + len(frames)] = self.embedder.embed(clips)
        big = [i for i, s in enumerate(seconds) if s >= MIN_TRACK_SECONDS]
        if not big:
            big = [int(np.argmax(seconds))]
        conflicts = conflicting_tracks(windows, nodes, tracks)
        clusters = agglomerate(
            embeddings[big], seconds[big], conflicts[np.ix_(big, big)], self.threshold, count
        )
        track_label = np.full(len(tracks), -1)
        for cluster_id, members in enumerate(clusters):
            for m in members:
                track_label[big[m]] = cluster_id
        centroids = np.stack(
            [
                unit(
                    (
                        embeddings[[big[m] for m in members]]
                        * seconds[[big[m] for m in members], None]
                    ).sum(axis=0)
                )
                for members in clusters
            ]
        )
        speech = np.array([track_speech(windows, nodes, track) for track in tracks])
        runs_of = runs_by_local_speaker(nodes)
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
        labels = cut_at_changes_of_voice(
            audio,
            windows,
            nodes,
            tracks,
            track_label,
            centroids,
            self.embedder,
            MIN_TRACK_SECONDS,
        )
        return labels, centroids


def _neighbours(
    nodes: list[Run],
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
