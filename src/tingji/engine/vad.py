"""Streaming voice activity detection with Silero VAD (the ONNX model faster-whisper ships).

:class:`SpeechSegmenter` takes audio block by block and hands back finished speech segments as
soon as a pause closes them, so a three-hour file never has to be in memory at once, and live
audio can be cut as it arrives. Each 512-sample window (32 ms) gets a speech probability; a
segment starts at the first window above ``threshold``, ends after ``min_silence_ms`` below the
lower threshold, and a segment that reaches ``max_segment_s`` is cut at its longest inner pause.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from tingji.types import VadOptions

SAMPLE_RATE = 16000
WINDOW = 512
"""Samples per VAD window (32 ms at 16 kHz)."""
_CONTEXT = 64
MIN_SPEECH_MS = 200
"""Bursts shorter than this are noise, not speech, and are dropped."""


QUIET_WINDOWS = 31
"""After this many quiet windows (1 s) a second, fresh-state opinion is started."""
SECOND_OPINION_WINDOWS = 62
"""How long (2 s) after a long pause ends the fresh-state opinion is still consulted."""
QUIET_PROBABILITY = 0.2
SPEECH_PROBABILITY = 0.5
_RUN = 64
"""Windows scored per model call."""

_State = tuple[np.ndarray, np.ndarray]


def _fresh_state() -> _State:
    return np.zeros((1, 1, 128), dtype=np.float32), np.zeros((1, 1, 128), dtype=np.float32)


class SileroProbabilities:
    """Per-window speech probabilities over a stream, state carried between blocks.

    Silero's recurrent state, carried over a long pause, can score the next onset low (a soft
    "我" after 1.5 s of silence got 0.06–0.2, against 0.6 at the start of a file), while a state
    reset there scores other onsets lower (JFK's "ask" after "Americans"). So after a second of
    quiet a second opinion is started from a fresh state and scored beside the carried one,
    through the rest of the pause and two seconds of what follows; each window gets the higher
    of the two.
    """

    def __init__(self, *, second_opinion: bool = True) -> None:
        """``second_opinion=False`` scores with the carried state alone (live streams:
        measured there, it changed where utterances were cut, and one short final looped)."""
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session
        self._state = _fresh_state()
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self._rest = np.zeros(0, dtype=np.float32)
        self._enabled = second_opinion
        self._quiet = 0
        self._armed = second_opinion
        self._second: _State | None = None
        self._second_left = 0

    def __call__(self, block: np.ndarray, final: bool = False) -> np.ndarray:
        audio = np.concatenate([self._rest, block.astype(np.float32, copy=False)])
        usable = len(audio) - len(audio) % WINDOW
        if final and usable < len(audio):
            audio = np.pad(audio, (0, WINDOW - len(audio) % WINDOW))
            usable = len(audio)
        self._rest = audio[usable:]
        if usable == 0:
            return np.zeros(0, dtype=np.float32)
        windows = audio[:usable].reshape(-1, WINDOW)
        contexts = np.concatenate([self._context[None, :], windows[:-1, -_CONTEXT:]])
        self._context = windows[-1, -_CONTEXT:].copy()
        batch = np.concatenate([contexts, windows], axis=1)
        # in short runs, so that a second opinion started mid-run costs at most one run
        return np.concatenate(
            [self._scored(batch[i : i + _RUN]) for i in range(0, len(batch), _RUN)]
        )

    def _scored(self, batch: np.ndarray) -> np.ndarray:
        probs, self._state = self._run(batch, self._state)
        second = np.zeros_like(probs)
        if self._second is not None:
            second, self._second = self._run(batch, self._second)
        for i in range(len(probs)):
            if self._second is not None:
                probs[i] = max(probs[i], second[i])
                if self._quiet == 0:  # the pause is over: count down the second opinion
                    self._second_left -= 1
                    if self._second_left <= 0:
                        self._second = None
            p = probs[i]
            if p >= SPEECH_PROBABILITY:
                self._quiet, self._armed = 0, self._enabled
            elif p < QUIET_PROBABILITY:
                self._quiet += 1
                if self._armed and self._quiet >= QUIET_WINDOWS:
                    # from the next window on, a fresh state scores beside the carried one
                    self._armed = False
                    self._second_left = SECOND_OPINION_WINDOWS
                    second[i + 1 :], self._second = self._run(batch[i + 1 :], _fresh_state())
            else:
                self._quiet = 0
        return probs

    def _run(self, batch: np.ndarray, state: _State) -> tuple[np.ndarray, _State]:
        if len(batch) == 0:
            return np.zeros(0, dtype=np.float32), state
        out, h, c = self._session.run(None, {"input": batch, "h": state[0], "c": state[1]})
        return np.asarray(out, dtype=np.float32).reshape(-1), (h, c)


@dataclass(frozen=True)
class SpeechSpan:
    """A speech segment in samples from the start of the stream."""

    start: int
    end: int

    @property
    def duration(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


ONSET_LOOKBACK = 31
"""Windows (~1 s) looked back over when speech starts: soft onsets (a quiet first syllable)
score below the threshold, and Whisper drops a word cut in half."""


def threshold_onset(threshold: float) -> float:
    """Probability down to which a segment's start is extended backwards."""
    return max(0.05, threshold * 0.3)


class SpeechSegmenter:
    """Turns per-window probabilities into speech spans, incrementally.

    ``push(probs)`` returns the spans that the new windows closed; ``finish(total_samples)``
    closes the last one. Spans carry ``speech_pad_ms`` of context on each side (never more than
    half the pause to a neighbour).
    """

    def __init__(
        self,
        options: VadOptions,
        *,
        relax_after_s: float | None = None,
        relaxed_silence_ms: int | None = None,
    ) -> None:
        """``relax_after_s``/``relaxed_silence_ms``: once a segment is this long, a shorter
        pause ends it (live captions: a long sentence is finished at its next breath rather
        than waiting for a full pause)."""
        self.opts = options
        self._threshold = options.threshold
        self._low = max(options.threshold - 0.15, 0.01)
        self._min_silence = max(1, round(options.min_silence_ms / 32))
        self._min_speech = max(1, round(MIN_SPEECH_MS / 32))
        self._relax_after = (
            None if relax_after_s is None else max(1, round(relax_after_s * 1000 / 32))
        )
        relaxed = options.min_silence_ms if relaxed_silence_ms is None else relaxed_silence_ms
        self._relaxed_silence = max(1, min(self._min_silence, round(relaxed / 32)))
        self._pad = int(options.speech_pad_ms * SAMPLE_RATE / 1000)
        self._pad = min(self._pad, options.min_silence_ms * SAMPLE_RATE // 2000)
        max_samples = options.max_segment_s * SAMPLE_RATE - 2 * self._pad
        self._max_windows = max(8, int(max_samples / WINDOW))
        self._index = 0
        self._start: int | None = None
        self._last_voiced = 0
        self._probs: list[float] = []
        self._prev_end = 0
        self._recent: deque[float] = deque(maxlen=ONSET_LOOKBACK)
        self._onset = threshold_onset(options.threshold)

    def push(self, probs: np.ndarray) -> list[SpeechSpan]:
        spans: list[SpeechSpan] = []
        for p in probs.tolist():
            i = self._index
            self._index += 1
            if self._start is None:
                if p >= self._threshold:
                    back = 0
                    for q in reversed(self._recent):
                        if q < self._onset or (i - back - 1) * WINDOW < self._prev_end:
                            break
                        back += 1
                    onset = list(self._recent)[len(self._recent) - back :]
                    self._start, self._last_voiced, self._probs = i - back, i, [*onset, p]
                    self._recent.clear()
                else:
                    self._recent.append(p)
                continue
            self._probs.append(p)
            if p >= self._low:
                self._last_voiced = i
            elif i - self._last_voiced >= self._silence_needed(i):
                self._close(self._last_voiced + 1, spans, padded=True)
                continue
            if i + 1 - self._start >= self._max_windows:
                self._cut(spans)
        return spans

    def _silence_needed(self, window: int) -> int:
        assert self._start is not None
        if self._relax_after is not None and window - self._start >= self._relax_after:
            return self._relaxed_silence
        return self._min_silence

    @property
    def speech_start(self) -> int | None:
        """First sample of the segment in progress (padding included), None during a pause."""
        if self._start is None:
            return None
        return max(self._prev_end, self._start * WINDOW - self._pad)

    def earliest_needed(self, total_samples: int) -> int:
        """First sample a span still to come may include; audio before it can be dropped."""
        if self._start is not None:
            first = self._start * WINDOW - self._pad
        else:
            first = (self._index - ONSET_LOOKBACK - 1) * WINDOW - self._pad
        return max(0, self._prev_end, min(first, total_samples))

    def finish(self, total_samples: int) -> list[SpeechSpan]:
        spans: list[SpeechSpan] = []
        if self._start is not None:
            end_window = min(self._last_voiced + 1, self._index)
            self._close(end_window, spans, padded=True, limit=total_samples)
        return spans

    def _close(
        self, end_window: int, spans: list[SpeechSpan], *, padded: bool, limit: int | None = None
    ) -> None:
        assert self._start is not None
        start_window = self._start
        self._start = None
        self._probs = []
        self._recent.clear()
        if end_window - start_window < self._min_speech:
            return
        pad = self._pad if padded else 0
        start = max(self._prev_end, start_window * WINDOW - self._pad)
        end = end_window * WINDOW + pad
        if limit is not None:
            end = min(end, limit)
        self._prev_end = end
        spans.append(SpeechSpan(start, end))

    def _cut(self, spans: list[SpeechSpan]) -> None:
        """Cut an over-long segment at the middle of its longest pause in the second half."""
        assert self._start is not None
        probs = np.asarray(self._probs)
        half = len(probs) // 2
        quiet = probs[half:] < self._low
        best_len, best_at, run = 0, -1, 0
        for k, q in enumerate(quiet):
            run = run + 1 if q else 0
            if run > best_len:
                best_len, best_at = run, k - run // 2
        if best_len < 2:
            best_at = int(np.argmin(probs[half:]))
        cut_window = self._start + half + best_at
        start_window = self._start
        tail = self._probs[cut_window - start_window :]
        self._close(cut_window, spans, padded=False)
        self._start = cut_window
        self._probs = tail
        self._prev_end = cut_window * WINDOW


def detect_speech(audio: np.ndarray, options: VadOptions) -> list[SpeechSpan]:
    """Speech spans of a whole array (convenience for short clips and tests)."""
    probs = SileroProbabilities()(audio, final=True)
    segmenter = SpeechSegmenter(options)
    return segmenter.push(probs) + segmenter.finish(len(audio))
