"""Uploads that cannot be recognised leave nothing behind; leftovers are swept at start.

The app runs on a scripted backend (no model): these tests are about what is stored, refused
and removed, not about recognition.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tingji.config import Settings
from tingji.jobs.audio_store import PARTIAL, AudioStore
from tingji.server.app import create_app
from tingji.service import ORPHAN_IDLE_S, Tingji
from tingji.types import ModelInfo, Transcript

from .conftest import FakeBackend, stored_audio, wait_for_job
from .test_audio_limits import CRAFTED, wav

ENDPOINTS = ["/api/transcriptions", "/api/jobs", "/v1/audio/transcriptions"]


@dataclass
class App:
    client: TestClient
    service: Tingji
    settings: Settings

    @property
    def stored(self) -> list[str]:
        return stored_audio(self.settings)

    def post(self, path: str, name: str, data: bytes) -> httpx.Response:
        field = "files" if path == "/api/jobs" else "file"
        return self.client.post(path, files=[(field, (name, data, "audio/wav"))])

    def wait(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        return wait_for_job(self.client, job_id, timeout)

    def nothing_left(self) -> None:
        assert self.stored == []
        jobs = self.client.get("/api/jobs")
        assert jobs.status_code == 200
        assert jobs.json() == []
        assert self.client.get("/api/history").json()["items"] == []


def _service(settings: Settings) -> Tingji:
    service = Tingji(settings)
    backend = FakeBackend(["好"])
    service.backend = lambda model=None: backend  # type: ignore[method-assign]
    return service


def _app(settings: Settings) -> Iterator[App]:
    service = _service(settings)
    app = create_app(settings, service, ui=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield App(client, service, settings)


@pytest.fixture
def api(settings: Settings) -> Iterator[App]:
    yield from _app(settings)


@pytest.fixture
def capped(tmp_path: Path, model_cache: Path) -> Iterator[App]:
    """An app that takes no audio longer than 3.6 s (``max_audio_hours=0.001``)."""
    settings = Settings(data_dir=tmp_path / "data", models_dir=model_cache, max_audio_hours=0.001)
    yield from _app(settings)


def _error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_crafted_header_is_refused_and_leaves_nothing(api: App, path: str, kind: str) -> None:
    name = f"{kind}.wav"
    response = api.post(path, name, CRAFTED[kind])
    assert 400 <= response.status_code < 500, response.text
    error = _error(response)
    assert name in error["message"]
    assert "/" not in error["message"]  # no server path
    if not path.startswith("/v1"):
        assert error["file"] == name
        assert error["code"] == "bad_audio"
    api.nothing_left()


@pytest.mark.parametrize("path", ENDPOINTS)
def test_one_hertz_header_is_refused_before_decoding(api: App, path: str) -> None:
    response = api.post(path, "slow.wav", wav(rate=1, data=bytes(64)))
    assert response.status_code == 400, response.text
    message = _error(response)["message"]
    assert "1 Hz" in message and "not decoded" in message
    api.nothing_left()


def test_one_bad_file_refuses_the_whole_job(api: App) -> None:
    good = wav(seconds=1.0)
    response = api.client.post(
        "/api/jobs",
        files=[
            ("files", ("good.wav", good, "audio/wav")),
            ("files", ("bad.wav", CRAFTED["format_tag_0x1234"], "audio/wav")),
        ],
    )
    assert response.status_code == 400
    assert _error(response)["file"] == "bad.wav"
    api.nothing_left()


@pytest.mark.parametrize("path", ["/api/transcriptions", "/v1/audio/transcriptions"])
def test_audio_over_the_length_limit_is_413(capped: App, path: str) -> None:
    response = capped.post(path, "long.wav", wav(seconds=10.0))
    assert response.status_code == 413, response.text
    error = _error(response)
    assert error["code"] == "audio_too_long"
    assert "3.6 s limit" in error["message"]
    assert "long.wav" in error["message"]
    capped.nothing_left()


def test_audio_within_the_length_limit_is_recognised(capped: App) -> None:
    response = capped.post("/api/transcriptions", "short.wav", wav(seconds=2.0))
    assert response.status_code == 200, response.text


def test_job_file_over_the_length_limit_fails_and_its_audio_goes(capped: App) -> None:
    response = capped.client.post(
        "/api/jobs",
        files=[
            ("files", ("long.wav", wav(seconds=10.0), "audio/wav")),
            ("files", ("short.wav", wav(seconds=2.0), "audio/wav")),
        ],
    )
    assert response.status_code == 201, response.text
    job = capped.wait(response.json()["id"])
    long, short = job["files"]
    assert long["status"] == "failed"
    assert "3.6 s limit" in long["error"]
    assert short["status"] == "done"
    done = capped.service.history.get_job(job["id"])
    assert done is not None
    kept = [f.audio_file for f in done.files]
    assert kept[0] is None  # the failed file's audio is forgotten ...
    assert capped.stored == [kept[1]]  # ... and deleted; the done file's stays (keep)


def test_failed_job_file_audio_is_deleted(api: App) -> None:
    truncated = wav(seconds=1.0, data_size=10 * 32000)  # declares 10 s, holds 1 s
    response = api.post("/api/jobs", "cut.wav", truncated)
    assert response.status_code == 201, response.text
    job = api.wait(response.json()["id"])
    assert job["files"][0]["status"] == "failed"
    assert "truncated" in job["files"][0]["error"]
    assert api.stored == []
    stored = api.service.history.get_job(job["id"])
    assert stored is not None and stored.files[0].audio_file is None


def _backdate(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_leftover_uploads_are_swept_at_start(settings: Settings) -> None:
    folder = settings.audio_dir
    folder.mkdir(parents=True)
    service = _service(settings)
    old = ORPHAN_IDLE_S + 60
    names = {
        "orphan": "20240101-" + "a" * 32 + ".wav",
        "partial": "20240101-" + "b" * 32 + ".wav" + PARTIAL,
        "fresh_orphan": "20240101-" + "c" * 32 + ".wav",
        "fresh_partial": "20240101-" + "d" * 32 + ".wav" + PARTIAL,
        "in_history": "20240101-" + "e" * 32 + ".wav",
        "in_job": "20240101-" + "f" * 32 + ".wav",
    }
    for key, name in names.items():
        (folder / name).write_bytes(b"x")
        if not key.startswith("fresh"):
            _backdate(folder / name, old)
    transcript = Transcript(
        text="好",
        segments=[],
        language="zh",
        language_probability=1.0,
        duration=1.0,
        processing_time=0.1,
        model=ModelInfo("fake", "fake", "-", "cpu", "float32", "test"),
    )
    service.history.add_transcription(
        transcript, name="a.wav", options={}, audio_file=names["in_history"]
    )
    service.history.create_job(
        "job1", [("b.wav", names["in_job"], 1)], options={"language": "zh"}, model="fake"
    )
    service.history.cancel_job("job1")  # so that the runner leaves it alone
    app = create_app(settings, service, ui=False)
    with TestClient(app):
        left = sorted(p.name for p in folder.iterdir())
    expected = ["fresh_orphan", "fresh_partial", "in_history", "in_job"]
    assert left == sorted(names[key] for key in expected)


def test_an_upload_is_written_as_part_and_renamed(tmp_path: Path) -> None:
    store = AudioStore(tmp_path, max_bytes=1 << 20)
    seen: list[list[str]] = []

    class Watching(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            seen.append(sorted(p.name for p in tmp_path.iterdir()))
            return super().read(size)

    stored = store.save(Watching(b"RIFF" + bytes(100)), "a.wav")
    assert seen[0] == [stored.file + PARTIAL]  # while it is being written
    assert sorted(p.name for p in tmp_path.iterdir()) == [stored.file]


def test_a_cut_off_upload_leaves_no_part(tmp_path: Path) -> None:
    store = AudioStore(tmp_path, max_bytes=10)
    with pytest.raises(Exception, match="limit"):
        store.save(io.BytesIO(bytes(100)), "a.wav")
    assert list(tmp_path.iterdir()) == []
