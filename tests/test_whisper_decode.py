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


def test_a_short_clip_that_loops_beside_another_comes_back_once(
    model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two utterances of the 136 s concatenation: decoded together without timestamps, Whisper
    # base says the second (2.1 s) three times over, at a compression ratio of 2.17.
    samples = audio.load(str(shared_clip("long/zh_dev_concat.wav")))
    clips = [samples[174464:199808], samples[447360:480384]]
    options = DecodeOptions(language="zh", beam_size=5, timestamps=False)
    guarded = decode_batch(model, clips, options)
    assert [d.pieces[0].text for d in guarded] == ["換一首歌", "我有的时候说不清楚你们知道吗"]
    monkeypatch.setattr(whisper_decode, "_too_fast", lambda text, seconds: False)
    unguarded = decode_batch(model, clips, options)
    assert unguarded[1].pieces[0].text == "我有的时候说不清楚你们知道吗" * 3
