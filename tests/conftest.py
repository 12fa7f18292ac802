"""Shared fixtures: real speech from ../shared/audio and one real model per test session."""

from __future__ import annotations

import json
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tingji.audio import load
from tingji.config import Settings
from tingji.jobs.storage import Storage
from tingji.service import Tingji
from tingji.types import SpeakerTurn

from . import NETWORK
from .pg import Cluster, pg_cluster  # noqa: F401 - a fixture


def pytest_report_header(config: pytest.Config) -> str:
    return f"network: {NETWORK}"


ROOT = Path(__file__).resolve().parents[1]
SR = 16000
A1 = "zh/fireredasr/BAC009S0764W0121.wav"  # speaker S0764
A2 = "zh/s3tokenizer/BAC009S0764W0122.wav"  # S0764 again, another sentence
B = "zh/mossttsd/zh_spk1_moon.wav"  # another speaker
SHARED_AUDIO = ROOT.parent / "shared" / "audio"


def shared_clip(relative: str) -> Path:
    """A clip from ../shared/audio, or a skip that says why."""
    path = SHARED_AUDIO / relative
    if not path.is_file():
        pytest.skip(f"shared speech {path} is absent (tests use ../shared/audio beside the repo)")
    return path


def manifest() -> list[dict[str, Any]]:
    path = SHARED_AUDIO / "manifest.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is absent: the shared speech clips sit beside the repository")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One assembled embedded model for the whole session."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def settings(tmp_path: Path, model_cache: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", models_dir=model_cache)


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:  # noqa: F811 - the fixture imported above
    """A new empty PostgreSQL database of the session's cluster."""
    return pg_cluster.new_database()


ENGINES = ["sqlite", "postgres"]
"""The params of a fixture that sets a test up on each database engine."""


def engine_settings(request: pytest.FixtureRequest, data_dir: Path, models_dir: Path) -> Settings:
    """In a fixture parametrized over :data:`ENGINES`: settings with a history on SQLite (in
    ``data_dir``) or in a new PostgreSQL database."""
    url = None
    if request.param != "sqlite":
        cluster: Cluster = request.getfixturevalue("pg_cluster")
        url = cluster.new_database()
    return Settings(data_dir=data_dir, models_dir=models_dir, database_url=url)


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A test's history database, once on each engine: a SQLite file or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "history.db")
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def open_storage(database: str) -> Iterator[Callable[[], Storage]]:
    """Opens the test's database (again: another connection, as another server has); all
    closed after the test."""
    opened: list[Storage] = []

    def open_one() -> Storage:
        opened.append(Storage(database))
        return opened[-1]

    yield open_one
    for storage in opened:
        storage.close()


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Tingji]:
    """The real embedded model, loaded once per session."""
    data = tmp_path_factory.mktemp("data")
    tingji = Tingji(Settings(data_dir=data, models_dir=model_cache))
    yield tingji
    tingji.models.unload()


def stored_audio(settings: Settings) -> list[str]:
    """The names of the uploads in the audio store, sorted."""
    folder = settings.audio_dir
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def wait_for_job(client: Any, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll ``GET /api/jobs/{id}`` until the job is no longer queued or running."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        time.sleep(0.05)


class FakeBackend:
    """A backend that answers every window with scripted text, for tests that need no model.

    ``texts`` are handed out one per decode call (the last one repeats).
    """

    def __init__(self, texts: list[str], language: str = "zh") -> None:
        from tingji.types import ModelInfo

        self.texts = texts
        self.language = language
        self.calls: list[Any] = []
        self.info = ModelInfo("fake", "fake", "-", "cpu", "float32", "test")

    def languages(self) -> frozenset[str]:
        return frozenset({"zh", "en", "ja", "yue"})

    def detect_language(self, audio: Any) -> tuple[str, float]:
        return self.language, 0.99

    def decode(self, audio: Any, options: Any) -> Any:
        from tingji.engine.backend import Decoded, Piece

        self.calls.append(options)
        text = self.texts[min(len(self.calls) - 1, len(self.texts) - 1)]
        seconds = len(audio) / 16000
        return Decoded([Piece(0.0, seconds, text)], options.language or self.language, 0.99)

    def decode_many(self, clips: Any, options: Any) -> list[Any]:
        return [self.decode(clip, options) for clip in clips]

    def close(self) -> None:
        pass


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """16-bit mono 16 kHz WAV."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SR)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SpeakerTurn]]:
    """A (S0764) – B (moon) – A: a WAV file and its reference turns."""
    parts, turns, at = [], [], 0.0
    for speaker, clip in (("A", A1), ("B", B), ("A", A2)):
        samples = load(shared_clip(clip))
        parts += [samples, np.zeros(int(0.7 * SR), np.float32)]
        turns.append(SpeakerTurn(at, at + len(samples) / SR, speaker))
        at += len(samples) / SR + 0.7
    path = tmp_path_factory.mktemp("talk") / "talk.wav"
    return write_wav(path, np.concatenate(parts)), turns
