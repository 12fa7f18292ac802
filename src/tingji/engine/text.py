"""Text post-processing: pure ``str -> str`` functions, each switchable.

- :func:`to_script` — Chinese simplified / traditional (OpenCC).
- :func:`inverse_normalize` — ITN for Chinese: 二零二五年 → 2025年, 百分之二十五 → 25%
  (WeTextProcessing's shipped grammars); ordinary words such as 一些 and 两个 stay words.
- :func:`punctuate` — closes a CJK segment that Whisper left without punctuation.
- :func:`word_ends` — where Chinese words end in a text (jieba), so a line is never cut inside one.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Sequence
from typing import Any

from tingji.types import Script

CJK_LANGUAGES = frozenset({"zh", "yue", "ja"})
ITN_LANGUAGES = frozenset({"zh", "yue"})
_CLOSERS = set("。！？!?.…")
_PUNCT = _CLOSERS | set("，,、；;：:")
_itn_lock = threading.Lock()


@functools.cache
def _opencc(config: str) -> Any:
    import opencc

    return opencc.OpenCC(config)


def to_script(text: str, script: Script) -> str:
    """Convert Chinese characters to ``simplified`` or ``traditional``; ``original`` keeps them."""
    if script == "original" or not text:
        return text
    return str(_opencc("t2s" if script == "simplified" else "s2t").convert(text))


@functools.cache
def _inverse_normalizer() -> Any:
    from itn.chinese.inverse_normalizer import InverseNormalizer

    logging.getLogger("wetext").setLevel(logging.WARNING)
    return InverseNormalizer()


_YMD = re.compile(r"(?<![\d/])(\d{2,4})/(\d{2})/(\d{2})(?![\d/])")
_YM = re.compile(r"(?<![\d/])(\d{4})/(\d{2})(?![\d/])")
_MD = re.compile(r"(?<![\d/])(\d{2})/(\d{2})(?![\d/])")


def _chinese_dates(text: str) -> str:
    """WeTextProcessing writes dates as 2025/03/05; Chinese text reads 2025年3月5日."""
    text = _YMD.sub(lambda m: f"{m[1]}年{int(m[2])}月{int(m[3])}日", text)
    text = _YM.sub(lambda m: f"{m[1]}年{int(m[2])}月", text)
    return _MD.sub(lambda m: f"{int(m[1])}月{int(m[2])}日", text)


def inverse_normalize(text: str) -> str:
    """Chinese spoken-form numbers, dates, money, percentages and phone numbers to digits."""
    if not text.strip():
        return text
    normalizer = _inverse_normalizer()
    with _itn_lock:
        result = str(normalizer.normalize(text))
    return _chinese_dates(result) if "月" in text else result


def punctuate(text: str, *, final: bool) -> str:
    """End a CJK segment with 。 (last of a passage) or ， when it has no punctuation at its end."""
    stripped = text.rstrip()
    if not stripped or stripped[-1] in _PUNCT:
        return stripped
    return stripped + ("。" if final else "，")


def join_segments(texts: list[str], language: str) -> str:
    """Join segment texts: directly for CJK languages, with spaces otherwise."""
    if language in CJK_LANGUAGES:
        return "".join(t.strip() for t in texts)
    return " ".join(t.strip() for t in texts if t.strip())


_jieba_lock = threading.Lock()


@functools.cache
def _segmenter() -> Any:
    """jieba's tokenizer, its dictionary cache kept in a private per-user folder (not the
    shared temp directory, where another local user could plant one)."""
    import os
    from pathlib import Path

    import jieba

    jieba.setLogLevel(logging.WARNING)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tingji"
    tokenizer = jieba.Tokenizer()
    try:
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        tokenizer.tmp_dir = str(cache)
    except OSError:  # read-only home: jieba builds its table in memory each start
        tokenizer.tmp_dir = None
        tokenizer.cache_file = os.devnull
    return tokenizer


def word_ends(text: str) -> set[int]:
    """Offsets in ``text`` where a word ends, by jieba's segmentation of Chinese (any other
    script's words end at spaces, which jieba keeps as tokens of their own)."""
    segmenter = _segmenter()
    with _jieba_lock:
        return {end for _, _, end in segmenter.tokenize(text)}


def is_word(text: str) -> bool:
    """Whether ``text`` is a word of jieba's dictionary (a real word, not a homophone slip)."""
    segmenter = _segmenter()
    with _jieba_lock:
        segmenter.check_initialized()
        return segmenter.FREQ.get(text, 0) > 0


def warm() -> None:
    """Load jieba's dictionary (about a second) in the background, so the first timed Chinese
    segment does not wait for it."""
    threading.Thread(target=is_word, args=("中文",), name="tingji-jieba", daemon=True).start()


_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
TRAILING_PARTICLES = frozenset("吗呢吧啊呀嘛啦哦")
"""Chinese particles that end a sentence: a cut never comes before one."""


def whole_word_cuts(words: Sequence[str]) -> list[bool]:
    """For each boundary between ``words[n]`` and ``words[n + 1]`` (Whisper's words: in
    Chinese a character or two), whether cutting there keeps words whole: anywhere between
    words of other scripts; in Chinese only at the end of a word of jieba's dictionary and
    never before a sentence-final particle."""
    text = "".join(words)
    ends = word_ends(text) if _HAN.search(text) else set()
    offset, out = 0, []
    for word, following in zip(words, words[1:], strict=False):
        offset += len(word)
        if not _HAN.search(word + following[:1]):
            out.append(True)
        elif following.strip()[:1] in TRAILING_PARTICLES:
            out.append(False)
        else:
            out.append(offset in ends)
    return out


_WIDE = {",": "，", "?": "？", "!": "！", ";": "；", ":": "：", ".": "。"}
_HAN_CLASS = "\u3400-\u9fff\uf900-\ufaff"
_WIDE_PUNCT = "，。！？、；：「」『』（）《》“”‘’…—"
_NARROW_BY_HAN = re.compile(
    rf"(?<=[{_HAN_CLASS}])\s*([,?!;:.])(?!\d)|([,?!;:])\s*(?=[{_HAN_CLASS}])"
)
_SPACE_IN_HAN = re.compile(
    rf"(?<=[{_HAN_CLASS}{_WIDE_PUNCT}])[ \t\u3000]+(?=[{_HAN_CLASS}{_WIDE_PUNCT}])"
)
_SENTENCE_GLUED = re.compile(r"(?<=[a-z][.!?])(?=[A-Z][a-z])")
_SPACE_BEFORE = re.compile(r"(?<=\w) +(?=[,.!?;:](?:\s|$))")


def tidy(text: str, language: str | None) -> str:
    """Typography as a reader of the language expects it.

    Chinese (and Cantonese): ASCII punctuation touching Han characters becomes full-width
    (「对,这就是我」 → 「对，这就是我」; ``3.5`` and ``10:30`` stay), and no space stands between
    Han characters or full-width punctuation (「广州市 佛地产」 → 「广州市佛地产」); spaces between
    Han and Latin words are kept. Japanese only loses spaces between Han characters. Other
    languages: a sentence that follows a full stop gets its space ("family.Although" →
    "family. Although"), and no space stands before a comma or full stop.
    """
    if not text:
        return text
    if language in ITN_LANGUAGES:
        text = _NARROW_BY_HAN.sub(lambda m: _WIDE[m.group(1) or m.group(2)], text)
    if language in CJK_LANGUAGES:
        previous = None
        while previous != text:  # a space between two single characters: one pass each
            previous, text = text, _SPACE_IN_HAN.sub("", text)
        return text
    text = _SENTENCE_GLUED.sub(" ", text)
    return _SPACE_BEFORE.sub("", text)
