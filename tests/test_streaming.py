"""Live recognition over FunASR's WebSocket protocol, with the real model on shared speech.

Clips are streamed as 60 ms PCM frames, at real-time pace or as fast as possible, through
Starlette's test client (one test goes through a real ``tingji serve`` with the ``websockets``
client); the final text is compared with what the file transcription of the same clip gives.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from tingji import audio
from tingji.engine.live_text import plain, settle, shown_end
from tingji.engine.online import PAUSE_WINDOWS, DecodeGate, OnlineRecognizer, StreamOptions
from tingji.engine.streaming import Final, Partial, Resampler
from tingji.scoring import cer
from tingji.server.app import create_app
from tingji.server.funasr_wire import Shaper, hotwords_field, stamps
from tingji.service import Tingji
from tingji.types import Segment, TranscribeOptions

from .conftest import FakeBackend, shared_clip

MEETING = "zh/funasr/asr_example_zh.wav"  # 欢迎大家来体验达摩院推出的语音识别模型, 5.5 s
MEETING_TEXT = "欢迎大家来体验达摩院推出的语音识别模型"
HALT = "zh/fireredasr/BAC009S0764W0121.wav"  # 甚至出现交易几乎停滞的情况, 4.2 s
SONG = "zh/fireredasr/IT0011W0001.wav"  # 换一首歌, 2.0 s
SHORT = "zh/speechio/e5oipIfM49I__20190201_CCTV_1.wav"  # 各位观众晚上好, 1.3 s
LIVE = "zh/mossttsd/zh_spk2_moon.wav"  # 如果大家想听到更丰富更及时的直播内容…, 8.6 s
FRAME_S = 0.06  # FunASR's clients send 60 ms per frame
PARTIAL_KEYS = {"mode", "wav_name", "text", "is_final"}
FINAL_KEYS = PARTIAL_KEYS | {"timestamp", "stamp_sents"}


# -- helpers ---------------------------------------------------------------------------------
@cache
def samples(clip: str) -> np.ndarray:
    return audio.load(shared_clip(clip))


def pcm(clip: str, rate: int = 16000) -> bytes:
    """The clip as s16le mono PCM at ``rate``."""
    import av

    ints = np.clip(np.round(samples(clip) * 32768), -32768, 32767).astype("<i2")  # as stored
    if rate == 16000:
        return ints.tobytes()
    frame = av.AudioFrame.from_ndarray(ints.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 16000
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    out = [*resampler.resample(frame), *resampler.resample(None)]
    return b"".join(bytes(f.to_ndarray().astype("<i2").tobytes()) for f in out)


@cache
def file_text(service: Tingji, clip: str) -> str:
    return service.transcribe(str(shared_clip(clip))).text


def config(**overrides: Any) -> str:
    message = {
        "mode": "2pass",
        "wav_name": "demo",
        "wav_format": "pcm",
        "audio_fs": 16000,
        "is_speaking": True,
        "chunk_size": [5, 10, 5],
        "chunk_interval": 10,
        "hotwords": "",
        "itn": True,
    }
    return json.dumps(message | overrides, ensure_ascii=False)


@dataclass
class Run:
    messages: list[dict[str, Any]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)
    """Seconds from the first audio frame to each message."""
    end_sent: float = 0.0
    close_code: int | None = None

    def of(self, *modes: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("mode") in modes]

    @property
    def final_text(self) -> str:
        return "".join(m["text"] for m in self.of("offline", "2pass-offline"))


def converse(
    ws: Any,
    data: bytes,
    *,
    rate: int = 16000,
    pace: float = 0.0,
    first: str | None = None,
    end: bool = True,
    frame: float = FRAME_S,
) -> Run:
    """Send a configuration, the PCM in ``frame`` seconds a frame (``pace`` 1 = real time, 0 =
    at once) and the end frame; collect every message until the one with ``is_end`` (or a
    close)."""
    run = Run()
    started = time.monotonic()
    done = threading.Event()

    def read() -> None:
        while True:
            message = ws.receive()
            if message["type"] == "websocket.close":
                run.close_code = message.get("code")
                break
            run.messages.append(json.loads(message["text"]))
            run.arrived.append(time.monotonic() - started)
            if run.messages[-1].get("is_end"):
                break
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    ws.send_text(first if first is not None else config(audio_fs=rate))
    step = int(frame * rate) * 2
    for n, i in enumerate(range(0, len(data), step)):
        if done.is_set():
            break
        ws.send_bytes(data[i : i + step])
        if pace:
            time.sleep(max(0.0, started + (n + 1) * frame / pace - time.monotonic()))
    run.end_sent = time.monotonic() - started
    if end and not done.is_set():
        ws.send_text(json.dumps({"is_speaking": False, "is_end": True}))
    assert done.wait(120), f"no end of stream; got {run.messages}"
    return run


def check_format(run: Run, mode: str, wav_name: str = "demo") -> None:
    """Every message field by field, as FunASR's clients read them."""
    online = {"2pass": "2pass-online", "online": "online"}.get(mode)
    offline = {"2pass": "2pass-offline", "offline": "offline"}.get(mode)
    assert run.messages, "no message"
    *body, last = run.messages
    assert last["is_final"] is True and last["is_end"] is True
    for message in body:
        assert message["is_final"] is False
        assert "is_end" not in message
    for message in run.messages:
        assert message["wav_name"] == wav_name
        assert isinstance(message["text"], str)
        assert message["mode"] in {online, offline} - {None}
        keys = set(message) - {"is_end"}
        if message["mode"] == online and "hypothesis" in message:
            assert keys == PARTIAL_KEYS | {"hypothesis"}, message
            assert message["hypothesis"] and message["text"].strip() in message["hypothesis"]
        elif message["mode"] == online:  # mode online: the rest of an utterance at its end
            assert keys == PARTIAL_KEYS, message
        elif message["text"]:
            assert keys == FINAL_KEYS, message
            check_stamps(message)


def check_stamps(message: dict[str, Any]) -> None:
    assert isinstance(message["timestamp"], str)
    pairs = json.loads(message["timestamp"])
    assert message["timestamp"] == json.dumps(pairs, separators=(",", ":"))
    assert pairs and all(len(p) == 2 and isinstance(p[0], int) and p[0] <= p[1] for p in pairs)
    assert all(a[1] <= b[0] for a, b in zip(pairs, pairs[1:], strict=False))
    sentences = message["stamp_sents"]
    assert sentences
    for sentence in sentences:
        assert set(sentence) == {"text_seg", "punc", "start", "end", "ts_list"}
        assert len(sentence["text_seg"].split(" ")) == len(sentence["ts_list"])
        assert sentence["start"] == sentence["ts_list"][0][0]
        assert sentence["end"] == sentence["ts_list"][-1][1]
    assert [p for s in sentences for p in s["ts_list"]] == pairs
    # FunASR's web client walks the timestamps one CJK character (or word) at a time
    units = "".join(s["text_seg"].replace(" ", "") for s in sentences)
    assert units == "".join(ch for ch in message["text"] if ch.isalnum())


@pytest.fixture(scope="module")
def client(service: Tingji) -> TestClient:
    """One app on the session's loaded model; the lifespan is not run (it closes the service).

    The reference transcriptions are made first, which also warms the model up.
    """
    for clip in (MEETING, HALT):
        file_text(service, clip)
    return TestClient(create_app(service.settings, service, ui=False))


def wait_closed(service: Tingji, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while service.live_streams():
        assert time.monotonic() < deadline, "a live stream was not freed"
        time.sleep(0.05)


# -- through the WebSocket -------------------------------------------------------------------
def test_2pass_at_real_time_pace(client: TestClient, service: Tingji) -> None:
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        assert ws.accepted_subprotocol == "binary"
        # tingji reads "language" too: no detection pass, so partials come sooner
        run = converse(ws, pcm(MEETING), pace=1.0, first=config(language="zh"))
    check_format(run, "2pass")
    partials = run.of("2pass-online")
    finals = [m for m in run.of("2pass-offline") if m["text"]]
    assert partials and finals, run.messages
    assert "".join(m["text"] for m in partials)  # settled text for FunASR's clients
    # partial text first (how soon is the benchmark's business: CPU load varies here)
    assert run.messages.index(partials[0]) < run.messages.index(finals[0])
    # live hears the utterance as VAD cut it; a file this short is heard whole, which gets
    # two more characters of this sentence right
    assert cer(MEETING_TEXT, run.final_text) <= 0.25, run.final_text
    assert run.final_text.endswith("。")
    wait_closed(service)


def test_offline_mode_gives_the_file_transcription(client: TestClient, service: Tingji) -> None:
    with client.websocket_connect("/ws/asr", subprotocols=["binary"]) as ws:
        run = converse(ws, pcm(HALT), first=config(mode="offline", wav_name="halt"))
    check_format(run, "offline", "halt")
    assert len(run.messages) == 1
    assert run.messages[0]["mode"] == "offline"
    assert run.final_text == file_text(service, HALT)
    wait_closed(service)  # and saved to history
    entries = [e for e in service.history.iter_entries("") if e.name == "halt"]
    assert [e.text for e in entries] == [run.final_text]


def test_online_mode_sends_partials_only(client: TestClient, service: Tingji) -> None:
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        run = converse(ws, pcm(MEETING), first=config(mode="online"), pace=2.0)
    check_format(run, "online")
    assert {m["mode"] for m in run.messages} == {"online"}
    text = "".join(m["text"] for m in run.messages)  # FunASR's clients append them
    # online mode never corrects what it sent: partial decodes of a sentence as it grows
    assert cer(MEETING_TEXT, text) <= 0.45, text


@pytest.mark.parametrize("rate", [8000, 48000])
def test_other_sample_rates_are_resampled(
    client: TestClient, service: Tingji, rate: int, tmp_path: Path
) -> None:
    data = pcm(SONG, rate)
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        run = converse(ws, data, rate=rate)
    check_format(run, "2pass")
    assert "一首歌" in run.final_text, run.final_text
    same = tmp_path / f"song-{rate}.wav"  # the file at that rate: 8 kHz loses detail
    with wave.open(str(same), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(data)
    reference = service.transcribe(str(same)).text
    assert cer(reference, run.final_text) <= 0.1, (reference, run.final_text)


@pytest.mark.parametrize(
    "hotwords", [json.dumps({"停滞": 20, "阿里巴巴": 10}, ensure_ascii=False), "停滞 阿里巴巴"]
)
def test_hotwords_in_both_formats(client: TestClient, service: Tingji, hotwords: str) -> None:
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        run = converse(ws, pcm(HALT), first=config(hotwords=hotwords))
    check_format(run, "2pass")
    assert "停滞" in run.final_text, run.final_text


def test_two_sessions_at_once_and_a_bad_one_beside(client: TestClient, service: Tingji) -> None:
    runs: dict[str, Run] = {}

    def stream(clip: str) -> None:
        with client.websocket_connect("/", subprotocols=["binary"]) as ws:
            runs[clip] = converse(ws, pcm(clip), pace=1.5, first=config(wav_name=clip))

    clips = (LIVE, HALT)  # two sentences of 8.6 s and 4.2 s, streamed side by side
    threads = [threading.Thread(target=stream, args=(clip,)) for clip in clips]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:  # breaks the protocol
        ws.send_text("{not json")
        assert ws.receive_json()["code"] == "bad_request"
    for thread in threads:
        thread.join(120)
    for clip in clips:
        check_format(runs[clip], "2pass", clip)
        assert cer(file_text(service, clip), runs[clip].final_text) <= 0.1, runs[clip].final_text
    wait_closed(service)


def bad(client: TestClient, *frames: str | bytes) -> tuple[dict[str, Any], int | None]:
    """Send ``frames``; the error message and the close code that answer them."""
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        for frame in frames:
            if isinstance(frame, bytes):
                ws.send_bytes(frame)
            else:
                ws.send_text(frame)
        error = ws.receive_json()
        closing = ws.receive()
    assert closing["type"] == "websocket.close"
    return error, closing.get("code")


@pytest.mark.parametrize(
    ("frames", "code", "close_code"),
    [
        (["hello"], "bad_request", 1007),
        (["[1, 2]"], "bad_request", 1007),
        ([b"\x00\x01" * 800], "config_required", 1008),
        ([config(), b"\x00" * 1921], "bad_audio", 1007),
        ([config(audio_fs="16k")], "bad_request", 1007),
        ([config(audio_fs=96000)], "bad_request", 1007),
        ([config(mode="3pass")], "bad_request", 1007),
        ([config(wav_format="mp3")], "bad_request", 1007),
        ([config(language="klingon")], "invalid_option", 1007),
        ([config(), "not json"], "bad_request", 1007),
    ],
)
def test_malformed_frames_get_an_error_and_a_close(
    client: TestClient, service: Tingji, frames: list[str | bytes], code: str, close_code: int
) -> None:
    error, closed = bad(client, *frames)
    assert error["code"] == code and error["error"], error
    assert error["is_end"] is True and error["is_final"] is False
    assert "Traceback" not in error["error"]
    assert closed == close_code
    wait_closed(service)


def test_a_vanished_client_frees_its_stream(client: TestClient, service: Tingji) -> None:
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        ws.send_text(config(wav_name="vanished"))
        data = pcm(MEETING)
        for i in range(0, len(data) // 2, 1920):
            ws.send_bytes(data[i : i + 1920])
        time.sleep(0.5)
        assert service.live_streams() == 1
    wait_closed(service)


def test_limits_length_idle_and_sessions(
    client: TestClient, service: Tingji, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.settings, "stream_max_seconds", 1.0)
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        run = converse(ws, pcm(SONG), end=False)
        closing = ws.receive()
    assert run.messages[-1]["code"] == "too_long" and closing["code"] == 1008
    monkeypatch.setattr(service.settings, "stream_idle_s", 0.3)
    error, closed = bad(client, config())
    assert error["code"] == "idle" and closed == 1008
    monkeypatch.setattr(service.settings, "stream_idle_s", 60.0)
    monkeypatch.setattr(service.settings, "stream_max_sessions", 1)
    with client.websocket_connect("/", subprotocols=["binary"]) as first:
        first.send_text(config())
        time.sleep(0.3)
        error, closed = bad(client, config())
        assert error["code"] == "busy" and closed == 1013
    wait_closed(service)


def test_a_deeply_nested_frame_is_a_bad_request(client: TestClient, service: Tingji) -> None:
    nested = '{"a":' * 5000 + "1" + "}" * 5000
    error, closed = bad(client, nested)
    assert error["code"] == "bad_request" and "nested" in error["error"], error
    assert closed == 1007
    error, closed = bad(client, config(hotwords="好" * 300_000))
    assert error["code"] == "bad_request" and "KiB" in error["error"], error


def ended(ws: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The error message that ends a stream, and the close frame after it."""
    error = ws.receive_json()
    closing = ws.receive()
    assert closing["type"] == "websocket.close"
    return error, closing


def test_a_trickling_stream_loses_its_slot(
    client: TestClient, service: Tingji, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two bytes now and then keep the idle rule quiet; the rate rule ends the stream, between
    frames, and the close frame says why."""
    monkeypatch.setattr(service.settings, "stream_rate_window_s", 1.0)
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        ws.send_text(config(wav_name="trickle"))
        ws.send_bytes(b"\x00\x00")
        error, closing = ended(ws)
    assert error["code"] == "too_slow" and "real time" in error["error"], error
    assert closing["code"] == 1008 and closing["reason"].startswith("too_slow: the stream sent")
    wait_closed(service)


def test_a_stream_is_open_at_most_the_wall_clock_limit(
    client: TestClient, service: Tingji, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.settings, "stream_max_wall_s", 1.0)
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        ws.send_text(config(wav_name="forever"))
        error, closing = ended(ws)
    assert error["code"] == "too_long" and "1 s" in error["error"], error
    assert closing["code"] == 1008 and closing["reason"].startswith("too_long:")
    wait_closed(service)


def test_api_key_required_when_configured(
    client: TestClient, service: Tingji, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.settings, "api_keys", ["sesame"])
    error, closed = bad(client)
    assert error["code"] == "unauthorized" and closed == 1008
    with client.websocket_connect("/?api_key=sesame", subprotocols=["binary"]) as ws:
        run = converse(ws, pcm(SHORT))
    assert run.messages[-1]["is_end"] and "error" not in run.messages[-1]
    with client.websocket_connect("/ws/asr", headers={"X-API-Key": "sesame"}) as ws:
        ws.send_text(config(is_speaking=False))
        ws.send_text(config())
        ws.send_text(json.dumps({"is_speaking": False}))
        assert ws.receive_json() == {
            "mode": "2pass-offline",
            "wav_name": "demo",
            "text": "",
            "is_final": True,
            "is_end": True,
        }


def test_web_page_ticket_opens_the_socket_when_keys_are_set(
    client: TestClient, service: Tingji, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Live tab's script never sees an API key; the signed-in page gets a ticket."""
    monkeypatch.setattr(service.settings, "api_keys", ["sesame"])
    ticket = service.live_ticket()
    with client.websocket_connect(f"/ws/asr?ticket={ticket}", subprotocols=["binary"]) as ws:
        run = converse(ws, pcm(SHORT))
    assert run.messages[-1]["is_end"] and "error" not in run.messages[-1]
    expires, _, signature = ticket.partition(".")
    forged = f"{int(expires) + 3600}.{signature}"
    expired = service.live_ticket(seconds=-1)
    for wrong in (forged, expired, "nonsense", ""):
        with client.websocket_connect(f"/ws/asr?ticket={wrong}") as ws:
            message = ws.receive_json()
        assert message["code"] == "unauthorized", wrong


# -- a real server, a real client --------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[str]:
    root = tmp_path_factory.mktemp("live-ws")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINGJI_")}
    env.update(TINGJI_DATA_DIR=str(root / "data"), TINGJI_MODELS_DIR=str(model_cache))
    log = (root / "server.log").open("wb")
    command = [sys.executable, "-m", "tingji.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (root / "server.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (root / "server.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_funasr_client_against_tingji_serve(live_server: str, service: Tingji) -> None:
    """FunASR's clients: ``ws://host:port`` with no path, subprotocol ``binary``."""
    import asyncio

    import websockets

    page = httpx.get(live_server + "/", timeout=30)  # the web UI still answers at "/"
    assert page.status_code == 200 and "<html" in page.text.lower()

    async def talk() -> list[dict[str, Any]]:
        uri = live_server.replace("http://", "ws://")
        async with websockets.connect(uri, subprotocols=["binary"], ping_interval=None) as ws:
            assert ws.subprotocol == "binary"
            await ws.send(config(wav_name="short"))
            data = pcm(SHORT)
            step = int(FRAME_S * 16000) * 2
            for i in range(0, len(data), step):
                await ws.send(data[i : i + step])
                await asyncio.sleep(FRAME_S / 2)  # twice real time
            await ws.send(json.dumps({"is_speaking": False, "is_end": True}))
            received = []
            while not received or not received[-1].get("is_end"):
                received.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
            return received

    messages = asyncio.run(talk())
    run = Run(messages=messages)
    check_format(run, "2pass", "short")
    assert cer(file_text(service, SHORT), run.final_text) <= 0.1, run.final_text


# -- the engine on its own -------------------------------------------------------------------
def test_settle_keeps_what_was_shown() -> None:
    assert settle("", "", "欢迎大家来", "zh", confident=True) == "欢迎大"
    assert settle("", "", "欢迎大家来", "zh", confident=False) == ""
    assert settle("", "欢迎大家", "欢迎大家来体验", "zh", confident=False) == "欢迎大家"
    assert settle("欢迎大家", "欢迎大家", "欢迎打架", "zh", confident=True) == "欢迎大家"
    assert settle("", "some call me", "some call me nature", "en", confident=False) == (
        "some call me"
    )
    assert settle("", "", "some call me nat", "en", confident=True) == "some call me"
    assert settle("some", "some cal", "some call", "en", confident=False) == "some"


def test_plain_text_has_no_punctuation() -> None:
    assert plain("周一到周五 每天，7点半。", "zh") == "周一到周五每天7点半"
    assert plain("Some call me nature, others 3.5!", "en") == "Some call me nature others 3.5"


def test_stamps_one_pair_per_character_or_word() -> None:
    segments = (
        Segment(0, 1.0, 2.0, "你好，world 2025。"),
        Segment(1, 2.0, 2.5, "OK"),
    )
    pairs, sentences = stamps(segments)
    assert [s["text_seg"] for s in sentences] == ["你 好", "world 2 0 2 5", "OK"]
    assert [s["punc"] for s in sentences] == ["，", "。", ""]
    assert len(pairs) == 2 + 5 + 1
    assert pairs[0][0] == 1000 and pairs[7] == [2000, 2500]


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_resampler_keeps_duration(rate: int) -> None:
    resample = Resampler(rate)
    tone = (np.sin(np.arange(rate) * 2 * np.pi * 440 / rate) * 8000).astype("<i2").tobytes()
    out = np.concatenate([resample(tone[i : i + 1000]) for i in range(0, len(tone), 1000)])
    out = np.concatenate([out, resample.flush()])
    assert abs(len(out) - 16000) <= 32
    assert out.dtype == np.float32 and 0.2 < np.abs(out).max() < 0.3


def test_hotwords_parsing() -> None:
    assert hotwords_field(json.dumps({"阿里巴巴": 20, "通义实验室": 30})) == (
        "阿里巴巴",
        "通义实验室",
    )
    assert hotwords_field("阿里巴巴 通义实验室") == ("阿里巴巴", "通义实验室")
    assert hotwords_field("阿里巴巴,达摩院") == ("阿里巴巴", "达摩院")
    assert hotwords_field("") == ()


def test_gate_puts_finals_first() -> None:
    gate = DecodeGate()
    assert gate.try_partial()
    assert gate.try_partial()  # sessions' partials may run together (and share a batch)
    inside = threading.Event()
    leave = threading.Event()

    def final() -> None:
        with gate.final():
            inside.set()
            leave.wait(5)

    waiting = threading.Thread(target=final)
    waiting.start()
    assert inside.wait(5)  # a final never waits at the gate
    assert not gate.try_partial()  # while it is in flight, no partial starts
    leave.set()
    waiting.join(5)
    assert gate.try_partial()


def _stream_through(backend: FakeBackend, clip: str) -> list[Partial | Final]:
    recognizer = OnlineRecognizer(
        backend, TranscribeOptions(language="zh"), StreamOptions(partial_gap=0.0)
    )
    audio = samples(clip)
    events = []
    for i in range(0, len(audio), 960):
        events += recognizer.accept(audio[i : i + 960])
    return events + recognizer.finish()


def test_recognizer_events_with_a_scripted_backend() -> None:
    """Partials while speaking, one final per utterance, the early final decode reused."""
    backend = FakeBackend(["欢迎大家来体验达摩院"])
    events = _stream_through(backend, MEETING)
    partials = [e for e in events if isinstance(e, Partial)]
    finals = [e for e in events if isinstance(e, Final)]
    assert partials and finals
    assert [f.text for f in finals] == ["欢迎大家来体验达摩院。"]
    assert partials[-1].stable == "欢迎大家来体验达摩院"
    assert finals[0].segments[0].start == finals[0].start
    beams = [call.beam_size for call in backend.calls]
    assert beams.count(5) == 1, beams  # the final decode at the pause is not repeated
    assert all(call.fallback is False for call in backend.calls)


def _final_event(utterance: int, text: str, raw: str) -> Final:
    segments = (Segment(0, 1.0, 2.0, text),) if text else ()
    return Final(utterance, 1.0, 2.0, text, segments, raw)


def test_messages_carry_only_new_text() -> None:
    """FunASR's clients append partials and replace them by the 2pass-offline sentence."""
    shaper = Shaper("2pass", "w")
    sent = shaper.messages(
        [
            Partial(0, 0.0, "欢迎大家", "欢迎"),
            Partial(0, 0.0, "欢迎大家来", "欢迎"),
            Partial(0, 0.0, "欢迎大家来", "欢迎"),  # nothing new at all: nothing sent
            Partial(0, 0.0, "欢迎大家来体验", "欢迎大家来"),
            _final_event(0, "欢迎大家来体验。", "欢迎大家来体验"),
            Partial(1, 3.0, "嗯", "嗯"),
            _final_event(1, "", ""),  # the partial shown is withdrawn by an empty sentence
        ]
    )
    assert [(m["mode"], m["text"], m.get("hypothesis")) for m in sent] == [
        ("2pass-online", "欢迎", "欢迎大家"),
        ("2pass-online", "", "欢迎大家来"),  # nothing newly settled: the hypothesis only
        ("2pass-online", "大家来", "欢迎大家来体验"),
        ("2pass-offline", "欢迎大家来体验。", None),
        ("2pass-online", "嗯", "嗯"),
        ("2pass-offline", "", None),
    ]
    online = Shaper("online", "w")
    sent = online.messages(
        [
            Partial(0, 0.0, "some call me", "some call"),
            _final_event(0, "Some call me nature.", "some call me nature"),
            _final_event(1, "Others call me mother.", "others call me mother"),
        ]
    )
    assert [m["text"] for m in sent] == ["some call", " me nature", " others call me mother"]
    assert online.last([])[0] == {
        "mode": "online",
        "wav_name": "w",
        "text": "",
        "is_final": True,
        "is_end": True,
    }


def test_online_mode_appends_the_rest_after_a_misheard_partial() -> None:
    """Online mode cannot take back a partial that heard words wrong: the final adds what
    follows the part the partial covered, never a second reading of the whole sentence."""
    online = Shaper("online", "w")
    sent = online.messages(
        [
            Partial(0, 0.0, "欢迎大家来体验打模院推出的隐食别", "欢迎大家来体验打模院推出的隐食别"),
            _final_event(
                0,
                "欢迎大家来体验达摩院推出的语音识别模型。",
                "欢迎大家来体验达摩院推出的银食别模型",
            ),
            Partial(1, 3.0, "the quick", "the quick"),
            _final_event(1, "The quickest way.", "the quickest way"),
            Partial(2, 5.0, "我们今天开会讨论", "我们今天开会讨论"),
            _final_event(2, "我们明天。", "我们明天"),  # the final heard less: nothing to add
        ]
    )
    assert [m["text"] for m in sent] == [
        "欢迎大家来体验打模院推出的隐食别",
        "模型",
        "the quick",
        "est way",
        "我们今天开会讨论",
    ]
    assert shown_end("", "abc") == 0
    assert shown_end("abc", "") == 0


def test_a_looping_partial_is_shown_once() -> None:
    from tingji.engine.live_text import collapse_loops

    assert collapse_loops("虽然有人虽然有人虽然有人虽然有人虽然") == "虽然有人虽然"
    assert collapse_loops("the cat the cat the cat sat") == "the cat sat"
    for kept in ("好的好的", "哈哈哈哈", "对这就是我万人敬仰的太乙真人"):
        assert collapse_loops(kept) == kept


class _WatchingBackend(FakeBackend):
    """Notes, for each partial decode, its clip length and the pause heard so far."""

    def __init__(self, texts: list[str]) -> None:
        super().__init__(texts)
        self.recognizer: OnlineRecognizer | None = None
        self.partials: list[tuple[float, int]] = []

    def decode(self, audio: Any, options: Any) -> Any:
        if options.beam_size == 1 and self.recognizer is not None:
            self.partials.append((len(audio) / 16000, self.recognizer._quiet))
        return super().decode(audio, options)


def test_partials_retry_soon_after_hearing_nothing_and_leave_pauses_free() -> None:
    """A partial that heard nothing is tried again after 0.3 s of audio, not 0.7 s; and no
    partial starts once a pause has begun (the final decode it may start would wait)."""
    backend = _WatchingBackend(["", "欢迎大家", "欢迎大家来体验"])
    recognizer = OnlineRecognizer(
        backend, TranscribeOptions(language="zh"), StreamOptions(partial_gap=0.0)
    )
    backend.recognizer = recognizer
    clip = samples(MEETING)
    for i in range(0, len(clip), 960):
        recognizer.accept(clip[i : i + 960])
    recognizer.finish()
    lengths = [length for length, _ in backend.partials]
    assert len(lengths) >= 3
    assert lengths[1] - lengths[0] == pytest.approx(0.3, abs=0.07)  # after the empty one
    assert lengths[2] - lengths[1] == pytest.approx(0.7, abs=0.07)
    assert all(quiet < PAUSE_WINDOWS for _, quiet in backend.partials)


class _ClipBackend(FakeBackend):
    """Notes each decode's clip length and beam width."""

    def __init__(self, texts: list[str]) -> None:
        super().__init__(texts)
        self.clips: list[tuple[float, int]] = []

    def decode(self, audio: Any, options: Any) -> Any:
        self.clips.append((len(audio) / 16000, options.beam_size))
        return super().decode(audio, options)


def test_long_utterances_anchor_their_partials_and_finish_with_a_narrower_beam() -> None:
    """Past 4 s, a dip the speech resumes after anchors the partials: the part before it is
    decoded once and later partials decode only what follows (so one in flight when the
    sentence ends is short). The final still decodes the whole utterance, with beam 2 when it
    is longer than 8 s and the configured beam otherwise."""
    backend = _ClipBackend(["如果大家"])
    events = _stream_through(backend, LIVE)  # one utterance of 8.5 s
    finals = [e for e in events if isinstance(e, Final)]
    assert len(finals) == 1
    partial_clips = [length for length, beam in backend.clips if beam == 1]
    # anchored: a partial decodes less than the one before it, by the 4 s or more anchored
    assert any(b < a - 3.5 for a, b in itertools.pairwise(partial_clips)), partial_clips
    assert max(partial_clips) < 7.0
    assert "如果大家如果大家" in [e.text for e in events if isinstance(e, Partial)]
    length, beam = backend.clips[-1]  # the final: all of the utterance, beam 2
    assert (length, beam) == (pytest.approx(finals[0].end - finals[0].start, abs=0.05), 2)
    assert length > 8.0

    backend = _ClipBackend(["欢迎大家"])
    events = _stream_through(backend, MEETING)  # 5.5 s: no anchor, beam 5
    finals = [e for e in events if isinstance(e, Final)]
    length, beam = backend.clips[-1]
    assert (length, beam) == (pytest.approx(finals[0].end - finals[0].start, abs=0.05), 5)
    partial_clips = [length for length, beam in backend.clips if beam == 1]
    assert partial_clips == sorted(partial_clips)  # each decodes all of it so far


class _Speaking:
    """Speech probabilities for a recognizer: 0.9 for every window, never a dip."""

    def __init__(self) -> None:
        self.samples = 0

    def __call__(self, block: np.ndarray, final: bool = False) -> np.ndarray:
        before = self.samples // 512
        self.samples += len(block)
        return np.full(self.samples // 512 - before, 0.9, dtype=np.float32)


def test_partials_anchor_by_6_s_when_speech_has_no_dip() -> None:
    backend = _ClipBackend(["嗯"])
    recognizer = OnlineRecognizer(
        backend, TranscribeOptions(language="zh"), StreamOptions(partial_gap=0.0)
    )
    recognizer._probs = _Speaking()  # type: ignore[assignment]
    noise = np.random.default_rng(0).normal(0, 0.1, 16000 * 14).astype(np.float32)
    for i in range(0, len(noise), 960):
        recognizer.accept(noise[i : i + 960])
    partial_clips = [length for length, beam in backend.clips if beam == 1]
    assert max(partial_clips) < 6.5, partial_clips
    assert sum(b < a for a, b in itertools.pairwise(partial_clips)) >= 2  # anchored twice
