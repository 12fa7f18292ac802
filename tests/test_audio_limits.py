"""Crafted headers and over-long inputs: refused as tingji errors, before decoding where the
header tells, while decoding where it does not."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tingji import audio
from tingji.engine.pipeline import Transcription
from tingji.errors import AudioError, TooLongAudioError, UnsupportedFormatError
from tingji.types import TranscribeOptions

from .conftest import FakeBackend

LIMIT_S = 3.6  # max_audio_hours = 0.001


def wav(
    *,
    tag: int = 1,
    channels: int = 1,
    rate: int = 16000,
    bits: int = 16,
    seconds: float = 1.0,
    data: bytes | None = None,
    data_size: int | None = None,
) -> bytes:
    """A RIFF/WAVE file built field by field (any field may lie)."""
    align = max(1, channels * bits // 8)
    if data is None:
        data = bytes(round(rate * seconds) * align)
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


CRAFTED = {
    "bits_per_sample_0": wav(bits=0, data=bytes(32000)),
    "format_tag_0x1234": wav(tag=0x1234, data=bytes(32000)),
}


class _Pipe(io.RawIOBase):
    """A readable stream that cannot seek: no length, no header read ahead."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to decode a frame fails the test."""

    def refuse(*args: object, **kwargs: object) -> Any:
        raise AssertionError("decoding started")

    monkeypatch.setattr(audio, "_frames", refuse)


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_a_wav_without_a_decoder_is_unsupported(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.wav"
    path.write_bytes(CRAFTED[kind])
    for call in (audio.probe, audio.load, lambda p: list(audio.stream(p))):
        with pytest.raises(UnsupportedFormatError) as caught:
            call(path)
        assert caught.value.source == str(path)
        assert "cannot decode" in caught.value.message


def test_a_one_hertz_wav_is_refused_before_decoding(tmp_path: Path, no_decoding: None) -> None:
    path = tmp_path / "slow.wav"
    path.write_bytes(wav(rate=1, data=bytes(32000)))  # 32 KB "declaring" 16000 s
    for call in (audio.probe, lambda p: list(audio.stream(p))):
        with pytest.raises(UnsupportedFormatError) as caught:
            call(path)
        assert "1 Hz" in caught.value.message
        assert f"{audio.MIN_SAMPLE_RATE} Hz" in caught.value.message
        assert "not decoded" in caught.value.message


def test_telephone_rate_is_still_accepted(tmp_path: Path) -> None:
    path = tmp_path / "phone.wav"
    path.write_bytes(wav(rate=8000, seconds=1.0))
    assert audio.load(path).size == 16000


def test_declared_length_over_the_limit_is_refused_before_decoding(
    tmp_path: Path, no_decoding: None
) -> None:
    path = tmp_path / "ten.wav"
    path.write_bytes(wav(seconds=10.0))
    with pytest.raises(TooLongAudioError) as caught:
        audio.probe(path, max_seconds=LIMIT_S)
    assert "3.6 s limit" in caught.value.message
    assert "10 s" in caught.value.message
    assert caught.value.source == str(path)
    with pytest.raises(TooLongAudioError):
        next(audio.stream(path, max_seconds=LIMIT_S))
    assert audio.probe(path).duration == pytest.approx(10.0)  # no limit, no refusal


def test_wav_data_size_counts_when_the_container_says_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_decoding: None
) -> None:
    path = tmp_path / "ten.wav"
    path.write_bytes(wav(seconds=10.0))
    monkeypatch.setattr(audio, "_metadata_duration", lambda *args, **kwargs: None)
    with pytest.raises(TooLongAudioError, match="declares 10 s"):
        next(audio.stream(path, max_seconds=LIMIT_S))


@pytest.mark.parametrize("data_size", [None, 0xFFFFFFFF])
def test_decoding_stops_at_the_limit_when_nothing_is_declared(data_size: int | None) -> None:
    source = io.BufferedReader(_Pipe(wav(seconds=10.0, data_size=data_size)))
    assert audio.probe(io.BufferedReader(_Pipe(wav(seconds=10.0)))).duration is None
    decoded = 0
    with pytest.raises(TooLongAudioError) as caught:
        for block in audio.stream(source, block_seconds=1.0, max_seconds=LIMIT_S):
            decoded += block.size
    assert decoded <= LIMIT_S * audio.SAMPLE_RATE
    assert "3.6 s limit" in caught.value.message
    assert "stopped" in caught.value.message


def test_audio_at_the_limit_passes(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    path.write_bytes(wav(seconds=3.0))
    blocks = list(audio.stream(path, max_seconds=LIMIT_S))
    assert sum(b.size for b in blocks) == 48000
    source = io.BufferedReader(_Pipe(path.read_bytes()))
    assert sum(b.size for b in audio.stream(source, max_seconds=LIMIT_S)) == 48000


def _opus(path: Path, seconds: float) -> Path:
    av = pytest.importorskip("av")
    try:
        av.codec.Codec("libopus", "w")
    except Exception:  # noqa: BLE001 - an FFmpeg build without the encoder
        pytest.skip("this FFmpeg has no opus encoder")
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48000, layout="mono")
        silence = np.zeros((1, 960), dtype=np.float32)
        for n in range(round(seconds * 50)):
            frame = av.AudioFrame.from_ndarray(silence, format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48000, n * 960
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_opus_silence_over_the_limit(tmp_path: Path, no_decoding: None) -> None:
    path = _opus(tmp_path / "quiet.opus", 10.0)
    with pytest.raises(TooLongAudioError, match="3.6 s limit"):
        audio.probe(path, max_seconds=LIMIT_S)


def test_opus_silence_from_a_pipe_stops_at_the_limit(tmp_path: Path) -> None:
    path = _opus(tmp_path / "quiet.opus", 10.0)
    source = io.BufferedReader(_Pipe(path.read_bytes()))
    decoded = 0
    with pytest.raises(TooLongAudioError, match="stopped"):
        for block in audio.stream(source, block_seconds=1.0, max_seconds=LIMIT_S):
            decoded += block.size
    assert decoded <= LIMIT_S * audio.SAMPLE_RATE


def test_pipeline_refuses_before_recognising(tmp_path: Path) -> None:
    path = tmp_path / "ten.wav"
    path.write_bytes(wav(seconds=10.0))
    backend = FakeBackend(["x"])
    with pytest.raises(TooLongAudioError) as caught:
        Transcription(backend, str(path), TranscribeOptions(), name="ten.wav", max_seconds=LIMIT_S)
    assert caught.value.source == "ten.wav"
    assert backend.calls == []


def test_pipeline_stops_at_the_limit_of_an_undeclared_length(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "ten.wav"
    path.write_bytes(wav(seconds=10.0))
    monkeypatch.setattr(audio, "_metadata_duration", lambda *args, **kwargs: None)
    monkeypatch.setattr(audio, "_riff_duration", lambda head: None)
    backend = FakeBackend(["x"])
    options = TranscribeOptions(language="zh")
    run = Transcription(backend, str(path), options, name="ten.wav", max_seconds=LIMIT_S)
    with pytest.raises(TooLongAudioError) as caught:
        run.result()
    assert caught.value.source == "ten.wav"
    assert "stopped" in caught.value.message
    assert isinstance(caught.value, AudioError)
