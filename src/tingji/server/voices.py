"""Known speakers on the OpenAI endpoint: ``known_speaker_names[]`` with
``known_speaker_references[]``, short clips sent as data URLs (``data:audio/wav;base64,…``).

Everything is checked before anything is decoded: at most :data:`MAX_KNOWN` speakers, as many
names as clips, names short and printable, each clip a base64 data URL of at most
:data:`MAX_REFERENCE_BYTES`; then each clip must decode to 2–10 s of audio.
"""

from __future__ import annotations

import base64
import binascii
import io
import re

import numpy as np

from tingji import audio
from tingji.errors import AudioError, OptionError
from tingji.service import Tingji

MAX_KNOWN = 4
MAX_REFERENCE_BYTES = 4 * 2**20
"""Largest decoded clip (bytes): 10 s of 48 kHz stereo 16-bit WAV is under 2 MB."""
MIN_SECONDS, MAX_SECONDS = 2.0, 10.0
_DATA_URL = re.compile(r"data:(audio|video)/[A-Za-z0-9.+-]+(;[A-Za-z0-9=.+-]+)*;base64,", re.I)
MAX_NAME = 64


def known_voices(service: Tingji, names: list[str], references: list[str]) -> dict[str, np.ndarray]:
    if not names and not references:
        return {}
    if len(names) != len(references):
        raise OptionError(
            "known_speaker_names[] and known_speaker_references[] must have as many entries"
        )
    if len(names) > MAX_KNOWN:
        raise OptionError(f"at most {MAX_KNOWN} known speakers")
    cleaned = [_name(n) for n in names]
    if len(set(cleaned)) != len(cleaned):
        raise OptionError("known_speaker_names[] must differ from each other")
    clips = [_clip(reference, name) for name, reference in zip(cleaned, references, strict=True)]
    return {name: service.voice_of(clip) for name, clip in zip(cleaned, clips, strict=True)}


def _name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name or len(name) > MAX_NAME or any(not ch.isprintable() for ch in name):
        raise OptionError(f"a known speaker's name must be 1–{MAX_NAME} printable characters")
    return name


def _clip(reference: str, name: str) -> np.ndarray:
    head = _DATA_URL.match(reference[:200])
    if head is None:
        raise OptionError(
            f"the reference for '{name}' must be a data URL: data:audio/wav;base64,..."
        )
    body = reference[head.end() :]
    if len(body) > (MAX_REFERENCE_BYTES * 4) // 3 + 4:
        raise OptionError(
            f"the reference for '{name}' is larger than {MAX_REFERENCE_BYTES >> 20} MB"
        )
    try:
        data = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise OptionError(f"the reference for '{name}' is not valid base64") from exc
    try:
        blocks = list(audio.stream(io.BytesIO(data), max_seconds=MAX_SECONDS + 0.5))
    except AudioError as exc:
        raise OptionError(f"the reference for '{name}' is not usable audio: {exc}") from exc
    clip = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    seconds = len(clip) / audio.SAMPLE_RATE
    if not MIN_SECONDS - 0.25 <= seconds <= MAX_SECONDS + 0.5:
        raise OptionError(
            f"the reference for '{name}' is {seconds:.1f} s; it must be "
            f"{MIN_SECONDS:.0f}–{MAX_SECONDS:.0f} s"
        )
    return clip
