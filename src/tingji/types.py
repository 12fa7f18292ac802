"""Plain result and option types shared by every layer.

These are dataclasses, not wire models: the server and the CLI shape them for their own
outputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Script = Literal["simplified", "traditional", "original"]
Task = Literal["transcribe", "translate"]


@dataclass(frozen=True)
class Replacement:
    """One change made by the hotword correction pass."""

    segment_id: int
    original: str
    replacement: str


@dataclass
class Segment:
    """A stretch of speech with its text. Times are seconds from the start of the audio."""

    id: int
    start: float
    end: float
    text: str
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


@dataclass(frozen=True)
class VadOptions:
    """How long audio is cut at speech pauses before recognition."""

    enabled: bool = True
    threshold: float = 0.5
    """Speech probability above which a 32 ms window counts as speech (0–1)."""
    min_silence_ms: int = 500
    """A pause at least this long (milliseconds) ends a speech segment."""
    max_segment_s: float = 30.0
    """A segment longer than this (seconds) is cut at its longest inner pause."""
    speech_pad_ms: int = 200
    """Audio kept either side of each segment (milliseconds)."""


@dataclass(frozen=True)
class TranscribeOptions:
    """Per-request options. ``None`` means "decide from the audio" (language) or "default"."""

    language: str | None = None
    task: Task = "transcribe"
    hotwords: tuple[str, ...] = ()
    itn: bool = True
    script: Script = "simplified"
    punctuate: bool = True
    """Close CJK segments that the model left unpunctuated (，/。)."""
    beam_size: int | None = None
    initial_prompt: str | None = None
    vad: VadOptions = field(default_factory=VadOptions)


@dataclass
class ModelInfo:
    """Which model a backend runs, and where."""

    backend: str
    name: str
    path: str
    device: str
    compute_type: str
    device_reason: str = ""


@dataclass
class Transcript:
    """The whole result of recognising one audio input."""

    text: str
    segments: list[Segment]
    language: str
    language_probability: float | None
    duration: float
    """Audio length in seconds."""
    processing_time: float
    """Wall-clock seconds spent, decoding included."""
    model: ModelInfo
    replacements: list[Replacement] = field(default_factory=list)
    source: str | None = None

    @property
    def real_time_factor(self) -> float:
        """Processing time divided by audio time (below 1 is faster than real time)."""
        return self.processing_time / self.duration if self.duration > 0 else 0.0

    @property
    def speed(self) -> float:
        """Audio seconds recognised per wall-clock second (× real time)."""
        return self.duration / self.processing_time if self.processing_time > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["real_time_factor"] = round(self.real_time_factor, 4)
        data["speed"] = round(self.speed, 2)
        return data
