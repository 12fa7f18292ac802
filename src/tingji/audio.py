"""Decode any audio or video input to 16 kHz mono float32, streaming.

PyAV (FFmpeg's libraries, no ``ffmpeg`` binary) demuxes, decodes, downmixes and resamples. This
module adds exact fixed-size blocks, memory that does not grow with the input's length (one block
plus one decoded frame), and a single translation of PyAV's many exception types into tingji's
error tree.

A file that decodes to clearly less than its header declares raises ``TruncatedAudioError`` after
the audio that could be decoded has been yielded; see ``_declared_duration`` for when a declared
duration is trusted.

``max_seconds`` bounds the work an input can cause: an input whose header declares more is
refused before decoding, and decoding stops with ``TooLongAudioError`` once it has produced more
(an input without a declared length, or one that understates it). Sample rates below
``MIN_SAMPLE_RATE`` are refused when the input is opened: a few bytes at 1 Hz would resample to
hours.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Literal

import numpy as np

from tingji.errors import (
    AudioError,
    AudioNotFoundError,
    EmptyAudioError,
    TingjiError,
    TooLongAudioError,
    TruncatedAudioError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    from av.audio.frame import AudioFrame
    from av.audio.resampler import AudioResampler
    from av.audio.stream import AudioStream
    from av.container import InputContainer

SAMPLE_RATE = 16000
"""Samples per second of everything this module returns."""
MIN_SAMPLE_RATE = 4000
"""Lowest source sample rate accepted, in Hz (telephone audio is 8000)."""

Source = str | os.PathLike[str] | BinaryIO

_HEAD_BYTES = 65536  # enough to reach the 'data' chunk of any ordinary WAV header
_TRUNCATED_RATIO = 0.9  # decoded < 90 % of the declared duration ...
_TRUNCATED_GAP_S = 1.0  # ... and more than 1 s short of it
_NOT_MEDIA = "not an audio or video file tingji can read"


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about its audio track, without decoding it."""

    duration: float | None  # seconds, from container/stream metadata; None when unknown
    sample_rate: int  # of the source stream
    channels: int
    codec: str  # e.g. "mp3", "pcm_s16le", "opus"
    container: str  # e.g. "wav", "mp3", "mov,mp4,m4a,3gp,3g2,mj2"


@dataclass
class _Tally:
    """What decoding has produced so far: good frames, skipped packets, output samples."""

    good: int = 0
    bad: int = 0
    samples: int = 0


@dataclass(frozen=True)
class _Peek:
    """The first bytes of the input and its size in bytes, where they can be read without harm."""

    head: bytes
    size: int | None


def probe(source: Source, *, max_seconds: float | None = None) -> AudioInfo:
    """Describe the audio track of ``source`` from its metadata.

    Raises ``TooLongAudioError`` when the metadata declares more than ``max_seconds``.
    """
    name = _name(source)
    peek = _peek(source, name)
    seekable = not isinstance(source, str | os.PathLike) and source.seekable()
    start = source.tell() if seekable and not isinstance(source, str | os.PathLike) else None
    try:
        with _opened(source, name) as (container, audio), _translated(name, "open"):
            info = AudioInfo(
                duration=_metadata_duration(container, audio, own_stream_only=False),
                sample_rate=audio.sample_rate,
                channels=audio.channels,
                codec=audio.codec_context.codec.canonical_name,
                container=container.format.name,
            )
            _check_length(_declared_duration(container, audio, peek), max_seconds, name)
            return info
    finally:  # a file object is left where it was, ready to be decoded
        if start is not None and not isinstance(source, str | os.PathLike):
            source.seek(start)


def stream(
    source: Source, block_seconds: float = 30.0, *, max_seconds: float | None = None
) -> Iterator[np.ndarray]:
    """Yield consecutive float32 mono 16 kHz blocks of exactly block_seconds*16000 samples.

    The last block is shorter. Missing and empty files raise here; everything else raises while
    iterating, a truncated file only after the blocks that could be decoded. With
    ``max_seconds``, an input declaring more raises before anything is decoded, and one that
    decodes to more raises ``TooLongAudioError`` instead of the block that passes the limit.
    """
    block = round(block_seconds * SAMPLE_RATE)
    if block < 1:
        raise ValueError(f"block_seconds must be at least 1/{SAMPLE_RATE} s, got {block_seconds}")
    name = _name(source)
    peek = _peek(source, name)  # missing and empty files fail here, before the first block
    return _stream(source, name, peek, block, max_seconds)


def load(source: Source) -> np.ndarray:
    """Whole input as one float32 array (for short clips)."""
    blocks = list(stream(source))
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def _stream(
    source: Source, name: str, peek: _Peek, block: int, max_seconds: float | None
) -> Iterator[np.ndarray]:
    tally = _Tally()
    with _opened(source, name) as (container, audio):
        with _translated(name, "open"):
            declared = _declared_duration(container, audio, peek)
            _check_length(declared, max_seconds, name)
        with _translated(name, "decode"):
            chunks = _resampled(_frames(container, audio, tally))
            if max_seconds is not None:
                chunks = _capped(chunks, max_seconds, name)
            for out in _blocks(chunks, block):
                tally.samples += out.size
                yield out
    _check_complete(tally, declared, name)


def _check_length(declared: float | None, max_seconds: float | None, name: str) -> None:
    """Refuse, before decoding, an input whose header declares more than ``max_seconds``.

    Only a declared duration counts (see ``_declared_duration``), not FFmpeg's estimate from
    the file size, which can be many times too long for a VBR file; decoding enforces the
    limit on everything else.
    """
    if max_seconds is not None and declared is not None and declared > max_seconds:
        raise TooLongAudioError(
            f"the audio is longer than the {_span(max_seconds)} limit "
            f"(it declares {_span(declared)}); it was not decoded",
            source=name,
        )


def _capped(chunks: Iterable[np.ndarray], max_seconds: float, name: str) -> Iterator[np.ndarray]:
    """Pass chunks on until they add up to more than ``max_seconds``; then raise."""
    limit = round(max_seconds * SAMPLE_RATE)
    total = 0
    for chunk in chunks:
        total += chunk.size
        if total > limit:
            raise TooLongAudioError(
                f"the audio is longer than the {_span(max_seconds)} limit; decoding stopped there",
                source=name,
            )
        yield chunk


def _span(seconds: float) -> str:
    """A length in words: ``3.6 s``, ``25 min``, ``12 h``."""
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def _check_complete(tally: _Tally, declared: float | None, name: str) -> None:
    """Raise when the decoded audio falls short: nothing at all, or clearly less than declared."""
    if tally.bad and not tally.good:
        raise AudioError("the file is damaged: no audio frame could be decoded", source=name)
    if tally.samples == 0:
        if declared:
            message = f"the file is damaged: none of its {declared:.1f} s could be decoded"
            raise AudioError(message, source=name)
        raise EmptyAudioError("no audio samples", source=name)
    decoded = tally.samples / SAMPLE_RATE
    if declared and decoded < _TRUNCATED_RATIO * declared and declared - decoded > _TRUNCATED_GAP_S:
        got = f"{decoded:.1f} s of {declared:.1f} s could be decoded"
        if tally.bad > 1:  # a file cut mid-frame leaves one torn frame, not many
            message = f"the file is damaged: {got} ({tally.bad} damaged frames skipped)"
            raise AudioError(message, source=name)
        raise TruncatedAudioError(f"the file is truncated: {got}", source=name)


def _name(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<stream>"


def _peek(source: Source, name: str) -> _Peek:
    """Reject missing, directory and empty inputs; read the head without moving a stream."""
    with _translated(name, "open"):
        if isinstance(source, str | os.PathLike):
            if os.path.isdir(source):
                raise AudioNotFoundError("is a directory, not a file", source=name)
            size: int | None = os.stat(source).st_size
            with open(source, "rb") as file:
                head = file.read(_HEAD_BYTES)
        elif source.seekable():
            start = source.tell()
            head = source.read(_HEAD_BYTES)
            size = source.seek(0, os.SEEK_END) - start
            source.seek(start)
        else:
            return _Peek(b"", None)
    if size == 0:
        raise EmptyAudioError("file is empty", source=name)
    return _Peek(head, size)


@contextmanager
def _translated(name: str, stage: Literal["open", "decode"]) -> Iterator[None]:
    """Turn whatever PyAV, FFmpeg or the OS raises into the matching tingji error."""
    import av

    try:
        yield
    except (TingjiError, MemoryError):
        raise
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise AudioNotFoundError("file not found", source=name) from exc
    except PermissionError as exc:
        raise AudioError("cannot be read: permission denied", source=name) from exc
    except Exception as exc:
        # FFmpegError, EOFError, ValueError and OSError mostly; on a header it half understands
        # (a track without a codec) PyAV raises AttributeError or TypeError too. Input that
        # PyAV cannot handle is the file's fault, not a server error.
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if not isinstance(exc, av.error.FFmpegError | EOFError | ValueError | OSError):
            reason = f"{type(exc).__name__}: {reason}"
        if stage == "open":
            message = f"{_NOT_MEDIA}, or it is damaged ({reason})"
            raise UnsupportedFormatError(message, source=name) from exc
        raise AudioError(f"the file is damaged, decoding failed ({reason})", source=name) from exc


@contextmanager
def _opened(source: Source, name: str) -> Iterator[tuple[InputContainer, AudioStream]]:
    """Open the container and pick its audio track; always closes the container."""
    import av

    target = os.fspath(source) if isinstance(source, str | os.PathLike) else source
    with _translated(name, "open"):
        container = av.open(target, mode="r", metadata_errors="ignore")
    try:
        with _translated(name, "open"):
            audio = _audio_track(container, name)
        yield container, audio
    finally:
        container.close()


def _audio_track(container: InputContainer, name: str) -> AudioStream:
    """The best audio track that has a decoder, or the reason there is none."""
    import av

    if not container.streams.audio:
        fmt = container.format.name
        is_picture = fmt.endswith("_pipe") or fmt in {"image2", "tty", "gif", "apng"}
        if container.streams.video and not is_picture:
            raise UnsupportedFormatError("has no audio track", source=name)
        raise UnsupportedFormatError(_NOT_MEDIA, source=name)
    decodable = [s for s in container.streams.audio if s.codec_context is not None]
    if not decodable:  # e.g. a WAV with an unknown format tag, or 0 bits per sample
        raise UnsupportedFormatError(
            "its audio is in an encoding tingji cannot decode (unknown codec, or a damaged header)",
            source=name,
        )
    best = container.streams.best("audio")
    if isinstance(best, av.AudioStream) and best.codec_context is not None:
        audio = best
    else:
        audio = decodable[0]
    if audio.sample_rate <= 0 or audio.channels <= 0:
        raise AudioError("the file is damaged: its audio track is unreadable", source=name)
    if audio.sample_rate < MIN_SAMPLE_RATE:
        raise UnsupportedFormatError(
            f"its sample rate of {audio.sample_rate} Hz is below the {MIN_SAMPLE_RATE} Hz "
            "tingji accepts (a damaged or crafted header); it was not decoded",
            source=name,
        )
    return audio


def _metadata_duration(
    container: InputContainer, audio: AudioStream, *, own_stream_only: bool
) -> float | None:
    """Seconds the metadata gives for the audio track (or, failing that, the whole container)."""
    if audio.duration is not None and audio.time_base is not None:
        return float(audio.duration * audio.time_base)
    tag = audio.metadata.get("DURATION")  # Matroska/WebM, written per track by FFmpeg
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            pass
    if container.duration is not None and (not own_stream_only or len(container.streams) == 1):
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _declared_duration(container: InputContainer, audio: AudioStream, peek: _Peek) -> float | None:
    """Duration the header promises, or None when unknown or merely estimated from the file size.

    FFmpeg clips a WAV's duration to the bytes present, so the RIFF 'data' size is read directly.
    Elsewhere a duration equal to (or below) file size / nominal bitrate is FFmpeg's own estimate
    from the bytes present (e.g. an MP3 without a Xing header): it cannot reveal missing data and
    is wrong for VBR, so it is not trusted. A container-wide duration counts only for audio-only
    files, as a video track may legitimately outlast the audio.
    """
    riff = _riff_duration(peek.head)
    if riff is not None:
        return riff
    declared = _metadata_duration(container, audio, own_stream_only=True)
    if declared is None or declared <= 0:
        return None
    if audio.bit_rate and peek.size and declared <= 1.05 * peek.size * 8 / audio.bit_rate:
        return None
    return declared


def _riff_duration(head: bytes) -> float | None:
    """Seconds a RIFF/WAVE 'data' chunk declares; None if not WAV, or unknown (0 or 0xFFFFFFFF)."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(head):
        tag, size = head[pos : pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if tag == b"fmt " and pos + 20 <= len(head):
            byte_rate = struct.unpack_from("<I", head, pos + 16)[0]
        elif tag == b"data":
            return size / byte_rate if byte_rate and size not in (0, 0xFFFFFFFF) else None
        pos += 8 + size + (size & 1)
    return None


def _frames(container: InputContainer, audio: AudioStream, tally: _Tally) -> Iterator[AudioFrame]:
    """Decoded frames; undecodable packets are skipped and counted, as faster-whisper skips them."""
    import av

    for packet in container.demux(audio):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            tally.bad += 1
            continue
        tally.good += len(frames)
        yield from frames


def _resampled(frames: Iterable[AudioFrame]) -> Iterator[np.ndarray]:
    """16 kHz mono float32 chunks; a new resampler whenever the input format changes mid-stream.

    The resampler outputs s16 on purpose: for integer output libswresample normalises the downmix
    matrix (stereo → mono is (L + R) / 2, 5.1 is a weighted average), while for float output it
    keeps power-preserving gains (stereo → 0.707 · (L + R)) that clip multichannel audio.
    PyAV's AudioResampler raises ValueError on a frame whose rate, layout or sample format differs
    from the first one it saw (e.g. concatenated MP3s), so it is flushed and replaced instead.
    """
    import av

    resampler: AudioResampler | None = None
    key: tuple[str, str, int] | None = None
    for frame in frames:
        frame_key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if resampler is None or frame_key != key:
            if resampler is not None:
                yield from _to_arrays(resampler.resample(None))
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            key = frame_key
        yield from _to_arrays(resampler.resample(frame))
    if resampler is not None:
        yield from _to_arrays(resampler.resample(None))


def _to_arrays(frames: list[AudioFrame]) -> Iterator[np.ndarray]:
    for frame in frames:
        yield np.multiply(frame.to_ndarray().reshape(-1), 1 / 32768, dtype=np.float32)


def _blocks(chunks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Cut arbitrary chunks into blocks of exactly ``size`` samples (the last one shorter)."""
    buffer = np.empty(size, dtype=np.float32)
    filled = 0
    for chunk in chunks:
        while chunk.size:
            take = min(size - filled, chunk.size)
            buffer[filled : filled + take] = chunk[:take]
            filled += take
            chunk = chunk[take:]
            if filled == size:
                yield buffer
                buffer = np.empty(size, dtype=np.float32)
                filled = 0
    if filled:
        yield buffer[:filled].copy()
