"""Batch jobs through the API: progress, events, export, cancel, limits, history."""

from __future__ import annotations

import csv
import io
import json
import struct
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tingji.config import Settings
from tingji.server.app import create_app

from .conftest import ENGINES, engine_settings, shared_clip, wait_for_job
from .test_server_api import parse_srt

SONG = "zh/fireredasr/IT0011W0001.wav"  # 换一首歌, 1.992 s
SHORT = "zh/speechio/e5oipIfM49I__20190201_CCTV_1.wav"  # 各位观众晚上好, 1.28 s
# An MP3-in-WAV header over bytes that hold no MP3 frame: it opens (so the job takes it, where a
# file that does not even open is refused with the request) and fails when decoded.
_MP3_FMT = struct.pack("<HHIIHHHHIHHH", 0x55, 1, 16000, 16000, 1, 0, 12, 1, 2, 104, 1, 1393)
_NO_FRAMES = bytes(range(256)) * 250
CORRUPT = (
    b"RIFF"
    + struct.pack("<I", 4 + 8 + len(_MP3_FMT) + 8 + len(_NO_FRAMES))
    + b"WAVEfmt "
    + struct.pack("<I", len(_MP3_FMT))
    + _MP3_FMT
    + b"data"
    + struct.pack("<I", len(_NO_FRAMES))
    + _NO_FRAMES
)

CSV_HEADER = [
    "file",
    "status",
    "segment",
    "start",
    "end",
    "text",
    "language",
    "duration",
    "processing_time",
    "error",
    "speaker",
]


@dataclass
class Jobs:
    client: TestClient
    settings: Settings

    def create(self, files: list[tuple[str, bytes]], **form: str) -> dict[str, Any]:
        response = self.client.post(
            "/api/jobs", files=[("files", (name, data)) for name, data in files], data=form
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait(self, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
        return wait_for_job(self.client, job_id, timeout)

    def history_of(self, job_id: str) -> list[dict[str, Any]]:
        items = self.client.get("/api/history", params={"page_size": 200}).json()["items"]
        return [i for i in items if i["job_id"] == job_id]


@pytest.fixture(scope="module", params=ENGINES)
def jobs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model_cache: Path
) -> Iterator[Jobs]:
    """A server with a history on each engine."""
    settings = engine_settings(request, tmp_path_factory.mktemp("jobs") / "data", model_cache)
    with TestClient(create_app(settings, ui=False)) as client:
        yield Jobs(client, settings)


@pytest.fixture(scope="module")
def batch(jobs: Jobs) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two good clips that are both called a.wav, and a corrupt one; (as created, as finished)."""
    created = jobs.create(
        [
            ("meeting/a.wav", shared_clip(SONG).read_bytes()),
            ("news/a.wav", shared_clip(SHORT).read_bytes()),
            ("bad.wav", CORRUPT),
        ],
        language="zh",
    )
    return created, jobs.wait(created["id"])


def test_job_is_created(batch: tuple[dict[str, Any], dict[str, Any]]) -> None:
    created, _ = batch
    assert len(created["id"]) == 16
    assert created["status"] in ("queued", "running")
    assert created["files_total"] == 3
    assert [f["name"] for f in created["files"]] == ["a.wav", "a.wav", "bad.wav"]
    assert [f["size"] for f in created["files"]] == [
        shared_clip(SONG).stat().st_size,
        shared_clip(SHORT).stat().st_size,
        len(CORRUPT),
    ]
    assert [f["position"] for f in created["files"]] == [0, 1, 2]
    assert created["options"]["language"] == "zh"
    assert created["model"] == "base"


def test_job_finishes_with_one_failed_file(batch: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, job = batch
    assert job["status"] == "done"
    assert job["files_finished"] == 3
    assert job["progress"] == 1.0
    assert job["current_file"] is None
    assert job["eta"] == 0.0
    assert job["finished_at"] is not None
    assert job["elapsed"] > 0
    assert job["audio_seconds_done"] == pytest.approx(1.992 + 1.28, abs=0.05)
    good, bad = job["files"][:2], job["files"][2]
    assert [f["status"] for f in good] == ["done", "done"]
    assert [f["duration"] for f in good] == [pytest.approx(1.992, abs=0.01), pytest.approx(1.28)]
    for f in good:
        assert f["error"] is None
        assert f["processing_time"] > 0
        assert isinstance(f["transcription_id"], int)
    assert good[0]["transcription_id"] != good[1]["transcription_id"]
    assert bad["status"] == "failed"
    assert bad["transcription_id"] is None
    assert "damaged" in bad["error"] or "not an audio" in bad["error"], bad["error"]
    assert "/" not in bad["error"]  # no server path


def test_each_finished_file_is_in_history_once(
    jobs: Jobs, batch: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    _, job = batch
    entries = jobs.history_of(job["id"])
    assert sorted(e["id"] for e in entries) == sorted(
        f["transcription_id"] for f in job["files"][:2]
    )
    assert [e["name"] for e in entries] == ["a.wav", "a.wav"]
    song = jobs.client.get(f"/api/history/{job['files'][0]['transcription_id']}").json()
    assert "一首歌" in song["text"]
    assert song["job_id"] == job["id"]
    assert song["options"]["language"] == "zh"


def test_export_csv(jobs: Jobs, batch: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, job = batch
    response = jobs.client.get(f"/api/jobs/{job['id']}/export", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert list(rows[0]) == CSV_HEADER
    for f in job["files"][:2]:
        entry = jobs.client.get(f"/api/history/{f['transcription_id']}").json()
        mine = [r for r in rows if r["text"] in {s["text"] for s in entry["segments"]}]
        assert len(mine) == len(entry["segments"]) >= 1
        for row, segment in zip(mine, entry["segments"], strict=True):
            assert row["file"] == "a.wav"
            assert (row["status"], row["language"], row["error"]) == ("done", "zh", "")
            assert int(row["segment"]) == segment["id"]
            assert float(row["start"]) == pytest.approx(segment["start"], abs=0.001)
            assert float(row["end"]) == pytest.approx(segment["end"], abs=0.001)
            assert float(row["duration"]) == pytest.approx(f["duration"], abs=0.001)
            assert float(row["processing_time"]) == pytest.approx(f["processing_time"], abs=0.001)
    failed = [r for r in rows if r["file"] == "bad.wav"]
    assert len(failed) == 1
    assert failed[0]["status"] == "failed"
    assert (failed[0]["segment"], failed[0]["text"]) == ("", "")
    assert failed[0]["error"] == job["files"][2]["error"]
    assert len(rows) == 1 + sum(
        len(jobs.client.get(f"/api/history/{f['transcription_id']}").json()["segments"])
        for f in job["files"][:2]
    )


def test_export_zip(jobs: Jobs, batch: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, job = batch
    response = jobs.client.get(f"/api/jobs/{job['id']}/export", params={"format": "zip"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == sorted(
        [
            "a.txt",
            "a.srt",
            "a.json",
            "a-2.txt",
            "a-2.srt",
            "a-2.json",
            "bad.error.txt",
            "job.json",
        ]
    )
    for stem, f in (("a", job["files"][0]), ("a-2", job["files"][1])):
        entry = jobs.client.get(f"/api/history/{f['transcription_id']}").json()
        assert archive.read(f"{stem}.txt").decode().strip() == entry["text"]
        cues = parse_srt(archive.read(f"{stem}.srt").decode())
        assert [c[3] for c in cues] == [s["text"] for s in entry["segments"]]
        data = json.loads(archive.read(f"{stem}.json"))
        assert data["text"] == entry["text"]
    assert archive.read("bad.error.txt").decode().startswith("failed: ")
    meta = json.loads(archive.read("job.json"))
    assert (meta["id"], meta["status"]) == (job["id"], "done")
    assert [f["status"] for f in meta["files"]] == ["done", "done", "failed"]


def test_export_rejects_unknown_format(
    jobs: Jobs, batch: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    response = jobs.client.get(f"/api/jobs/{batch[1]['id']}/export?format=pdf")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith(":")]
        if not lines:
            continue  # a keep-alive comment
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        events.append((lines[0][7:], json.loads(lines[1][6:])))
    return events


def test_events_stream_progress(jobs: Jobs) -> None:
    """Progress only grows, and releasing memory mid-job does not break the running file."""
    jobs.client.post("/api/system/release-memory")  # the job's first file loads the model
    job = jobs.create(
        [
            ("x/one.wav", shared_clip(SONG).read_bytes()),
            ("y/two.wav", shared_clip(SHORT).read_bytes()),
        ],
        language="zh",
    )
    total = job["audio_seconds_total"]
    assert total == pytest.approx(1.992 + 1.28, abs=0.01)

    released: list[dict[str, Any]] = []

    def release_while_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            view = jobs.client.get(f"/api/jobs/{job['id']}").json()
            if view["status"] == "running" and view["current_file"]:
                released.append(jobs.client.post("/api/system/release-memory").json())
                return
            time.sleep(0.02)

    helper = threading.Thread(target=release_while_running)
    helper.start()
    with jobs.client.stream("GET", f"/api/jobs/{job['id']}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    helper.join()
    assert released, "never saw the job running"

    events = _events(text)
    assert events[-1] == ("end", {})
    statuses = [data for name, data in events if name == "status"]
    assert [name for name, _ in events[:-1]] == ["status"] * len(statuses)
    progress = [s["progress"] for s in statuses]
    assert progress == sorted(progress), progress
    assert [s["audio_seconds_total"] for s in statuses] == [total] * len(statuses)
    finished = [s["files_finished"] for s in statuses]
    assert finished == sorted(finished)
    last = statuses[-1]
    assert (last["status"], last["progress"], last["files_finished"]) == ("done", 1.0, 2)
    assert [f["status"] for f in last["files"]] == ["done", "done"], last["files"]


def test_cancel(jobs: Jobs) -> None:
    clip = shared_clip(SHORT).read_bytes()
    job = jobs.create([(f"clip{n}.wav", clip) for n in range(6)], language="zh")
    cancelled = jobs.client.post(f"/api/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    time.sleep(1.0)  # a file that was running when cancelled must not finish later
    final = jobs.wait(job["id"])
    assert final["status"] == "cancelled"
    statuses = [f["status"] for f in final["files"]]
    assert statuses.count("done") < 6
    assert statuses.count("cancelled") >= 5
    assert set(statuses) <= {"done", "cancelled"}
    assert len(jobs.history_of(job["id"])) == statuses.count("done")
    assert jobs.client.get("/api/system").json()["queue_length"] == 0
    assert jobs.client.post(f"/api/jobs/{job['id']}/cancel").json()["status"] == "cancelled"


def test_unknown_job_is_404(jobs: Jobs) -> None:
    for method, path in (
        ("GET", "/api/jobs/nosuchjob"),
        ("GET", "/api/jobs/nosuchjob/events"),
        ("GET", "/api/jobs/nosuchjob/export"),
        ("POST", "/api/jobs/nosuchjob/cancel"),
    ):
        response = jobs.client.request(method, path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


def test_jobs_are_listed(jobs: Jobs, batch: tuple[dict[str, Any], dict[str, Any]]) -> None:
    listed = jobs.client.get("/api/jobs").json()
    assert batch[1]["id"] in [j["id"] for j in listed]
    created = [j["created_at"] for j in listed]
    assert created == sorted(created, reverse=True)


def test_too_many_files_is_422(tmp_path: Path, model_cache: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", models_dir=model_cache, max_job_files=2)
    clip = shared_clip(SHORT).read_bytes()
    with TestClient(create_app(settings, ui=False)) as client:
        response = client.post("/api/jobs", files=[("files", (f"{n}.wav", clip)) for n in range(3)])
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "too_many_files"
        assert "3 files" in error["message"] and "2" in error["message"]
        wrong = client.post(
            "/api/jobs", files=[("files", ("a.wav", clip)), ("files", ("notes.txt", b"hi"))]
        )
        assert wrong.status_code == 415
        assert wrong.json()["error"]["file"] == "notes.txt"
        assert client.get("/api/jobs").json() == []
    assert not settings.audio_dir.exists() or list(settings.audio_dir.iterdir()) == []


def test_a_finished_job_is_deleted_and_its_results_stay(jobs: Jobs) -> None:
    created = jobs.create([("one.wav", shared_clip(SHORT).read_bytes())], language="zh")
    jobs.wait(created["id"])
    [entry] = jobs.history_of(created["id"])
    response = jobs.client.delete(f"/api/jobs/{created['id']}")
    assert response.status_code == 200 and response.json() == {"deleted": created["id"]}
    assert jobs.client.get(f"/api/jobs/{created['id']}").status_code == 404
    assert created["id"] not in [j["id"] for j in jobs.client.get("/api/jobs").json()]
    assert jobs.client.get(f"/api/history/{entry['id']}/audio").status_code == 200
    again = jobs.client.delete(f"/api/jobs/{created['id']}")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"


def test_a_running_job_is_deleted_with_the_audio_only_it_used(jobs: Jobs) -> None:
    """Deleting a job stops it: no result of it is saved after, and of its audio only what
    its saved results use is left."""
    before = {p.name for p in jobs.settings.audio_dir.iterdir()}
    clips = [(f"{i}.wav", shared_clip(SONG).read_bytes()) for i in range(6)]
    created = jobs.create(clips, language="zh")
    assert jobs.client.delete(f"/api/jobs/{created['id']}").status_code == 200
    kept = jobs.history_of(created["id"])
    time.sleep(3.0)  # a file that was being recognised stops, and saves nothing
    assert jobs.history_of(created["id"]) == kept
    assert len(kept) < len(clips)
    left = {p.name for p in jobs.settings.audio_dir.iterdir()} - before
    assert len(left) == sum(1 for e in kept if e["has_audio"])


def test_a_very_long_file_name_extracts_from_the_zip(jobs: Jobs, tmp_path: Path) -> None:
    name = "很长的会议录音" * 43 + ".wav"  # 301 characters, 903 bytes
    created = jobs.create([(name, shared_clip(SHORT).read_bytes())], language="zh")
    jobs.wait(created["id"])
    archive = jobs.client.get(f"/api/jobs/{created['id']}/export", params={"format": "zip"})
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        zipped.extractall(tmp_path)
        names = zipped.namelist()
    assert all(len(n.encode()) < 255 for n in names), names
    assert {Path(n).suffix for n in names} == {".txt", ".srt", ".json"}
    assert (tmp_path / names[0]).read_bytes()
