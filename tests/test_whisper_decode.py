"""Guards around Whisper's decoding: repetition loops on short clips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tingji import audio
from tingji.engine import whisper_decode
from tingji.engine.backend import DecodeOptions
from tingji.engine.models import ensure_embedded_model
from tingji.engine.whisper_decode import _cut_loop, _Item, _too_fast, decode_batch

from .conftest import shared_clip


def test_more_text_than_a_clip_can_hold_is_too_fast() -> None:
    sentence = "我有的时候说不清楚你们知道吗"  # 14 characters, said in 2.1 s
    assert not _too_fast(sentence, 2.1)
    assert _too_fast(sentence * 3, 2.1)
    assert not _too_fast(sentence * 3, 6.0)  # 7 characters a second: fast, but speech
    assert not _too_fast("And so my fellow Americans, ask not", 3.0)
    assert _too_fast("thank you " * 16, 2.0)  # 16 words a second
    assert _too_fast("Swee, " * 30, 3.0)  # a loop of one English word, 10 a second
    assert not _too_fast("the quick brown fox jumps over the lazy dog again", 2.0)  # 5 a second


class _Tokens:
    """A tokenizer whose tokens are characters (ids are code points; eot above them all)."""

    eot = 0x110000

    def decode(self, tokens: list[int]) -> str:
        return "".join(chr(t) for t in tokens)


def _item(text: str) -> _Item:
    item = _Item(0, np.zeros(16000, dtype=np.float32))
    item.tokens = [ord(c) for c in text]
    item.text = text
    return item


def test_a_sequence_that_repeats_from_the_start_is_kept_once() -> None:
    looped = _item("我有的时候我有的时候我有的")
    _cut_loop(_Tokens(), looped)
    assert looped.text == "我有的时候" and len(looped.tokens) == 5
    varied = _item("我有的时候你有的时候")
    _cut_loop(_Tokens(), varied)
    assert varied.text == "我有的时候你有的时候"


@pytest.fixture(scope="module")
def model(model_cache: Path) -> Any:
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(ensure_embedded_model(model_cache)), device="cpu", compute_type="int8", cpu_threads=1
    )


def test_a_clip_decodes_the_same_alone_and_beside_another(model: Any) -> None:
    # Two utterances of the 136 s concatenation. Padded to the longer one with audio silence
    # and decoded together without timestamps, Whisper base said the second (2.1 s) three
    # times over; each clip's own frames then zeros to 30 s, as faster-whisper pads a window,
    # read each once, alone or together, in either order.
    samples = audio.load(str(shared_clip("long/zh_dev_concat.wav")))
    clips = [samples[174464:199808], samples[447360:480384]]
    options = DecodeOptions(language="zh", beam_size=5, timestamps=False)
    together = [d.pieces[0].text for d in decode_batch(model, clips, options)]
    assert together[1] == "我有的时候说不清楚你们知道吗"
    alone = [decode_batch(model, [clip], options)[0].pieces[0].text for clip in clips]
    reverse = [d.pieces[0].text for d in decode_batch(model, clips[::-1], options)][::-1]
    assert together == alone == reverse


def test_padding_is_set_by_the_clip_alone() -> None:
    """Full window: 30 s for any clip; fit: the clip plus at least 3 s, in 5 s steps. The
    token budget follows the padded length (12 a second, and 24 spare)."""
    second = 16000
    shape = whisper_decode._shape
    assert shape(_Item(0, np.zeros(2 * second, np.float32)), True) == (3000, 384)
    assert shape(_Item(0, np.zeros(2 * second, np.float32)), False) == (500, 84)
    assert shape(_Item(0, np.zeros(7 * second, np.float32)), False) == (1000, 144)
    assert shape(_Item(0, np.zeros(29 * second, np.float32)), False) == (3000, 384)
