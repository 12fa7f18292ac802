"""Live streams recognised as files: the audio is kept and transcribed whole when the stream
ends (FunASR's ``offline`` mode)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import wave

import numpy as np

from tingji.engine.backend import Backend
from tingji.engine.pipeline import Transcription
from tingji.engine.streaming import Event, Final
from tingji.engine.vad import SAMPLE_RATE
from tingji.errors import OptionError
from tingji.types import Replacement, Segment, TranscribeOptions


class BufferedRecognizer:
    """Writes the audio to a temporary WAV file and transcribes it whole at the end, exactly as
    the file would be."""

    def __init__(
        self,
        backend: Backend,
        options: TranscribeOptions,
        *,
        beam_size: int = 5,
        name: str | None = None,
    ) -> None:
        if options.language is not None and options.language not in backend.languages():
            raise OptionError(f"unknown language '{options.language}'")
        self.backend = backend
        self.options = options
        self.beam_size = beam_size
        self.name = name
        self.language: str | None = options.language
        self.decode_time = 0.0
        self.replacements: list[Replacement] = []
        self._segments: list[Segment] = []
        handle, self._path = tempfile.mkstemp(prefix="tingji-live-", suffix=".wav")
        os.close(handle)
        self._wav: wave.Wave_write | None = wave.open(self._path, "wb")  # noqa: SIM115 - open for the stream
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(SAMPLE_RATE)
        self._frames = 0

    def accept(self, samples: np.ndarray) -> list[Event]:
        if self._wav is None:
            raise RuntimeError("the stream has ended")
        pcm = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1) * 32768, -32768, 32767)
        self._wav.writeframes(np.round(pcm).astype("<i2").tobytes())
        self._frames += len(pcm)
        return []

    def finish(self) -> list[Event]:
        if self._wav is None:
            return []
        self._wav.close()
        self._wav = None
        if self._frames == 0:
            return []
        started = time.perf_counter()
        run = Transcription(
            self.backend, self._path, self.options, beam_size=self.beam_size, name=self.name
        )
        transcript = run.result()
        self.decode_time += time.perf_counter() - started
        self.language = transcript.language
        self.replacements = transcript.replacements
        self._segments = transcript.segments
        if not transcript.segments:
            return []
        return [
            Final(
                utterance=0,
                start=transcript.segments[0].start,
                end=transcript.segments[-1].end,
                text=transcript.text,
                segments=tuple(transcript.segments),
                raw=transcript.text,
            )
        ]

    def segments(self) -> list[Segment]:
        return list(self._segments)

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
