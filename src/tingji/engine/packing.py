"""Packing speech spans into decoding windows with known offsets.

Whisper's encoder always pays for a 30 s window, so decoding each short utterance alone wastes
most of it and loses the context that keeps words and punctuation right. Consecutive spans are
therefore packed into one window up to ``max_seconds`` long; the pause between two spans is kept
up to :data:`MAX_GAP_SECONDS` (as silence), and every time the model reports inside the window
maps back to the original audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tingji.engine.vad import SAMPLE_RATE, SpeechSpan

MAX_GAP_SECONDS = 0.6
"""Longest pause kept between two packed spans; longer ones are shortened to this."""
BREAK_PAUSE_SECONDS = 1.0
"""A longer pause starts a new window: it tends to mark a new speaker or topic, and Whisper
skips whole utterances when unrelated speech is packed together."""


@dataclass(frozen=True)
class Part:
    original: int
    """First sample of the span in the input."""
    packed: int
    """First sample of the span in the window."""
    clip: np.ndarray

    @property
    def length(self) -> int:
        return len(self.clip)

    @property
    def span(self) -> SpeechSpan:
        return SpeechSpan(self.original, self.original + self.length)


@dataclass
class Window:
    """Spans packed together for one decoding pass."""

    parts: list[Part] = field(default_factory=list)
    length: int = 0

    def gap_before(self, span: SpeechSpan) -> int:
        if not self.parts:
            return 0
        last = self.parts[-1]
        gap = span.start - (last.original + last.length)
        return max(0, min(gap, int(MAX_GAP_SECONDS * SAMPLE_RATE)))

    def fits(
        self, span: SpeechSpan, max_samples: int, max_pause: float = BREAK_PAUSE_SECONDS
    ) -> bool:
        """Whether ``span`` joins this window: it must fit, and follow within ``max_pause``."""
        if not self.parts:
            return True
        last = self.parts[-1]
        pause = (span.start - (last.original + last.length)) / SAMPLE_RATE
        size = self.length + self.gap_before(span) + (span.end - span.start)
        return size <= max_samples and pause <= max_pause

    def add(self, span: SpeechSpan, clip: np.ndarray) -> None:
        self.length += self.gap_before(span)
        self.parts.append(Part(span.start, self.length, clip))
        self.length += len(clip)

    @property
    def audio(self) -> np.ndarray:
        out = np.zeros(self.length, dtype=np.float32)
        for part in self.parts:
            out[part.packed : part.packed + part.length] = part.clip
        return out

    @property
    def end(self) -> float:
        last = self.parts[-1]
        return (last.original + last.length) / SAMPLE_RATE

    @property
    def speech_seconds(self) -> float:
        return sum(p.length for p in self.parts) / SAMPLE_RATE

    def coverage(self, part: Part, pieces: list[tuple[float, float]]) -> float:
        """Share of ``part`` that the (start, end) pieces, in input time, overlap."""
        start, end = part.original / SAMPLE_RATE, (part.original + part.length) / SAMPLE_RATE
        covered = sum(max(0.0, min(e, end) - max(s, start)) for s, e in pieces)
        return covered / max(end - start, 1e-6)

    def to_original(self, seconds: float, *, is_end: bool) -> float:
        """Map a time inside the window to the input's time line.

        A time that falls in a shortened pause snaps to the nearer edge of speech: a start to
        the next span, an end to the previous one.
        """
        sample = int(round(seconds * SAMPLE_RATE))
        previous: Part | None = None
        for part in self.parts:
            if sample < part.packed:
                if is_end and previous is not None:
                    return (previous.original + previous.length) / SAMPLE_RATE
                return part.original / SAMPLE_RATE
            if sample <= part.packed + part.length:
                return (part.original + sample - part.packed) / SAMPLE_RATE
            previous = part
        return self.end
