"""Settings, read from ``TINGJI_*`` environment variables (nested with ``__``) or given in code.

A :class:`Settings` object is passed in to whatever needs it; there is no module-level
singleton. ``TINGJI_DATA_DIR=/srv/tingji tingji serve`` or ``Settings(data_dir=tmp_path)``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tingji.paths import user_home
from tingji.types import VadOptions

DEFAULT_MODEL = "base"
"""The embedded Whisper base model, assembled from PyPI packages; needs no network."""


class VadSettings(BaseModel):
    """Defaults for cutting audio at speech pauses (each request may override them)."""

    enabled: bool = True
    """Split audio at pauses before recognition. Default on."""
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    """Silero speech probability above which audio counts as speech. Default 0.5."""
    min_silence_ms: int = Field(default=500, ge=0)
    """A pause at least this long ends a segment, in milliseconds. Default 500."""
    max_segment_s: float = Field(default=30.0, gt=1.0, le=600.0)
    """Longest segment before it is cut at its longest inner pause, in seconds. Default 30."""
    speech_pad_ms: int = Field(default=200, ge=0)
    """Audio kept on each side of a segment, in milliseconds. Default 200."""

    def to_options(self) -> VadOptions:
        return VadOptions(**self.model_dump())


class Settings(BaseSettings):
    """Everything an operator can set.

    Environment: ``TINGJI_<FIELD>``; nested fields as ``TINGJI_VAD__THRESHOLD``.
    """

    model_config = SettingsConfigDict(env_prefix="TINGJI_", env_nested_delimiter="__")

    data_dir: Path = Path("data")
    """Where history, uploads and live recordings live. Default ``./data``."""
    models_dir: Path | None = None
    """Model cache, shared by the CLI and the server; default ``$TINGJI_HOME/models`` or
    ``~/.cache/tingji/models``."""
    model: str = DEFAULT_MODEL
    """Model to load: ``base`` (embedded), a Whisper size name (``tiny`` … ``large-v3``,
    ``large-v3-turbo``, needs network once) or a local CTranslate2 model directory."""
    extra_models: list[str] = Field(default_factory=list)
    """More models (names or local directories) that API and UI users may choose."""
    allow_model_downloads: bool = False
    """Let API and UI users choose catalogue models that are not on this machine yet, which
    downloads them (gigabytes) on first use. Default off: clients choose among ``model``,
    ``extra_models`` and the models already downloaded."""
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    """``auto`` picks CUDA, then MPS where the backend supports it, then CPU."""
    compute_type: str = "auto"
    """CTranslate2 compute type; ``auto`` is float16 on CUDA and the measured choice on CPU."""
    cpu_threads: int = Field(default=0, ge=0)
    """Threads for CPU inference; 0 uses every core. Whisper runs as two replicas with half
    the threads each, decoding two batches at once."""
    decode_window: Literal["fit", "full"] = "fit"
    """How much silence each utterance is decoded with: ``fit`` pads it to its own length plus
    3 s, in 5 s steps (as accurate as ``full`` on the shared clips, about twice as fast);
    ``full`` gives every utterance Whisper's whole 30 s window, as plain faster-whisper pads
    one. Either way a file's text never depends on what it was batched with. Default fit."""
    beam_size: int = Field(default=5, ge=1, le=20)
    """Beam width for decoding. Default 5."""
    language: str | None = None
    """Default language code (``zh``, ``en`` …); unset means detect per file."""
    itn: bool = True
    """Inverse text normalisation (二零二五年 → 2025年) by default. Default on."""
    script: Literal["simplified", "traditional", "original"] = "simplified"
    """Chinese script of the output. Default simplified."""
    vad: VadSettings = VadSettings()

    host: str = "127.0.0.1"
    """Address ``tingji serve`` binds to (``make run`` uses 0.0.0.0). Default 127.0.0.1."""
    port: int = Field(default=7860, ge=1, le=65535)
    """HTTP port. Default 7860."""
    api_keys: list[str] = Field(default_factory=list)
    """Keys accepted as ``Authorization: Bearer KEY`` or ``X-API-Key``; empty = no auth.
    Environment: a JSON list, ``TINGJI_API_KEYS='["k1","k2"]'``."""
    ui_username: str = "admin"
    """User name of the web UI login (asked for only when a password or API key is set).
    Default ``admin``."""
    ui_password: str | None = None
    """Password of the web UI; unset means any API key logs in, and with no keys either the UI
    asks for no login. Default unset."""
    access_token: str | None = None
    """Token accepted like an API key, and by browsers as ``/?token=TOKEN`` (then kept in a
    cookie). ``tingji serve`` on a non-loopback address with no API key or UI password makes one
    in ``<data_dir>/access-token``. Default unset."""
    no_auth: bool = False
    """Let ``tingji serve`` listen beyond loopback with no token, key or password
    (``--no-auth``): anyone who reaches the port gets in. Default off."""
    https: bool = False
    """Serve https (``--https``); with no certificate given, a self-signed one is made once in
    ``<data_dir>/tls``. Browsers allow the microphone only on https or localhost. Default off."""
    ssl_certfile: Path | None = None
    """PEM certificate (with its chain) to serve https with; implies ``https``. Default unset."""
    ssl_keyfile: Path | None = None
    """PEM private key of ``ssl_certfile``, unless that file holds the key too. Default unset."""
    max_upload_mb: float = Field(default=500.0, gt=0)
    """Largest accepted upload, in MiB. Default 500."""
    max_job_files: int = Field(default=50, ge=1)
    """Most files in one batch job. Default 50."""
    max_audio_hours: float = Field(default=12.0, gt=0)
    """Longest audio accepted, in hours: a file whose header declares more is refused before
    decoding (413), and decoding stops once it has produced more (a job's file then fails).
    Default 12."""
    workers: int = Field(default=8, ge=1, le=32)
    """Recognitions run at once, for API requests and for the files of batch jobs each. They
    share one model per device, whose decodes of all of them run in batches. Default 8."""
    max_queue: int = Field(default=8, ge=0)
    """Requests allowed to wait for a worker; beyond that the API answers 503. Default 8."""
    stream_max_seconds: float = Field(default=3600.0, gt=0)
    """Longest live (WebSocket) stream, in seconds of audio; it is then ended. Default 3600."""
    stream_max_sessions: int = Field(default=8, ge=1)
    """Live streams served at once; more are refused as busy. Default 8."""
    stream_idle_s: float = Field(default=60.0, gt=0)
    """A live connection that sends nothing for this long is closed, in seconds. Default 60."""
    stream_max_wall_s: float | None = Field(default=None, gt=0)
    """Longest a live stream may stay open, in wall-clock seconds, however little it sends;
    unset: ``stream_max_seconds`` + 300."""
    stream_min_rate: float = Field(default=0.5, ge=0.0, le=1.0)
    """Least audio a live stream must send, in seconds of audio per second, over each
    ``stream_rate_window_s``; a slower stream is ended, so that trickling clients cannot hold
    the slots. Clients send in real time (1.0). 0 turns the rule off. Default 0.5."""
    stream_rate_window_s: float = Field(default=30.0, gt=0)
    """Wall-clock seconds over which ``stream_min_rate`` is measured. Default 30."""
    stream_min_silence_ms: int = Field(default=400, ge=100)
    """In live recognition, a pause this long ends a sentence, in milliseconds (files use
    ``vad.min_silence_ms``). Default 400."""
    stream_beam_size: int | None = Field(default=None, ge=1, le=20)
    """Beam width of the decode that finishes a live sentence; unset: ``beam_size``. A smaller
    beam brings the corrected sentence sooner, at a little accuracy."""
    stream_partial_interval_s: float = Field(default=0.7, gt=0)
    """Seconds of audio between two partial decodes of a live utterance. Default 0.7."""
    diarization_dir: Path | None = None
    """Where the speaker-diarization weights are kept; default ``$TINGJI_HOME/diarization``
    or ``~/.cache/tingji/diarization``."""
    diarization_fetch: bool = True
    """Fetch the diarization weights (about 21 MB) from the Python package index on first
    use when they are missing. Default on; off on a machine that must not reach out."""
    voice_match: float = Field(default=0.8, ge=0.0, le=1.0)
    """Cosine similarity above which a speaker is named after a known voice. Default 0.8."""
    audio_retention: str = "keep"
    """Uploaded audio: ``keep``, ``delete`` (after recognition) or ``<N>d`` (keep N days)."""
    database_url: SecretStr | None = None
    """Where history, jobs, their files, hotword lists and voices live: unset, the embedded
    SQLite file ``<data_dir>/history.db``; ``postgresql://USER:PASSWORD@HOST:5432/DB`` for a
    PostgreSQL database that several ``tingji serve`` share (one history, one job queue; the
    uploaded audio is kept there too). Needs ``pip install 'tingji[scale]'``. Never shown with
    its password. Default unset."""
    database_pool_size: int = Field(default=10, ge=1, le=200)
    """Most connections one server opens to PostgreSQL. Default 10."""
    database_timeout_s: float = Field(default=10.0, gt=0)
    """How long to wait for PostgreSQL: to connect, or for a free pooled connection, in
    seconds. Default 10."""
    job_lease_s: float = Field(default=60.0, ge=3.0)
    """A running job file's claim lasts this long unless renewed (every third of it, while
    the file runs), in seconds; a file whose server died goes back to the queue after it.
    Default 60."""
    node_name: str | None = Field(default=None, max_length=200)
    """This server's name in the ``node`` of the job files it runs; default the host name."""
    ray_address: str | None = None
    """A Ray cluster to recognise batch-job files on: ``auto`` (the cluster this machine
    joined with ``ray start``), ``HOST:PORT`` (the head node's port, 6379 by default) or
    ``ray://HOST:10001`` (Ray Client). Each node runs its own models; results come back to
    this server's database. Unset: files are recognised in this process. Needs
    ``pip install 'tingji[scale]'`` here and on every node. Default unset."""
    ray_cpus_per_model: float = Field(default=4.0, gt=0)
    """CPU cores each model gets on a cluster node without a GPU: a node with 16 cores runs
    4 models at 4 threads each. A node with a GPU runs one model per GPU. Default 4."""
    ray_files_per_model: int | None = Field(default=None, ge=1, le=32)
    """Files one model on the cluster works on at once (their decodes share batches); unset:
    4 on a GPU, 1 on CPU cores."""
    ray_max_running: int = Field(default=64, ge=1, le=1024)
    """Most batch-job files running on the cluster at once, whatever its size. Default 64."""
    ray_max_attempts: int = Field(default=3, ge=1, le=20)
    """Times a file is started on the cluster when the worker or node running it dies, before
    the file fails. Default 3."""
    ray_audio: Literal["object_store", "shared"] = "object_store"
    """How a file's audio reaches a node: ``object_store`` sends its bytes through Ray's object
    store (no shared filesystem needed); ``shared``: every node mounts ``data_dir`` at the
    same path and reads the file there. Default object_store."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Least severe log records ``tingji serve`` writes; ``warning`` keeps only failures.
    Default info."""
    access_log: Literal["api", "all"] = "api"
    """Requests logged: ``api``, one line per API request and one per failure elsewhere (not
    the web UI's assets and polling); ``all``, every HTTP request. Default api."""

    @field_validator("audio_retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        if value in ("keep", "delete") or re.fullmatch(r"[1-9][0-9]*d", value):
            return value
        raise ValueError("audio_retention must be keep, delete or a number of days like 30d")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        scheme = value.get_secret_value().split("://", 1)[0].lower()
        if scheme not in ("postgresql", "postgres") or "://" not in value.get_secret_value():
            raise ValueError("database_url must be a postgresql://USER:PASSWORD@HOST/DB URL")
        return value

    @property
    def database_shown(self) -> str:
        """The database in use, as shown to people: its password hidden."""
        if self.database_url is None:
            return f"SQLite {self.database}"
        return f"PostgreSQL {mask_url(self.database_url.get_secret_value())}"

    @property
    def stream_wall_limit_s(self) -> float:
        """Wall-clock seconds a live stream may stay open."""
        if self.stream_max_wall_s is not None:
            return self.stream_max_wall_s
        return self.stream_max_seconds + 300.0

    @property
    def retention_days(self) -> int | None:
        return int(self.audio_retention[:-1]) if self.audio_retention.endswith("d") else None

    @property
    def accepted_keys(self) -> list[str]:
        """The API keys and the access token: any one of them lets a client in."""
        return [*self.api_keys, *([self.access_token] if self.access_token else [])]

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def database(self) -> Path:
        return self.data_dir / "history.db"

    @property
    def temp_dir(self) -> Path:
        """Private scratch space (mode 0700); the web UI's uploads and downloads are in ``ui``."""
        return self.data_dir / "tmp"

    @property
    def model_cache(self) -> Path:
        return self.models_dir if self.models_dir is not None else user_home() / "models"


def mask_url(url: str) -> str:
    """The URL with its password (in the user part, or a ``password=`` parameter) hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://***"
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        if ":" in user:
            user = user.split(":", 1)[0] + ":***"
        netloc = f"{user}@{host}"
    query = "&".join(
        "password=***" if item.lower().startswith("password=") else item
        for item in parts.query.split("&")
        if item
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
