"""Two real ``tingji serve`` processes on one PostgreSQL database, each with its own data dir (no
shared disk), on loopback: a job submitted to one runs on either and is visible, exportable and
cancellable from the other; a history entry made on one is found, and its audio played, on the
other. The model is a scripted fake (as in the API tests), slow enough to watch files run."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ROOT, shared_clip
from .pg import PASSWORD

SONG = "zh/fireredasr/IT0011W0001.wav"
SHORT = "zh/speechio/e5oipIfM49I__20190201_CCTV_1.wav"

LAUNCH = r"""
import os, sys, time
import tingji.server
from tingji.engine import manager
from tests.conftest import FakeBackend

node = os.environ["TINGJI_NODE_NAME"]


class Slow(FakeBackend):
    # takes FAKE_DECODE_S per window, and waits while the file FAKE_HOLD exists

    def decode(self, audio, options):
        time.sleep(float(os.environ["FAKE_DECODE_S"]))
        while os.path.exists(os.environ["FAKE_HOLD"]):
            time.sleep(0.05)
        return super().decode(audio, options)


fake = Slow([f"{node}听到的预算会议"])
manager.ModelManager.get = lambda self, model, **kw: fake
create_app = tingji.server.create_app
tingji.server.create_app = lambda settings, service=None: create_app(settings, service, ui=False)
from tingji.cli import main

sys.exit(main(["serve", "--port", sys.argv[1]]))
"""


@dataclass
class Server:
    node: str
    client: httpx.Client
    process: subprocess.Popen[bytes]
    log: Path

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def submit(self, files: list[tuple[str, bytes]]) -> str:
        response = self.client.post(
            "/api/jobs", files=[("files", f) for f in files], data={"language": "zh"}
        )
        assert response.status_code == 201, response.text
        job_id: str = response.json()["id"]
        return job_id

    def wait(self, job_id: str, timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (job := self.job(job_id))["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        return job


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start(node: str, url: str, root: Path) -> Server:
    port = _port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "TINGJI_DATABASE_URL": url,
        "TINGJI_DATA_DIR": str(root / node),
        "TINGJI_MODELS_DIR": str(root / "models"),
        "TINGJI_NODE_NAME": node,
        "TINGJI_WORKERS": "1",
        "TINGJI_JOB_LEASE_S": "3",
        "TINGJI_LOG_LEVEL": "info",
        "FAKE_DECODE_S": "0.5",
        "FAKE_HOLD": str(root / "hold"),
    }
    log = root / f"{node}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, str(port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    return Server(node, client, process, log)


def _ready(server: Server, deadline: float) -> None:
    while True:
        assert server.process.poll() is None, server.log.read_text(errors="replace")
        try:
            if server.client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, server.log.read_text(errors="replace")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def servers(pg_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    url = pg_cluster.new_database()
    root = tmp_path_factory.mktemp("two-servers")
    started = [_start(node, url, root) for node in ("node-a", "node-b")]
    try:
        deadline = time.monotonic() + 120
        for server in started:
            _ready(server, deadline)
            banner = server.log.read_text(errors="replace")
            assert "History, jobs and audio in PostgreSQL postgresql://tingji:***@" in banner
        yield started
    finally:
        for server in started:
            server.client.close()
            server.process.terminate()
        for server in started:
            try:
                server.process.wait(30)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(30)
        for server in started:
            assert PASSWORD not in server.log.read_text(errors="replace")


def _clips() -> list[tuple[str, bytes]]:
    return [
        (f"{n}-{Path(clip).name}", shared_clip(clip).read_bytes())
        for n, clip in enumerate([SONG, SHORT, SONG, SHORT])
    ]


def test_a_job_runs_on_both_and_is_seen_and_exported_from_the_other(
    servers: list[Server],
) -> None:
    a, b = servers
    files = _clips()
    job_id = a.submit(files)
    seen = b.job(job_id)  # at once, on the other server
    assert seen["files_total"] == 4 and seen["status"] in ("queued", "running")
    done = b.wait(job_id)
    assert done["status"] == "done", done
    assert {f["node"] for f in done["files"]} == {"node-a", "node-b"}  # run on either
    export = b.client.get(f"/api/jobs/{job_id}/export", params={"format": "zip"})
    assert export.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(export.content)).namelist()
    assert sum(n.endswith(".txt") for n in names) == 4
    csv = b.client.get(f"/api/jobs/{job_id}/export").text
    assert "node-a听到的预算会议" in csv and "node-b听到的预算会议" in csv
    # every file's audio plays from the server that did not store it
    for server, view in ((b, done), (a, done)):
        for position, file in enumerate(view["files"]):
            audio = server.client.get(f"/api/history/{file['transcription_id']}/audio")
            assert audio.status_code == 200 and audio.content == files[position][1]
    assert job_id in [j["id"] for j in a.client.get("/api/jobs").json()]


def test_an_entry_made_on_one_is_found_on_the_other(servers: list[Server]) -> None:
    a, b = servers
    name, data = _clips()[1]
    made = a.client.post("/api/transcriptions", files={"file": ("甲的录音.wav", data)})
    assert made.status_code == 200, made.text
    entry_id = made.json()["id"]
    for query in ("甲的录", "甲的录音.wav", "听到的预算", "甲"):
        found = b.client.get("/api/history", params={"q": query, "page_size": 200}).json()
        assert entry_id in [item["id"] for item in found["items"]], query
    audio = b.client.get(f"/api/history/{entry_id}/audio")
    assert audio.status_code == 200 and audio.content == data
    assert b.client.delete(f"/api/history/{entry_id}").status_code == 200
    assert a.client.get(f"/api/history/{entry_id}").status_code == 404


def test_a_job_cancelled_on_the_other_server_stops_where_it_runs(servers: list[Server]) -> None:
    a, b = servers
    hold = servers[0].log.parent / "hold"
    hold.touch()  # the file's decode waits until the cancel is made and seen
    try:
        job_id = a.submit(_clips()[:1])
        deadline = time.monotonic() + 30
        while (job := b.job(job_id))["files"][0]["status"] != "running":
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        runs_on = next(s for s in servers if s.node == job["files"][0]["node"])
        other = b if runs_on is a else a
        cancelled = other.client.post(f"/api/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert runs_on.job(job_id)["status"] == "cancelled"
        time.sleep(1.5)  # the running server's heartbeat looks once a second
    finally:
        hold.unlink()
    stopped = f"job {job_id}: stopped 0-IT0011W0001.wav"
    deadline = time.monotonic() + 20
    while stopped not in runs_on.log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the running file was not stopped"
        time.sleep(0.1)
    assert other.job(job_id)["files"][0]["transcription_id"] is None
    # and the server goes on with the next job
    follow = runs_on.submit(_clips()[1:2])
    assert runs_on.wait(follow)["status"] == "done"
