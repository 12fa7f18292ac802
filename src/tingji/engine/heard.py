"""What a decode heard, checked the same way for files and live streams.

Two things a decoder writes that nobody said:

- **Hotwords read back from noise.** A decode is hinted with the hotword list so that terms
  heard are spelled right; where there is no speech at all (room noise the VAD took for
  speech), Whisper reads the hint itself back as text (「停滞阿里巴。」 from a quiet room). The
  model scores each piece's likelihood of being no speech: a hinted decode that the model calls
  no speech throughout stands only if a decode without the hint hears something there too.
- **Broken characters.** A decode that stops inside a character (its last token holds only
  the first bytes of it) writes U+FFFD; such characters are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from tingji.engine.backend import Backend, Decoded, DecodeOptions
from tingji.engine.live_text import BROKEN, drop_broken

NO_SPEECH = 0.6
"""Whisper's own no-speech threshold (faster-whisper's ``no_speech_threshold``)."""


def unheard(decoded: Decoded) -> bool:
    """Text where the model itself judges there is no speech (every piece)."""
    return bool(decoded.pieces) and all(
        p.no_speech_prob is not None and p.no_speech_prob > NO_SPEECH for p in decoded.pieces
    )


def whole_characters(decoded: Decoded) -> Decoded:
    """``decoded`` without U+FFFD in its pieces' text (and without pieces left empty)."""
    if not any(BROKEN in p.text for p in decoded.pieces):
        return decoded
    pieces = [replace(p, text=drop_broken(p.text)) for p in decoded.pieces]
    return replace(decoded, pieces=[p for p in pieces if p.text.strip()])


def checked(
    backend: Backend,
    clips: Sequence[np.ndarray],
    options: DecodeOptions,
    decoded: Sequence[Decoded],
) -> list[Decoded]:
    """``decoded`` (the decodes of ``clips`` with ``options``) as heard: a hinted decode the
    model calls no speech is replaced by one without the hint when that one hears nothing
    (one batched decode for all such clips); broken characters left out."""
    result = list(decoded)
    doubtful = [n for n, d in enumerate(result) if options.hint and unheard(d)]
    if doubtful:
        bare = backend.decode_many([clips[n] for n in doubtful], replace(options, hint=None))
        for n, again in zip(doubtful, bare, strict=True):
            if not again.pieces:
                result[n] = again
    return [whole_characters(d) for d in result]


def decode(backend: Backend, clips: Sequence[np.ndarray], options: DecodeOptions) -> list[Decoded]:
    """One batched decode of ``clips``, :func:`checked`."""
    return checked(backend, clips, options, backend.decode_many(clips, options))
