"""Guards around Whisper's decoding: repetition loops, padding, timed pieces."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tingji import audio
from tingji.engine import text as textproc
from tingji.engine import whisper_decode
from tingji.engine.backend import DecodeOptions
from tingji.engine.models import ensure_embedded_model
from tingji.engine.whisper_decode import (
    MAX_PIECE_SECONDS,
    _cut_loop,
    _decoded,
    _Item,
    _too_fast,
    collapse_repeats,
    decode_batch,
)

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

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]


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


def test_a_phrase_said_three_times_over_is_kept_once() -> None:
    assert collapse_repeats("天然 天然 天然") == "天然"
    assert collapse_repeats("Swee,Swee,Swee,Swee…") == "Swee…"
    assert collapse_repeats("我们走吧。我们走吧。我们走吧。") == "我们走吧。"
    assert collapse_repeats("thank you thank you thank you very much") == "thank you very much"
    # a character said over and over is speech (对对对, 哈哈哈), and twice is not a loop
    assert collapse_repeats("对对对对，好的好的") == "对对对对，好的好的"
    assert collapse_repeats("哈哈哈哈哈") == "哈哈哈哈哈"
    # inside a loop that does not start at the beginning, the rest of the text stays
    looped = _item("今天天气很好" + "天然天然" * 6)
    _cut_loop(_Tokens(), looped)
    assert looped.text == "今天天气很好天然" and looped.tokens == [ord(c) for c in looped.text]


def test_text_still_looping_after_every_search_is_dropped_and_marked() -> None:
    options = DecodeOptions(language="en", timestamps=False)
    looped = _item("Swee, Swee. Swee, Sweet, " * 12)  # 48 words in 1 s, no clean period
    looped.result = SimpleNamespace(no_speech_prob=0.01)
    looped.avg_logprob = -0.3
    decoded = _decoded(None, looped, options)
    assert decoded.pieces == []
    [gap] = decoded.omitted
    assert (gap.start, gap.end, gap.text) == (0.0, 1.0, "repetition")
    speech = _item("Thank you.")
    speech.result = SimpleNamespace(no_speech_prob=0.01)
    kept = _decoded(None, speech, options)
    assert [p.text for p in kept.pieces] == ["Thank you."] and kept.omitted == []


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


def test_timed_pieces_carry_the_untimed_text_cut_between_words(model: Any) -> None:
    """Text is decoded without timestamp tokens either way; asked for timed pieces, the same
    text comes back cut at pauses and word ends, each piece within the clip and at most
    MAX_PIECE_SECONDS long unless it is one unsplittable run."""
    clip = audio.load(str(shared_clip("zh/mossttsd/single_reference_dialogue.wav")))
    untimed = decode_batch(model, [clip], DecodeOptions(language="zh", timestamps=False))[0]
    timed = decode_batch(model, [clip], DecodeOptions(language="zh", timestamps=True))[0]
    [whole] = untimed.pieces
    assert "".join(p.text for p in timed.pieces).replace(" ", "") == whole.text.replace(" ", "")
    assert len(timed.pieces) >= 3
    text = "".join(p.text for p in timed.pieces)
    ends, offset = textproc.word_ends(text), 0
    previous_end = 0.0
    for piece in timed.pieces:
        assert previous_end - 0.01 <= piece.start < piece.end <= len(clip) / 16000 + 0.01
        assert piece.end - piece.start <= MAX_PIECE_SECONDS + 1.0
        offset += len(piece.text)
        assert offset in ends  # never inside a word
        previous_end = piece.end


def test_a_silent_clip_beside_speech_leaves_the_speech_timed(model: Any) -> None:
    clip = audio.load(str(shared_clip("zh/mossttsd/single_reference_dialogue.wav")))
    silence = np.zeros_like(clip)
    options = DecodeOptions(language="zh", timestamps=True)
    alone = decode_batch(model, [clip], options)[0]
    speech, quiet = decode_batch(model, [silence, clip], options)[::-1]
    assert quiet.pieces == []
    assert [(p.start, p.end, p.text) for p in speech.pieces] == [
        (p.start, p.end, p.text) for p in alone.pieces
    ]
