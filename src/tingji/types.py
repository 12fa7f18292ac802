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


@dataclass(frozen=True)
class Omission:
    """A stretch of audio whose recognised text was dropped, and why (``repetition``: the
    model repeated itself past belief under every search tried)."""

    start: float
    end: float
    reason: str


@dataclass(frozen=True)
class SpeakerTurn:
    """A stretch of time in which one speaker talks (turns of two speakers may overlap)."""

    start: float
    end: float
    speaker: str


@dataclass
class Segment:
    """A stretch of speech with its text. Times are seconds from the start of the audio."""

    id: int
    start: float
    end: float
    text: str
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    speaker: str | None = None
    """Who says it (S1, S2, … or a name), when speakers were told apart."""


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
    diarize: bool = False
    """Tell speakers apart: each segment gets a ``speaker``, none spans a change of speaker."""
    speakers: int | None = None
    """The number of speakers, when known (with ``diarize``)."""
    min_speakers: int | None = None
    max_speakers: int | None = None


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
    omitted: list[Omission] = field(default_factory=list)
    speakers: list[SpeakerTurn] = field(default_factory=list)
    """Who speaks when (turns may overlap), when speakers were told apart."""

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


@dataclass
class HistoryEntry:
    """A saved recognition."""

    id: int
    created_at: float
    name: str
    """The file name the client gave (shown only; never used as a path)."""
    language: str
    duration: float
    processing_time: float
    model: str
    device: str
    text: str
    segments: list[Segment]
    replacements: list[Replacement] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    audio_file: str | None = None
    job_id: str | None = None
    omitted: list[Omission] = field(default_factory=list)
    speakers: list[SpeakerTurn] = field(default_factory=list)
    original: list[Segment] | None = None
    """The segments as recognised, when some were corrected since (same order and times)."""
    edited_at: float | None = None
    """When a segment was last corrected (unix seconds)."""


JobState = Literal["queued", "running", "done", "failed", "cancelled"]


@dataclass
class JobFile:
    """One file of a batch job."""

    id: int
    position: int
    name: str
    size: int
    status: JobState
    duration: float | None = None
    """Audio seconds (known once decoding started)."""
    done_seconds: float = 0.0
    """Audio seconds recognised so far."""
    processing_time: float | None = None
    error: str | None = None
    transcription_id: int | None = None
    audio_file: str | None = None
    node: str | None = None
    """The machine that runs (or ran) the file."""


@dataclass
class JobStatus:
    """A batch job and the progress of each of its files."""

    id: str
    created_at: float
    status: JobState
    files: list[JobFile]
    options: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    finished_at: float | None = None
    current_file: str | None = None
    elapsed: float = 0.0
    """Seconds since the job started running."""
    eta: float | None = None
    """Estimated seconds left."""

    @property
    def audio_total(self) -> float | None:
        known = [f.duration for f in self.files]
        return None if any(d is None for d in known) else sum(d or 0.0 for d in known)

    @property
    def audio_done(self) -> float:
        return sum(
            (f.duration or 0.0) if f.status == "done" else f.done_seconds for f in self.files
        )

    @property
    def finished_files(self) -> int:
        return sum(f.status in ("done", "failed", "cancelled") for f in self.files)


def options_to_dict(options: TranscribeOptions) -> dict[str, Any]:
    return asdict(options)


def options_from_dict(data: dict[str, Any]) -> TranscribeOptions:
    """Inverse of :func:`options_to_dict` (unknown keys are ignored)."""
    known = set(TranscribeOptions.__dataclass_fields__)
    values = {k: v for k, v in data.items() if k in known}
    if isinstance(values.get("vad"), dict):
        values["vad"] = VadOptions(**values["vad"])
    if "hotwords" in values:
        values["hotwords"] = tuple(values["hotwords"])
    return TranscribeOptions(**values)


@dataclass
class NodeInfo:
    """One machine of a Ray cluster."""

    node_id: str
    name: str
    """Host name, address and the start of the node id, as job files record it."""
    address: str
    alive: bool
    cpus: float
    gpus: float
    head: bool = False


@dataclass
class ClusterInfo:
    """The Ray cluster that batch jobs run on, as far as it could be reached."""

    address: str
    nodes: list[NodeInfo] = field(default_factory=list)
    error: str | None = None
    """Why the cluster could not be reached; None when it answered."""
    running: int = 0
    """Batch-job files this server has running on the cluster now."""
    models: int = 0
    """Models (recogniser workers) this server has loaded on the cluster."""

    @property
    def cpus(self) -> float:
        return sum(n.cpus for n in self.nodes if n.alive)

    @property
    def gpus(self) -> float:
        return sum(n.gpus for n in self.nodes if n.alive)
