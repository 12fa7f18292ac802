"""Character error rate (with the normalisation the shared references need) and diarization
error rate.

Both sides are normalised the same way before scoring: NFKC, lower case, traditional →
simplified, ITN, then punctuation and spaces dropped.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tingji.engine.text import inverse_normalize, to_script
from tingji.types import SpeakerTurn


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = inverse_normalize(to_script(text, "simplified"))
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PZSC")


def edit_distance(ref: str, hyp: str) -> int:
    """Levenshtein distance between two strings (characters)."""
    if len(ref) < len(hyp):
        ref, hyp = hyp, ref
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i]
        for j, h in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def cer(reference: str, hypothesis: str) -> float:
    ref, hyp = normalize(reference), normalize(hypothesis)
    return edit_distance(ref, hyp) / max(1, len(ref))


def pooled_cer(pairs: Iterable[tuple[str, str]]) -> float:
    """Total edits over total reference characters, across (reference, hypothesis) pairs."""
    edits = chars = 0
    for reference, hypothesis in pairs:
        ref, hyp = normalize(reference), normalize(hypothesis)
        edits += edit_distance(ref, hyp)
        chars += len(ref)
    return edits / max(1, chars)


@dataclass(frozen=True)
class DiarizationError:
    """Diarization error rate and its parts, as fractions of the scored reference speech."""

    miss: float
    false_alarm: float
    confusion: float
    speech: float
    """Seconds of reference speech scored (overlap counted once per speaker)."""

    @property
    def der(self) -> float:
        return self.miss + self.false_alarm + self.confusion


def _grid(turns: Sequence[SpeakerTurn], frames: int, step: float) -> tuple[list[str], np.ndarray]:
    labels = sorted({t.speaker for t in turns})
    grid = np.zeros((frames, max(1, len(labels))), dtype=bool)
    for turn in turns:
        a, b = int(round(turn.start / step)), int(round(turn.end / step))
        grid[max(0, a) : max(0, min(frames, b)), labels.index(turn.speaker)] = True
    return labels, grid


def diarization_error(
    reference: Sequence[SpeakerTurn],
    hypothesis: Sequence[SpeakerTurn],
    *,
    collar: float = 0.25,
    step: float = 0.01,
) -> DiarizationError:
    """NIST-style DER: frames of ``step`` seconds, overlap scored, each reference speaker mapped
    to at most one hypothesis speaker so that the matched time is largest; ``collar`` seconds
    either side of every reference boundary are not scored."""
    from scipy.optimize import linear_sum_assignment

    end = max([t.end for t in reference] + [t.end for t in hypothesis] + [0.0])
    frames = int(np.ceil(end / step)) + 1
    _, ref = _grid(reference, frames, step)
    _, hyp = _grid(hypothesis, frames, step)
    scored = np.ones(frames, dtype=bool)
    if collar > 0:
        width = int(round(collar / step))
        for turn in reference:
            for edge in (turn.start, turn.end):
                centre = int(round(edge / step))
                scored[max(0, centre - width) : centre + width] = False
    ref, hyp = ref[scored], hyp[scored]
    n_ref, n_hyp = ref.sum(axis=1), hyp.sum(axis=1)
    overlap = ref.astype(np.int64).T @ hyp.astype(np.int64)
    rows, cols = linear_sum_assignment(-overlap)
    correct = np.zeros(len(ref), dtype=np.int64)
    for r, c in zip(rows, cols, strict=True):
        correct += ref[:, r] & hyp[:, c]
    total = float(n_ref.sum())
    miss = float(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = float(np.maximum(n_hyp - n_ref, 0).sum())
    confusion = float((np.minimum(n_ref, n_hyp) - correct).sum())
    scale = max(total, 1.0)
    return DiarizationError(miss / scale, false_alarm / scale, confusion / scale, total * step)


def read_rttm(text: str) -> list[SpeakerTurn]:
    """The SPEAKER lines of an RTTM file as turns."""
    turns = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            turns.append(SpeakerTurn(start, start + duration, fields[7]))
    return turns
