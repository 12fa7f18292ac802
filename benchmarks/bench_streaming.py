"""`streaming`: how soon live text appears, through a real `tingji serve` and a real client.

A ``tingji serve`` on a loopback port gets the shared Mandarin clips over FunASR's WebSocket
protocol (mode 2pass) from the ``websockets`` client, at real-time pace: each 60 ms frame is
sent when a microphone would have delivered it. Speech is located in each clip by Silero VAD
(400 ms pauses, no padding), independently of the server; for every utterance the benchmark
reports

- first partial: from the start of speech to the first partial of that utterance (its
  ``hypothesis``, what tingji's Live tab shows);
- first settled: the same to the first partial with settled ``text`` (what FunASR's own
  clients show), counting the final sentence when none came before it;
- final: from the end of the speech to its corrected sentence (2pass-offline); where the
  server cut an utterance in two (``max_utterance_s``), to the last of its sentences,

as median and worst: with one stream and with three at once (the clips in order, the clips
reversed, and the 136 s concatenation), the language given as "zh" (as the other benchmarks
give it); and with one stream over the zh clips, the language detected (FunASR's clients send
none; each clip is a new connection, so each detects again). Accuracy: pooled CER of the live
finals and of the file transcription (same server, ``/api/transcriptions``) against the
references.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks import common
from tingji import audio
from tingji.engine.vad import SAMPLE_RATE, detect_speech
from tingji.scoring import pooled_cer
from tingji.types import VadOptions

NAME = "streaming"
LONG = "long/zh_dev_concat.wav"
FRAME_S = 0.06
SPEECH = VadOptions(min_silence_ms=400, speech_pad_ms=0)
"""Where the speech is: the server's pause length, no padding."""


@dataclass
class Utterance:
    start: float
    end: float
    first_partial: float | None = None
    first_settled: float | None = None
    final: float | None = None


@dataclass
class Streamed:
    clip: str
    utterances: list[Utterance] = field(default_factory=list)
    text: str = ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stream_settings() -> dict[str, str]:
    """``TINGJI_STREAM_*`` settings given to the benchmark, passed on to the server (to
    measure a choice such as ``TINGJI_STREAM_BEAM_SIZE=3``); other ``TINGJI_`` ones are not."""
    return {k: v for k, v in os.environ.items() if k.startswith("TINGJI_STREAM_")}


class Server:
    """``tingji serve`` on 127.0.0.1 with the benchmark's model settings."""

    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        s = common.settings()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TINGJI_")}
        env.update(stream_settings())
        env.update(
            TINGJI_DATA_DIR=str(data_dir),
            TINGJI_MODELS_DIR=str(s.model_cache),
            TINGJI_DEVICE=s.device,
            TINGJI_COMPUTE_TYPE=s.compute_type,
            TINGJI_CPU_THREADS=str(s.cpu_threads),
            TINGJI_BEAM_SIZE=str(s.beam_size),
        )
        self.log = data_dir / "server.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tingji.cli", "serve", "--port", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tingji serve exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"tingji serve not ready:\n{self.log.read_text()}")
            time.sleep(0.2)

    def transcribe(self, clip: common.Clip) -> str:
        with open(clip.path, "rb") as f:
            response = httpx.post(
                f"{self.url}/api/transcriptions",
                files={"file": (Path(clip.path).name, f, "audio/wav")},
                data={"language": "zh"},
                timeout=600,
            )
        response.raise_for_status()
        return str(response.json()["text"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _pcm(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples * 32768), -32768, 32767).astype("<i2").tobytes()


async def stream(url: str, clip: common.Clip, language: str | None) -> Streamed:
    """One clip over one connection at real-time pace; latencies per utterance."""
    import websockets

    samples = audio.load(clip.path)
    spans = detect_speech(samples, SPEECH)
    utterances = [Utterance(s.start / SAMPLE_RATE, s.end / SAMPLE_RATE) for s in spans]
    data = _pcm(samples)
    step = int(FRAME_S * SAMPLE_RATE) * 2
    received: list[tuple[float, dict[str, Any]]] = []
    async with websockets.connect(url, subprotocols=["binary"], ping_interval=None) as ws:
        config = {"mode": "2pass", "wav_name": clip.name, "wav_format": "pcm"}
        config |= {"audio_fs": SAMPLE_RATE, "is_speaking": True, "chunk_size": [5, 10, 5]}
        if language is not None:
            config["language"] = language
        await ws.send(json.dumps(config))
        started = time.monotonic()

        async def listen() -> None:
            while True:
                message = json.loads(await ws.recv())
                received.append((time.monotonic() - started, message))
                if message.get("is_end"):
                    return

        listener = asyncio.create_task(listen())
        for n, i in enumerate(range(0, len(data), step)):
            frame = data[i : i + step]
            # sent when a microphone would have delivered it: at the frame's end
            delay = started + n * FRAME_S + len(frame) / 2 / SAMPLE_RATE - time.monotonic()
            await asyncio.sleep(max(0.0, delay))
            await ws.send(frame)
        await ws.send(json.dumps({"is_speaking": False, "is_end": True}))
        await asyncio.wait_for(listener, 600)
    return _score(clip.name, utterances, received)


def _score(name: str, utterances: list[Utterance], received: list[tuple[float, Any]]) -> Streamed:
    result = Streamed(name, utterances)
    finals: list[tuple[float, Utterance]] = []
    for at, message in received:
        if message.get("mode") != "2pass-offline" or not message.get("text"):
            continue
        result.text += message["text"]
        pairs = json.loads(message.get("timestamp") or "[]")
        if not pairs:
            continue
        start, end = pairs[0][0] / 1000, pairs[-1][1] / 1000
        overlap = [max(0.0, min(end, u.end) - max(start, u.start)) for u in utterances]
        if max(overlap, default=0.0) <= 0:
            continue
        target = utterances[int(np.argmax(overlap))]
        if target.final is None:
            finals.append((at, target))
        # an utterance the server cut in two (max_utterance_s) is done at its last final
        target.final = at - target.end
    previous_final = 0.0
    for final_at, utterance in sorted(finals, key=lambda f: f[0]):
        partials = [
            (at, m)
            for at, m in received
            if m.get("mode") == "2pass-online" and max(utterance.start, previous_final) < at
        ]
        partials = [(at, m) for at, m in partials if at < final_at]
        if partials:
            utterance.first_partial = partials[0][0] - utterance.start
        settled = next((at for at, m in partials if m["text"]), final_at)
        utterance.first_settled = settled - utterance.start
        previous_final = final_at
    return result


async def _worker(url: str, clips: list[common.Clip], language: str | None) -> list[Streamed]:
    return [await stream(url, clip, language) for clip in clips]


def run(url: str, lanes: list[list[common.Clip]], language: str | None = "zh") -> list[Streamed]:
    async def all_lanes() -> list[list[Streamed]]:
        return await asyncio.gather(*(_worker(url, lane, language) for lane in lanes))

    return [s for lane in asyncio.run(all_lanes()) for s in lane]


def _stats(values: list[float | None]) -> tuple[str, str]:
    got = [v for v in values if v is not None]
    if not got:
        return "-", "-"
    return f"{statistics.median(got):.2f}", f"{max(got):.2f}"


def summarise(label: str, streamed: list[Streamed]) -> dict[str, Any]:
    utterances = [u for s in streamed for u in s.utterances if u.final is not None]
    missed = sum(1 for s in streamed for u in s.utterances if u.final is None)
    partial = _stats([u.first_partial for u in utterances])
    settled = _stats([u.first_settled for u in utterances])
    final = _stats([u.final for u in utterances])
    return {
        "label": label,
        "utterances": len(utterances),
        "utterances_without_final": missed,
        "with_partial": sum(1 for u in utterances if u.first_partial is not None),
        "first_partial_median_s": partial[0],
        "first_partial_worst_s": partial[1],
        "first_settled_median_s": settled[0],
        "first_settled_worst_s": settled[1],
        "final_median_s": final[0],
        "final_worst_s": final[1],
        "streams": [
            {"clip": s.clip, "text": s.text, "utterances": [u.__dict__ for u in s.utterances]}
            for s in streamed
        ],
    }


def main() -> dict[str, Any]:
    common.model_dir()
    zh = list(common.clips("zh/"))
    long = next(c for c in common.manifest() if c.name == LONG)
    print(f"[{NAME}] {len(zh)} zh clips and {LONG} at real-time pace, mode 2pass", flush=True)
    if stream_settings():
        print(f"  with {stream_settings()}", flush=True)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tingji-bench-") as tmp:
        server = Server(Path(tmp) / "data")
        try:
            server.wait_ready()
            url = server.url.replace("http://", "ws://")
            server.transcribe(zh[0])  # warm the model up
            one = run(url, [[*zh, long]])
            three = run(url, [zh, list(reversed(zh)), [long]])
            detected = run(url, [zh], language=None)
            files = {c.name: server.transcribe(c) for c in [*zh, long]}
        finally:
            server.stop()
    references = {c.name: c.text for c in [*zh, long]}
    rows, results = [], []
    runs = (("1 stream", one), ("3 streams", three), ("1, detected", detected))
    for label, streamed in runs:
        summary = summarise(label, streamed)
        pairs = [(references[s.clip], s.text) for s in streamed]
        summary["cer_live"] = pooled_cer(pairs)
        summary["cer_file"] = pooled_cer([(references[s.clip], files[s.clip]) for s in streamed])
        summary["cer_live_vs_file"] = pooled_cer([(files[s.clip], s.text) for s in streamed])
        results.append(summary)
        rows.append(
            [
                label,
                f"{summary['utterances']} ({summary['with_partial']} with partial)",
                f"{summary['first_partial_median_s']} / {summary['first_partial_worst_s']}",
                f"{summary['first_settled_median_s']} / {summary['first_settled_worst_s']}",
                f"{summary['final_median_s']} / {summary['final_worst_s']}",
                f"{summary['cer_live']:.3f} / {summary['cer_file']:.3f}",
                f"{summary['cer_live_vs_file']:.3f}",
            ]
        )
    common.print_table(
        f"Live 2pass latency, seconds, median / worst (load average at start {load:.1f})",
        [
            "streams",
            "utterances",
            "first partial",
            "first settled",
            "final after speech end",
            "CER live / file",
            "live vs file",
        ],
        rows,
    )
    payload = {"load_average_at_start": load, "results": results}
    common.save(NAME, payload)
    return payload


if __name__ == "__main__":
    main()
