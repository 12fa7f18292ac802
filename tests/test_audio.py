"""tingji.audio: every supported container decodes to 16 kHz mono float32, streaming, and every
kind of bad input raises the matching tingji error naming the file.

Inputs other than the shared real recordings are encoded at test time with PyAV itself, so no
ffmpeg binary is needed; a format whose encoder this PyAV build lacks is skipped.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import wave
import zlib
from pathlib import Path

import av
import numpy as np
import pytest

from tingji import audio
from tingji.errors import (
    AudioError,
    AudioNotFoundError,
    EmptyAudioError,
    TruncatedAudioError,
    UnsupportedFormatError,
)

SHARED_AUDIO = Path(__file__).resolve().parents[1].parent / "shared" / "audio"
TONE_HZ = 440.0
SECONDS = 2.0


@pytest.fixture
def shared_audio() -> Path:
    if not SHARED_AUDIO.is_dir():
        pytest.skip(f"real test audio not found at {SHARED_AUDIO} (expected ../shared/audio)")
    return SHARED_AUDIO


def _encoder(*names: str) -> str:
    """The first of ``names`` this PyAV build can encode with, else skip the test."""
    for name in names:
        try:
            av.Codec(name, "w")
        except av.codec.codec.UnknownCodecError:
            continue
        return name
    pytest.skip(f"this PyAV build has no {' or '.join(names)} encoder")


def _tone(rate: int, seconds: float = SECONDS, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)


def _write(
    path: Path,
    codec: str | None,
    rate: int = 44100,
    channels: np.ndarray | None = None,
    layout: str = "stereo",
    *,
    video: str | None = None,
    fmt: str | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode planar float ``channels`` (default: the tone on every channel), plus a few frames of
    ``video`` when given."""
    if channels is None:
        channels = np.tile(_tone(rate), (av.AudioLayout(layout).nb_channels, 1))
    with av.open(str(path), "w", format=fmt, options=container_options or {}) as out:
        vstream: av.VideoStream | None = None
        if video:
            added = out.add_stream(_encoder(video), rate=10)
            assert isinstance(added, av.VideoStream)
            vstream = added
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        if codec:
            options = {"strict": "experimental"} if codec == "vorbis" else {}
            astream = out.add_stream(codec, rate=rate, options=options)
            assert isinstance(astream, av.AudioStream)
            astream.layout = layout
            for start in range(0, channels.shape[1], 1024):
                piece = np.ascontiguousarray(channels[:, start : start + 1024])
                frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout=layout)
                frame.sample_rate, frame.pts = rate, start
                out.mux(astream.encode(frame))
            out.mux(astream.encode(None))
        if vstream is not None:
            for index in range(5):
                picture = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), "rgb24")
                picture.pts = index
                out.mux(vstream.encode(picture))
            out.mux(vstream.encode(None))
    return path


def _dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * audio.SAMPLE_RATE / samples.size)


def _assert_tone(samples: np.ndarray, seconds: float = SECONDS) -> None:
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert abs(samples.size / audio.SAMPLE_RATE - seconds) <= 0.05
    assert np.all(np.abs(samples) <= 1.0)
    assert abs(_dominant_hz(samples) - TONE_HZ) < 5
    # identical channels of amplitude 0.5 average to 0.5, not 0.707 (a power-preserving sum)
    assert 0.4 < np.percentile(np.abs(samples), 99.9) < 0.6


# name, encoder candidates, rate, layout, file name, video encoder, muxer, codec, container
FORMATS = [
    ("wav-s16", ("pcm_s16le",), 44100, "stereo", "a.wav", None, None, "pcm_s16le", "wav"),
    ("wav-u8", ("pcm_u8",), 22050, "mono", "a.wav", None, None, "pcm_u8", "wav"),
    ("wav-s24", ("pcm_s24le",), 48000, "stereo", "a.wav", None, None, "pcm_s24le", "wav"),
    ("wav-s32", ("pcm_s32le",), 16000, "mono", "a.wav", None, None, "pcm_s32le", "wav"),
    ("wav-f32", ("pcm_f32le",), 44100, "stereo", "a.wav", None, None, "pcm_f32le", "wav"),
    ("wav-8k", ("pcm_s16le",), 8000, "mono", "a.wav", None, None, "pcm_s16le", "wav"),
    ("mp3", ("libmp3lame",), 44100, "stereo", "a.mp3", None, None, "mp3", "mp3"),
    ("flac-48k", ("flac",), 48000, "stereo", "a.flac", None, None, "flac", "flac"),
    ("m4a", ("aac",), 44100, "stereo", "a.m4a", None, None, "aac", "mp4"),
    ("ogg-vorbis", ("libvorbis", "vorbis"), 44100, "stereo", "a.ogg", None, None, "vorbis", "ogg"),
    ("ogg-opus", ("libopus",), 48000, "stereo", "a.opus", None, "ogg", "opus", "ogg"),
    ("webm", ("libopus",), 48000, "stereo", "a.webm", "libvpx", None, "opus", "webm"),
    ("mp4-video", ("aac",), 44100, "stereo", "a.mp4", "libx264", None, "aac", "mp4"),
    ("mkv-video", ("libmp3lame",), 22050, "mono", "a.mkv", "mpeg4", None, "mp3", "matroska"),
]


@pytest.mark.parametrize(
    ("encoders", "rate", "layout", "filename", "video", "fmt", "codec", "container"),
    [pytest.param(*row[1:], id=row[0]) for row in FORMATS],
)
def test_every_format_decodes_to_16k_mono_float32(
    tmp_path: Path,
    encoders: tuple[str, ...],
    rate: int,
    layout: str,
    filename: str,
    video: str | None,
    fmt: str | None,
    codec: str,
    container: str,
) -> None:
    path = _write(
        tmp_path / filename, _encoder(*encoders), rate, layout=layout, video=video, fmt=fmt
    )

    _assert_tone(audio.load(path))
    info = audio.probe(path)
    assert info.sample_rate == rate
    assert info.channels == av.AudioLayout(layout).nb_channels
    assert info.codec == codec
    assert container in info.container
    assert info.duration is not None
    assert abs(info.duration - SECONDS) <= 0.05


def test_stereo_in_antiphase_downmixes_to_silence(tmp_path: Path) -> None:
    tone = _tone(48000)
    path = _write(tmp_path / "anti.wav", "pcm_s16le", 48000, np.stack([tone, -tone]))
    assert np.max(np.abs(audio.load(path))) < 1e-3


def test_surround_is_averaged_without_clipping(tmp_path: Path) -> None:
    path = _write(tmp_path / "six.flac", _encoder("flac"), 48000, layout="5.1")
    assert audio.probe(path).channels == 6
    _assert_tone(audio.load(path))


def test_sample_rate_change_mid_stream(tmp_path: Path) -> None:
    encoder = _encoder("libmp3lame")
    low = _write(tmp_path / "low.mp3", encoder, 22050, _tone(22050)[None], "mono")
    high = _write(tmp_path / "high.mp3", encoder, 44100, _tone(44100)[None], "mono")
    joined = tmp_path / "joined.mp3"
    joined.write_bytes(low.read_bytes() + high.read_bytes())
    samples = audio.load(joined)
    assert abs(samples.size / audio.SAMPLE_RATE - 2 * SECONDS) <= 0.1


@pytest.mark.parametrize("block_seconds", [0.5, 0.3, 30.0])
def test_blocks_are_exact_and_concatenate_to_load(tmp_path: Path, block_seconds: float) -> None:
    path = _write(tmp_path / "a.wav", "pcm_s16le", 44100, np.tile(_tone(44100, 2.5), (2, 1)))
    blocks = list(audio.stream(path, block_seconds=block_seconds))
    size = round(block_seconds * audio.SAMPLE_RATE)
    assert all(block.size == size for block in blocks[:-1])
    assert 0 < blocks[-1].size <= size
    assert sum(block.size for block in blocks) == 40000
    np.testing.assert_array_equal(np.concatenate(blocks), audio.load(path))


def test_block_seconds_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="block_seconds"):
        audio.stream(tmp_path / "whatever.wav", block_seconds=0)


def test_binary_io_matches_path(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.flac", _encoder("flac"), 44100)
    with path.open("rb") as file:
        from_file = audio.load(file)
    from_bytes = audio.load(io.BytesIO(path.read_bytes()))
    np.testing.assert_array_equal(from_file, audio.load(path))
    np.testing.assert_array_equal(from_bytes, from_file)
    assert audio.probe(io.BytesIO(path.read_bytes())).codec == "flac"


def test_probe_leaves_a_file_object_where_it_was(tmp_path: Path) -> None:
    """A caller probes, then decodes the same object: it must get all the samples."""
    path = _write(tmp_path / "a.flac", _encoder("flac"), 44100)
    buffer = io.BytesIO(path.read_bytes())
    assert audio.probe(buffer).duration is not None
    assert buffer.tell() == 0
    np.testing.assert_array_equal(audio.load(buffer), audio.load(path))


class _Pipe(io.RawIOBase):
    """A readable stream that cannot seek, like a socket or stdin."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_unseekable_stream(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.wav", "pcm_s16le", 44100)
    _assert_tone(audio.load(io.BufferedReader(_Pipe(path.read_bytes()))))


def test_abandoned_stream_closes_cleanly(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.wav", "pcm_s16le", 44100)
    blocks = audio.stream(path, block_seconds=0.5)
    assert next(blocks).size == 8000
    blocks.close()  # type: ignore[attr-defined]


def test_memory_stays_bounded_on_a_ten_minute_input(tmp_path: Path) -> None:
    path = tmp_path / "ten_minutes.wav"
    minute = (np.random.default_rng(0).standard_normal(8000 * 60) * 3000).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        for _ in range(10):
            out.writeframes(minute)
    whole_output_bytes = 600 * audio.SAMPLE_RATE * 4  # 38.4 MB of float32

    tracemalloc.start()
    try:
        sizes = [block.size for block in audio.stream(path, block_seconds=30)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert sizes == [30 * audio.SAMPLE_RATE] * 20
    assert peak < whole_output_bytes / 4  # about two 1.9 MB blocks live at once


def test_real_recordings(shared_audio: Path) -> None:
    jfk = shared_audio / "en" / "faster_whisper" / "jfk.flac"
    samples = audio.load(jfk)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size / audio.SAMPLE_RATE - 11.0) <= 0.05
    assert 0.05 < np.max(np.abs(samples)) <= 1.0
    info = audio.probe(jfk)
    assert (info.codec, info.container) == ("flac", "flac")
    assert info.duration == pytest.approx(11.0, abs=0.05)

    zh = shared_audio / "zh" / "funasr" / "asr_example_zh.wav"
    blocks = list(audio.stream(zh, block_seconds=2))
    assert [block.size for block in blocks[:-1]] == [32000] * (len(blocks) - 1)
    assert abs(sum(block.size for block in blocks) / audio.SAMPLE_RATE - 5.547) <= 0.05
    assert audio.probe(zh).container == "wav"


def test_no_false_truncation_on_real_recordings(shared_audio: Path) -> None:
    paths = sorted([*shared_audio.rglob("*.wav"), *shared_audio.rglob("*.flac")])
    assert paths
    for path in paths:
        assert audio.load(path).size > 0, path


# --- errors ------------------------------------------------------------------------------------


def _png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    pixels = zlib.compress(b"".join(b"\x00" + bytes(16 * 3) for _ in range(16)))
    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _wav_header(tag: int, data: bytes, byte_rate: int, block_align: int, extra: bytes) -> bytes:
    fmt = struct.pack("<HHIIHH", tag, 1, 16000, byte_rate, block_align, 0) + extra
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _decode_all(path: Path) -> None:
    for _ in audio.stream(path):
        pass


def _raises(error: type[AudioError], path: Path, words: str) -> AudioError:
    for call in (_decode_all, audio.load):
        with pytest.raises(error) as caught:
            call(path)
        assert str(path) in str(caught.value)
        assert caught.value.source == str(path)
        assert words in caught.value.message
    return caught.value


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.wav"
    with pytest.raises(AudioNotFoundError, match="file not found"):
        audio.stream(missing)  # raised at the call, before iterating
    _raises(AudioNotFoundError, missing, "file not found")
    with pytest.raises(AudioNotFoundError):
        audio.probe(missing)


def test_directory(tmp_path: Path) -> None:
    _raises(AudioNotFoundError, tmp_path, "directory")


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp3"
    empty.touch()
    _raises(EmptyAudioError, empty, "file is empty")
    with pytest.raises(EmptyAudioError):
        audio.probe(empty)
    with pytest.raises(EmptyAudioError):
        audio.load(io.BytesIO(b""))


@pytest.mark.parametrize("filename", ["notes.txt", "notes.wav"])
def test_text_file(tmp_path: Path, filename: str) -> None:
    path = tmp_path / filename
    path.write_text("hello, this is not audio\n" * 50)
    _raises(UnsupportedFormatError, path, "not an audio or video file")


@pytest.mark.parametrize("filename", ["picture.png", "picture.wav"])
def test_image_file(tmp_path: Path, filename: str) -> None:
    path = tmp_path / filename
    path.write_bytes(_png_bytes())
    _raises(UnsupportedFormatError, path, "not an audio or video file")
    with pytest.raises(UnsupportedFormatError):
        audio.probe(path)


def test_random_bytes_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(1).bytes(20000))
    _raises(UnsupportedFormatError, path, "damaged")


def test_video_without_audio_track(tmp_path: Path) -> None:
    path = _write(tmp_path / "silent_film.mp4", None, video="libx264")
    _raises(UnsupportedFormatError, path, "has no audio track")


def test_garbage_after_a_valid_header_is_damaged(tmp_path: Path) -> None:
    # an MP3-in-WAV whose every packet fails to decode
    path = tmp_path / "garbage.wav"
    mp3_extra = struct.pack("<HHIHHH", 12, 1, 2, 104, 1, 1393)
    noise = np.random.default_rng(2).bytes(64000)
    path.write_bytes(_wav_header(0x55, noise, 16000, 1, mp3_extra))
    _raises(AudioError, path, "damaged")


def test_flac_with_a_garbage_body_is_damaged(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.flac", _encoder("flac"), 44100, layout="mono")
    path = tmp_path / "bad.flac"
    head = good.read_bytes()[:200]
    path.write_bytes(head + np.random.default_rng(3).bytes(good.stat().st_size - 200))
    error = _raises(AudioError, path, "damaged")
    assert not isinstance(error, TruncatedAudioError | UnsupportedFormatError)


def test_header_only_wav_has_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "header_only.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
    _raises(EmptyAudioError, path, "no audio samples")


@pytest.mark.parametrize(
    ("encoders", "filename"),
    [
        pytest.param(("pcm_s16le",), "cut.wav", id="wav"),
        pytest.param(("libmp3lame",), "cut.mp3", id="mp3"),
        pytest.param(("flac",), "cut.flac", id="flac"),
    ],
)
def test_truncated_file_yields_what_decodes_then_raises(
    tmp_path: Path, encoders: tuple[str, ...], filename: str
) -> None:
    # a 12 s file: long enough that half of it is more than 1 s short
    long_tone = _tone(22050, 12.0)[None]
    full = _write(tmp_path / f"long_{filename}", _encoder(*encoders), 22050, long_tone, "mono")
    full_bytes = full.read_bytes()
    cut = tmp_path / filename
    cut.write_bytes(full_bytes[: len(full_bytes) // 2])

    decoded = 0
    with pytest.raises(TruncatedAudioError) as caught:
        for block in audio.stream(cut, block_seconds=1):
            decoded += block.size
    assert 5.0 < decoded / audio.SAMPLE_RATE < 6.5
    assert str(cut) in str(caught.value)
    assert "of 12.0 s could be decoded" in caught.value.message

    # losing the last 5 % (0.6 s) is within the tolerance
    cut.write_bytes(full_bytes[: len(full_bytes) * 95 // 100])
    assert audio.load(cut).size > 11 * audio.SAMPLE_RATE


def test_vbr_mp3_without_xing_header_is_not_called_truncated(tmp_path: Path) -> None:
    """Without a Xing header FFmpeg guesses the duration from the first frame's bitrate; a quiet
    32 kbit/s start followed by 320 kbit/s noise makes it guess ~100 s for 12 s of audio."""
    encoder = _encoder("libmp3lame")
    parts = []
    for name, bit_rate, signal in [
        ("quiet", 32000, np.zeros(44100 * 2, np.float32)),
        ("loud", 320000, np.random.default_rng(4).standard_normal(44100 * 10).astype(np.float32)),
    ]:
        path = tmp_path / f"{name}.mp3"
        with av.open(str(path), "w", format="mp3", options={"write_xing": "0"}) as out:
            stream = out.add_stream(encoder, rate=44100)
            assert isinstance(stream, av.AudioStream)
            stream.layout, stream.bit_rate = "mono", bit_rate
            frame = av.AudioFrame.from_ndarray((0.3 * signal)[None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, 0
            out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        parts.append(path.read_bytes())
    joined = tmp_path / "vbr.mp3"
    joined.write_bytes(b"".join(parts))

    info = audio.probe(joined)
    assert info.duration is not None and info.duration > 50  # the bogus estimate
    assert abs(audio.load(joined).size / audio.SAMPLE_RATE - 12.0) < 0.2
