"""Live recognition: audio in as it is spoken, partial text and finished sentences out.

A :class:`LiveSession` takes s16le PCM at any sample rate, resamples it to 16 kHz and drives a
:class:`Recognizer`, which answers with :class:`Partial` and :class:`Final` events: the
:class:`~tingji.engine.online.OnlineRecognizer` recognises as the audio arrives, the
:class:`~tingji.engine.buffered.BufferedRecognizer` transcribes it whole when the stream ends,
exactly as a file. Nothing here knows about WebSockets or FunASR's wire format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from tingji.engine import text as textproc
from tingji.engine.backend import Backend
from tingji.engine.vad import SAMPLE_RATE
from tingji.errors import AudioError
from tingji.types import Replacement, Segment, TranscribeOptions, Transcript

if TYPE_CHECKING:
    from av.audio.resampler import AudioResampler


@dataclass(frozen=True)
class Partial:
    """The utterance in progress as recognised so far; it may still change."""

    utterance: int
    """0 for the first utterance of the stream, then 1, 2, ..."""
    start: float
    """Seconds from the start of the stream."""
    text: str
    """The whole current hypothesis (script and hotwords applied; no ITN, no punctuation)."""
    stable: str
    """The prefix of the hypotheses judged settled: within an utterance it only grows, each
    value starting with the one before, so a client may print it piece by piece."""


@dataclass(frozen=True)
class Final:
    """A finished utterance, decoded again and post-processed like a file."""

    utterance: int
    start: float
    end: float
    text: str
    """The segments' texts joined (ITN, punctuation, script, hotwords applied)."""
    segments: tuple[Segment, ...]
    """Times in seconds from the start of the stream."""
    raw: str
    """The same decode as partial text is written (no ITN, no punctuation), to compare with
    :attr:`Partial.stable`."""


Event = Partial | Final


class Recognizer(Protocol):
    """What :class:`LiveSession` drives: 16 kHz float32 blocks in, events out."""

    language: str | None
    decode_time: float
    replacements: list[Replacement]

    def accept(self, samples: np.ndarray) -> list[Event]: ...

    def finish(self) -> list[Event]: ...

    def segments(self) -> list[Segment]: ...

    def close(self) -> None: ...


class Resampler:
    """s16le mono PCM at any rate → float32 16 kHz, with state carried between blocks."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._resampler: AudioResampler | None = None
        if sample_rate != SAMPLE_RATE:
            import av

            # s16 out, as tingji.audio decodes files: the same input gives the same samples
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)

    def __call__(self, pcm: bytes) -> np.ndarray:
        if len(pcm) % 2:
            raise AudioError(
                f"a PCM frame of {len(pcm)} bytes: 16-bit samples take an even number of bytes"
            )
        samples = np.frombuffer(pcm, dtype="<i2")
        if self._resampler is None:
            return samples.astype(np.float32) / 32768.0
        if len(samples) == 0:
            return np.zeros(0, dtype=np.float32)
        import av

        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames: list[Any]) -> np.ndarray:
        if not frames:
            return np.zeros(0, dtype=np.float32)
        ints = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
        return np.multiply(ints, 1 / 32768, dtype=np.float32)


class Recording(Protocol):
    """Where a session's audio goes as it arrives, for history: s16le 16 kHz mono blocks.
    It keeps its own troubles (a full disk ends the recording, not the stream)."""

    def write(self, pcm: bytes) -> None: ...


class LiveSession:
    """One live stream: s16le mono PCM at ``sample_rate`` in, :data:`Event` objects out; the
    audio as recognised (16 kHz) goes to ``recording`` too.

    Not thread-safe: feed it from one thread at a time (any one).
    """

    def __init__(
        self,
        recognizer: Recognizer,
        *,
        backend: Backend,
        options: TranscribeOptions,
        sample_rate: int = SAMPLE_RATE,
        name: str = "live",
        recording: Recording | None = None,
    ) -> None:
        self.recognizer = recognizer
        self.recording = recording
        self.backend = backend
        self.options = options
        self.sample_rate = sample_rate
        self.name = name
        self.received = 0
        """Input samples received (at the input's sample rate)."""
        self._resample = Resampler(sample_rate)
        self._finished = False

    @property
    def duration(self) -> float:
        """Seconds of audio received."""
        return self.received / self.sample_rate

    def feed(self, pcm: bytes) -> list[Event]:
        samples = self._resample(pcm)
        self.received += len(pcm) // 2
        return self._accept(samples)

    def finish(self) -> list[Event]:
        if self._finished:
            return []
        self._finished = True
        events = self._accept(self._resample.flush())
        return events + self.recognizer.finish()

    def _accept(self, samples: np.ndarray) -> list[Event]:
        if self.recording is not None and len(samples):
            # the resampler's samples are s16 / 32768: this gives them back exactly
            ints = np.clip(np.round(samples * 32768), -32768, 32767).astype("<i2")
            self.recording.write(ints.tobytes())
        return self.recognizer.accept(samples)

    def close(self) -> None:
        self.recognizer.close()

    def transcript(self) -> Transcript:
        """The final sentences so far as one transcript (for history)."""
        segments = self.recognizer.segments()
        language = self.recognizer.language or ""
        return Transcript(
            text=textproc.join_segments([s.text for s in segments], language),
            segments=segments,
            language=language,
            language_probability=None,
            duration=round(self.duration, 3),
            processing_time=round(self.recognizer.decode_time, 3),
            model=self.backend.info,
            replacements=list(self.recognizer.replacements),
            source=self.name,
        )
