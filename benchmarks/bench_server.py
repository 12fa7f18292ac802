"""Requests per minute and latency of the HTTP API under 1 and 4 concurrent clients, beside a
plain FastAPI endpoint calling faster-whisper in a threadpool, both live on loopback ports.

Clips: the Mandarin clips of 8–28 s from ../shared/audio. Each client sends its share of a fixed
list of requests back to back; requests/min = requests / wall time.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks import common

REQUESTS = 12
CLIENTS = (1, 4)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(argv: list[str], port: int, env: dict[str, str]) -> Iterator[str]:
    proc = subprocess.Popen(
        argv, cwd=common.REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise RuntimeError(f"{argv} did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def _load(url: str, path: str, clips: list[common.Clip], clients: int) -> dict[str, Any]:
    jobs = [clips[i % len(clips)] for i in range(REQUESTS)]
    latencies: list[float] = []
    statuses: list[int] = []

    def one(clip: common.Clip) -> None:
        started = time.perf_counter()
        with open(clip.path, "rb") as handle:
            response = httpx.post(
                f"{url}{path}",
                files={"file": (Path(clip.path).name, handle)},
                data={"language": "zh"},
                timeout=600,
            )
        latencies.append(time.perf_counter() - started)
        statuses.append(response.status_code)

    one(clips[0])  # warm: model loaded, first-request costs paid
    latencies.clear()
    statuses.clear()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, jobs))
    wall = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": len(jobs),
        "ok": statuses.count(200),
        "requests_per_min": len(jobs) / wall * 60,
        "p50_s": statistics.median(latencies),
        "worst_s": max(latencies),
    }


def _single(url: str, path: str, clip: common.Clip) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        with open(clip.path, "rb") as handle:
            httpx.post(
                f"{url}{path}",
                files={"file": ("a.wav", handle)},
                data={"language": "zh"},
                timeout=600,
            ).raise_for_status()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> dict[str, Any]:
    clips = [c for c in common.clips("zh/") if 8 <= c.duration <= 28]
    short = min((c for c in clips), key=lambda c: abs(c.duration - 8))
    common.model_dir()  # assemble the model before both servers read it
    env = dict(
        os.environ,
        TINGJI_DATA_DIR=str(common.REPO / "data" / "bench-server"),
        TINGJI_MODELS_DIR=str(common.settings().model_cache),
        TINGJI_COMPUTE_TYPE=common.CPU_COMPUTE_TYPE,
        TINGJI_CPU_THREADS=str(common.THREADS),
        TINGJI_BEAM_SIZE=str(common.BEAM_SIZE),
        TINGJI_MAX_QUEUE="16",
    )
    results: dict[str, Any] = {"clips": [c.name for c in clips], "short_clip": short.name}
    sides = {
        "tingji": ([sys.executable, "-m", "tingji.cli", "serve"], "/api/transcriptions"),
        "plain": ([sys.executable, "-m", "benchmarks.baseline_server"], "/transcribe"),
    }
    for side, (argv, path) in sides.items():
        port = _free_port()
        full = [*argv, "--port", str(port)] if side == "tingji" else [*argv, str(port)]
        with _server(full, port, env) as url:
            results[side] = {
                "short_clip_s": _single(url, path, short),
                "load": [_load(url, path, clips, n) for n in CLIENTS],
            }
    rows = []
    for side in sides:
        for run in results[side]["load"]:
            base = next(r for r in results["plain"]["load"] if r["clients"] == run["clients"])
            rows.append(
                [
                    side,
                    str(run["clients"]),
                    f"{run['requests_per_min']:.1f}",
                    f"{run['requests_per_min'] / base['requests_per_min']:.2f}×",
                    f"{run['p50_s']:.1f}",
                    f"{run['worst_s']:.1f}",
                    f"{run['ok']}/{run['requests']}",
                ]
            )
    common.print_table(
        f"HTTP API, {REQUESTS} requests of Mandarin clips 8–28 s",
        ["server", "clients", "req/min", "vs plain", "p50 s", "worst s", "ok"],
        rows,
    )
    print(
        f"\n{short.name} ({short.duration:.1f} s) alone: tingji "
        f"{results['tingji']['short_clip_s']:.2f} s, plain {results['plain']['short_clip_s']:.2f} s"
    )
    common.save("server", results)
    return results
