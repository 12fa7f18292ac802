"""A real ``tingji serve`` process on a loopback port: concurrency, SIGKILL mid-batch, banner.

Traffic goes to 127.0.0.1 only; a server bound to 0.0.0.0 is started only to read its banner.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import shared_clip

SONG = "zh/fireredasr/IT0011W0001.wav"  # 换一首歌, 2.0 s
SHORT = "zh/speechio/e5oipIfM49I__20190201_CCTV_1.wav"  # 1.3 s


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """``python -m tingji.cli serve`` in a subprocess, its output in files under ``logs``."""

    def __init__(
        self,
        data_dir: Path,
        models_dir: Path,
        logs: Path,
        *,
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.port = _free_port(host)
        self.data_dir = data_dir
        https = "--https" in args or "--ssl-certfile" in args
        self.url = f"{'https' if https else 'http'}://127.0.0.1:{self.port}"
        logs.mkdir(parents=True, exist_ok=True)
        tag = f"{int(time.monotonic() * 1000)}-{self.port}"
        self.stdout_path = logs / f"{tag}.out"
        self.stderr_path = logs / f"{tag}.err"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TINGJI_")}
        environment.update(
            TINGJI_DATA_DIR=str(data_dir), TINGJI_MODELS_DIR=str(models_dir), **(env or {})
        )
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tingji.cli",
                    "serve",
                    "--host",
                    host,
                    "--port",
                    str(self.port),
                    *args,
                ],
                env=environment,
                stdout=out,
                stderr=err,
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            assert self.proc.poll() is None, f"server exited:\n{self.stderr}"
            assert time.monotonic() < deadline, f"no {text!r} after {timeout} s:\n{self.stderr}"
            time.sleep(0.1)
        return self.stderr

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"server exited:\n{self.stderr}"
            try:
                # the certificate is checked by the tests that are about it
                answer = httpx.get(f"{self.url}/healthz", timeout=2, verify=False)
                if answer.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"not ready after {timeout} s:\n{self.stderr}"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def get(self, path: str, **kwargs: Any) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=30, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("live")
    live = LiveServer(root / "data", model_cache, root / "logs", env={"TINGJI_MAX_QUEUE": "3"})
    try:
        live.wait_ready()
        yield live
    finally:
        live.stop()


def test_one_transcription(server: LiveServer) -> None:
    assert server.get("/healthz")["status"] == "ok"
    response = httpx.post(
        f"{server.url}/api/transcriptions",
        files={"file": ("歌.wav", shared_clip(SONG).read_bytes(), "audio/wav")},
        data={"language": "zh"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "歌.wav"
    assert "一首歌" in body["text"]
    assert server.get(f"/api/history/{body['id']}")["text"] == body["text"]


def test_concurrent_requests_are_answered(server: LiveServer) -> None:
    clip = shared_clip(SHORT).read_bytes()
    before = server.get("/api/history")["total"]
    barrier = threading.Barrier(8)
    answers: list[httpx.Response | BaseException] = [RuntimeError("no answer")] * 8

    def one(n: int) -> None:
        barrier.wait()
        try:
            answers[n] = httpx.post(
                f"{server.url}/api/transcriptions",
                files={"file": (f"c{n}.wav", clip, "audio/wav")},
                data={"language": "zh"},
                timeout=120,
            )
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            answers[n] = exc

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(130)
    assert time.monotonic() - started < 120
    responses = [a for a in answers if isinstance(a, httpx.Response)]
    assert len(responses) == 8, answers
    codes = sorted(r.status_code for r in responses)
    assert set(codes) <= {200, 503}, [r.text for r in responses]
    assert 200 in codes
    for response in responses:
        assert b"Traceback" not in response.content
        if response.status_code == 503:
            assert int(response.headers["retry-after"]) > 0
            assert response.json()["error"]["code"] == "busy"
        else:
            assert response.json()["text"]
    # each answered request is saved once; a refused one not at all
    assert server.get("/api/history")["total"] == before + codes.count(200)
    assert server.get("/api/system")["queue_length"] == 0


def _wait_job(server: LiveServer, job_id: str, until: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job = server.get(f"/api/jobs/{job_id}")
        if until(job):
            return job
        assert job["status"] in ("queued", "running"), job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def test_sigkill_mid_batch_resumes_without_loss(
    server: LiveServer, model_cache: Path, tmp_path: Path
) -> None:
    """Kills the module's server (so this runs after every other test that uses it)."""
    clip = shared_clip(SONG).read_bytes()
    first = server
    created = httpx.post(
        f"{first.url}/api/jobs",
        files=[("files", (f"m{n}.wav", clip, "audio/wav")) for n in range(4)],
        data={"language": "zh"},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    job = _wait_job(first, job_id, lambda j: j["files_finished"] >= 1)
    assert job["status"] == "running" and job["files_finished"] < 4
    kept = {
        f["position"]: (
            f["transcription_id"],
            first.get(f"/api/history/{f['transcription_id']}")["text"],
        )
        for f in job["files"]
        if f["status"] == "done"
    }
    assert kept
    first.proc.send_signal(signal.SIGKILL)
    assert first.proc.wait(10) == -signal.SIGKILL

    second = LiveServer(first.data_dir, model_cache, tmp_path / "logs")
    try:
        second.wait_ready()
        job = _wait_job(second, job_id, lambda j: j["status"] not in ("queued", "running"))
        assert job["status"] == "done"
        assert [f["status"] for f in job["files"]] == ["done"] * 4
        assert job["files_finished"] == 4
        for position, (entry_id, text) in kept.items():
            assert job["files"][position]["transcription_id"] == entry_id
            assert second.get(f"/api/history/{entry_id}")["text"] == text
        items = second.get("/api/history", params={"page_size": 200})["items"]
        mine = [i for i in items if i["job_id"] == job_id]
        assert len(mine) == 4
        assert sorted(i["id"] for i in mine) == sorted(f["transcription_id"] for f in job["files"])
        assert sorted(i["name"] for i in mine) == ["m0.wav", "m1.wav", "m2.wav", "m3.wav"]
        assert len({i["id"] for i in items}) == len(items)
        assert {i["text"] for i in mine} == {text for _, text in kept.values()}
    finally:
        second.stop()


def test_open_bind_without_keys_warns(tmp_path: Path, model_cache: Path) -> None:
    open_server = LiveServer(
        tmp_path / "open", model_cache, tmp_path / "logs", host="0.0.0.0", args=("--no-auth",)
    )
    try:
        log = open_server.wait_for_log("(API docs at /docs)", timeout=30)
        assert f"WARNING: tingji is listening on 0.0.0.0:{open_server.port} with NO API key" in log
        assert "TINGJI_API_KEYS" in log
    finally:
        open_server.stop()
    assert "WARNING" not in open_server.stdout_path.read_text()

    keyed = LiveServer(
        tmp_path / "keyed",
        model_cache,
        tmp_path / "logs",
        host="0.0.0.0",
        env={"TINGJI_API_KEYS": '["a-long-secret"]'},
    )
    try:
        log = keyed.wait_for_log("(API docs at /docs)", timeout=30)
        assert "NO API key" not in log
    finally:
        keyed.stop()
