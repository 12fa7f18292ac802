"""What a live stream leaves in history: its audio (stored as uploads are), text without broken
characters, and nothing at all from noise, hotwords or not.

Real clips through the real model and the real app's WebSocket, as in test_streaming.
"""

from __future__ import annotations

import errno
import io
import json
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tingji.audio import load
from tingji.engine.live_text import BROKEN
from tingji.engine.online import OnlineRecognizer, StreamOptions
from tingji.server.app import create_app
from tingji.service import Tingji
from tingji.types import HistoryEntry, TranscribeOptions

from .conftest import FakeBackend, shared_clip, write_wav
from .test_streaming import HALT, MEETING, SONG, Run, config, converse, pcm, wait_closed

BLOCK = 960
"""Samples of one 60 ms frame at 16 kHz."""
CUT_CHARACTER = "zh/wenet/aishell-BAC009S0724W0121.wav"
"""Streamed in 130 ms frames with no language given, its first partial decode (0.89 s) comes
back as the first bytes of a character only."""
HOTWORDS = json.dumps(
    {"停滞": 20, "阿里巴巴": 10, "达摩院": 20, "语音识别": 20}, ensure_ascii=False
)


@pytest.fixture(scope="module")
def client(service: Tingji) -> TestClient:
    return TestClient(create_app(service.settings, service, ui=False))


def entry_named(service: Tingji, name: str) -> HistoryEntry | None:
    entries = [e for e in service.history.iter_entries("") if e.name == name]
    assert len(entries) <= 1, entries
    return entries[0] if entries else None


def stored(service: Tingji) -> set[str]:
    folder = service.settings.audio_dir
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def wav_samples(data: bytes) -> tuple[int, np.ndarray]:
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        return wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), "<i2")


def room_noise() -> np.ndarray:
    """1.5 s of a real room: the 100 ms before the speech of the meeting clip, over and over,
    raised 18 dB (as a browser's automatic gain raises a quiet room); about -36 dBFS."""
    room = load(shared_clip(MEETING))[:1600]
    return np.clip(np.tile(room, 15) * 8, -1, 1).astype(np.float32)


def as_pcm(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples * 32768), -32768, 32767).astype("<i2").tobytes()


# -- the audio -------------------------------------------------------------------------------
def test_a_live_entry_keeps_its_audio_until_deleted(client: TestClient, service: Tingji) -> None:
    before = stored(service)
    sent = pcm(HALT)
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        run = converse(ws, sent, first=config(wav_name="kept"))
    assert "交易几乎" in run.final_text, run.final_text
    wait_closed(service)
    entry = entry_named(service, "kept")
    assert entry is not None and entry.audio_file is not None
    assert stored(service) - before == {entry.audio_file}  # no .part left either
    answer = client.get(f"/api/history/{entry.id}/audio")
    assert answer.status_code == 200
    rate, samples = wav_samples(answer.content)
    assert rate == 16000
    assert np.array_equal(samples, np.frombuffer(sent, "<i2"))  # what was sent, to the sample
    assert service.entry_audio(entry.id) == service.audio_store.path(entry.audio_file)

    assert client.delete(f"/api/history/{entry.id}").status_code == 200
    assert stored(service) == before
    assert client.get(f"/api/history/{entry.id}/audio").status_code == 404


def test_audio_sent_at_another_rate_is_kept_at_16_khz(client: TestClient, service: Tingji) -> None:
    sent = pcm(SONG, 8000)
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        run = converse(ws, sent, rate=8000, first=config(wav_name="8k", audio_fs=8000))
    assert run.final_text
    wait_closed(service)
    entry = entry_named(service, "8k")
    assert entry is not None
    rate, samples = wav_samples(client.get(f"/api/history/{entry.id}/audio").content)
    assert rate == 16000
    assert abs(len(samples) - len(sent)) <= BLOCK  # twice the 8 kHz samples (2 bytes each)
    service.delete_entries([entry.id])


def test_retention_delete_keeps_no_live_audio(
    client: TestClient, service: Tingji, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.settings, "audio_retention", "delete")
    before = stored(service)
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        run = converse(ws, pcm(SONG), first=config(wav_name="not-kept"))
    assert run.final_text
    wait_closed(service)
    entry = entry_named(service, "not-kept")
    assert entry is not None and entry.text and entry.audio_file is None
    assert stored(service) == before
    assert client.get(f"/api/history/{entry.id}/audio").status_code == 404


def test_a_disk_that_fails_or_fills_loses_the_audio_not_the_stream(
    client: TestClient, service: Tingji, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = stored(service)
    calls = 0
    write = wave.Wave_write.writeframes

    def fails_later(self: wave.Wave_write, data: Any) -> None:
        nonlocal calls
        calls += 1
        if calls > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, data)

    with monkeypatch.context() as patch:
        patch.setattr(wave.Wave_write, "writeframes", fails_later)
        with client.websocket_connect("/", subprotocols=["binary"]) as ws:
            full = converse(ws, pcm(HALT), pace=2.0, first=config(wav_name="full-disk"))
    with monkeypatch.context() as patch:
        patch.setattr(service.audio_store, "max_bytes", 32000)  # 1 s of audio
        with client.websocket_connect("/", subprotocols=["binary"]) as ws:
            capped = converse(ws, pcm(HALT), first=config(wav_name="over-limit"))
    wait_closed(service)
    for run, name in ((full, "full-disk"), (capped, "over-limit")):
        assert "交易几乎" in run.final_text, run.final_text
        entry = entry_named(service, name)
        assert entry is not None and entry.audio_file is None
    assert calls > 5
    assert stored(service) == before


def test_a_session_not_saved_leaves_no_audio(service: Tingji) -> None:
    before = stored(service)
    session = service.start_live(service.options(language="zh"), name="unsaved")
    try:
        data = pcm(SONG)
        events = []
        for i in range(0, len(data), 2 * BLOCK):
            events += session.feed(data[i : i + 2 * BLOCK])
        written = stored(service) - before
        events += session.finish()
        assert [e for e in events if e.text]
    finally:
        saved = service.end_live(session, save=False)
    assert [name.endswith(".wav.part") for name in written] == [True]
    assert saved is None
    assert stored(service) == before
    assert entry_named(service, "unsaved") is None


# -- broken characters -----------------------------------------------------------------------
def texts(run: Run) -> list[str]:
    return [v for m in run.messages for v in m.values() if isinstance(v, str)]


def test_no_broken_characters_in_partials_or_finals(client: TestClient, service: Tingji) -> None:
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        run = converse(
            ws,
            pcm(CUT_CHARACTER),
            pace=1.0,  # each frame decoded as it comes, as a microphone sends them
            frame=0.13,
            first=config(wav_name="cut"),
        )
    assert run.of("2pass-online") and run.final_text, run.messages
    assert not [t for t in texts(run) if BROKEN in t], run.messages
    wait_closed(service)
    entry = entry_named(service, "cut")
    assert entry is not None and BROKEN not in entry.text


def test_a_decode_that_stops_inside_a_character_shows_the_whole_ones() -> None:
    """Whisper's tokenizer writes a character cut after its first bytes as U+FFFD: 达摩院's
    院 is three bytes."""
    cut = "欢迎来到达摩".encode() + "院".encode()[:2]
    backend = FakeBackend([cut.decode(errors="replace"), "欢迎来到达摩院\ufffd的语音识别"])
    recognizer = OnlineRecognizer(
        backend, TranscribeOptions(language="zh"), StreamOptions(partial_interval=0.3)
    )
    speech = load(shared_clip(MEETING))
    events = [
        e for i in range(0, len(speech), BLOCK) for e in recognizer.accept(speech[i:][:BLOCK])
    ]
    events += recognizer.finish()
    assert events
    for event in events:
        shown = [event.text, getattr(event, "stable", ""), getattr(event, "raw", "")]
        assert not [t for t in shown if BROKEN in t], event
    assert events[0].text == "欢迎来到达摩"
    assert "欢迎来到达摩院的语音识别" in events[-1].text


# -- noise -----------------------------------------------------------------------------------
@pytest.mark.parametrize("hotwords", [HOTWORDS, ""], ids=["hotwords", "none"])
@pytest.mark.parametrize("sound", ["silence", "room"])
def test_stop_after_noise_invents_nothing(
    client: TestClient, service: Tingji, hotwords: str, sound: str
) -> None:
    """The VAD takes the room for speech; Whisper, hinted with the hotwords, reads them back
    from it (「语音识别。」) unless the decode is checked without the hint."""
    before = stored(service)
    audio = np.zeros(24000, np.float32) if sound == "silence" else room_noise()
    name = f"{sound}-{bool(hotwords)}"
    with client.websocket_connect("/", subprotocols=["binary"]) as ws:
        run = converse(
            ws,
            as_pcm(audio),
            pace=1.0,
            first=config(wav_name=name, hotwords=hotwords, language="zh"),
        )
    assert run.messages[-1]["is_end"] is True
    assert not "".join(m["text"] for m in run.messages), run.messages
    wait_closed(service)
    assert entry_named(service, name) is None
    assert stored(service) == before


@pytest.mark.parametrize("repeats", [1, 4])
def test_a_file_of_room_noise_reads_back_no_hotwords(
    service: Tingji, tmp_path: Path, repeats: int
) -> None:
    """Files are checked the same way: hinted with the list, Whisper wrote 「语语。」 (1.5 s)
    and 「停滞阿里巴。」 (6 s) for the room before the check."""
    path = write_wav(tmp_path / "room.wav", np.tile(room_noise(), repeats))
    options = TranscribeOptions(language="zh", hotwords=tuple(json.loads(HOTWORDS)))
    result = service.transcribe(path, options)
    assert (result.text, result.segments) == ("", [])


def test_room_noise_is_taken_for_speech() -> None:
    """What makes the test above a test: the VAD hears an utterance in the room noise."""
    from tingji.engine.vad import detect_speech
    from tingji.types import VadOptions

    assert detect_speech(room_noise(), VadOptions())
