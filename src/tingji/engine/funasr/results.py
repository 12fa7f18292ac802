"""FunASR's answers as timed pieces (pure functions; no torch).

FunASR reports times per token — Paraformer as space-separated tokens with one ``[start_ms,
end_ms]`` each, SenseVoice as ``words`` with ``timestamp``, Fun-ASR-Nano as ``timestamps`` dicts
in seconds — or, with its VAD and punctuation models, per sentence (``sentence_info``). A piece
is a sentence: the tokens are cut at sentence-final punctuation or at a pause.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tingji.engine.backend import Piece

PAUSE_S = 0.5
"""A pause at least this long between two tokens ends a piece."""
_SENTENCE_END = frozenset("。！？!?；;")
_TAG = re.compile(r"<\|([^|]*)\|>")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_CJK_SPACE = re.compile(
    r"(?<=[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff，。！？、；：]) +"
    r"(?=[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff，。！？、；：])"
)
LANGUAGE_TAGS = frozenset({"zh", "en", "yue", "ja", "ko"})


@dataclass(frozen=True)
class Unit:
    """A token with its time, in seconds from the start of the decoded audio."""

    text: str
    start: float
    end: float


def strip_tags(text: str) -> str:
    """Text without SenseVoice's ``<|zh|><|NEUTRAL|><|Speech|><|withitn|>`` tags."""
    return _TAG.sub("", text).strip()


def language_tags(text: str) -> list[str]:
    """The language tags SenseVoice put in ``text``, in order."""
    return [tag for tag in _TAG.findall(text) if tag in LANGUAGE_TAGS]


def majority_language(texts: Iterable[str]) -> tuple[str, float] | None:
    """The most frequent language tag over ``texts`` and its share of all tags."""
    counts = Counter(tag for text in texts for tag in language_tags(text))
    if not counts:
        return None
    tag, n = counts.most_common(1)[0]
    return tag, n / sum(counts.values())


def tidy(text: str) -> str:
    """Drop the spaces FunASR leaves between CJK characters; keep those between words."""
    return _CJK_SPACE.sub("", re.sub(r"\s+", " ", strip_tags(text))).strip()


def join_tokens(tokens: Iterable[str]) -> str:
    """Paraformer's tokens as text: CJK characters joined, other words spaced."""
    out = ""
    for token in tokens:
        if out and not (_CJK.match(out[-1]) or _CJK.match(token[0])):
            out += " "
        out += token
    return out


def units_of(result: dict[str, Any]) -> tuple[str, list[Unit]]:
    """The text of one FunASR result and its timed tokens (none when it has no times)."""
    text = str(result.get("text", ""))
    timestamps = result.get("timestamps")
    if isinstance(timestamps, list) and timestamps and isinstance(timestamps[0], dict):
        units = [
            Unit(str(t.get("token", "")), float(t["start_time"]), float(t["end_time"]))
            for t in timestamps
        ]
        return strip_tags(text), units
    times = result.get("timestamp")
    if not isinstance(times, list) or not times:
        return strip_tags(text), []
    words = result.get("words")
    if isinstance(words, list):
        tokens = [str(w) for w in words]
        surface = strip_tags(text)
    else:
        raw = result.get("raw_text")
        tokens = str(raw if raw is not None else text).split()
        surface = strip_tags(text) if raw is not None else join_tokens(tokens)
    if len(tokens) != len(times):
        return surface, []
    units = [Unit(tok, t[0] / 1000, t[1] / 1000) for tok, t in zip(tokens, times, strict=True)]
    return surface, units


def split_units(surface: str, units: list[Unit], pause: float = PAUSE_S) -> list[Piece] | None:
    """Cut ``surface`` into sentences at its punctuation and at pauses between ``units``.

    Each unit is found in ``surface`` in order; None when one is not where it should be (the
    text was rewritten after timing), so the caller can fall back to one piece.
    """
    lowered = surface.lower()
    if len(lowered) != len(surface):
        return None
    placed: list[tuple[int, int, Unit]] = []
    position = 0
    for unit in units:
        token = unit.text.replace("\u2581", "").replace("@@", "").strip().lower()
        if not token:
            continue
        found = lowered.find(token, position)
        if found < 0 or any(ch.isalnum() for ch in surface[position:found]):
            return None
        placed.append((found, found + len(token), unit))
        position = found + len(token)
    if not placed:
        return None
    pieces = []
    first, text_start = 0, 0
    for k, (token_start, _, unit) in enumerate(placed):
        last = k == len(placed) - 1
        next_start = len(surface) if last else placed[k + 1][0]
        tail = surface[token_start:next_start]  # the token and what follows it
        if last or _ends_sentence(tail) or placed[k + 1][2].start - unit.end >= pause:
            text = tidy(surface[text_start:next_start])
            start = placed[first][2].start
            if text:
                pieces.append(Piece(start, max(unit.end, start), text))
            first, text_start = k + 1, next_start
    return pieces


def _ends_sentence(tail: str) -> bool:
    """Whether a token and the text after it close a sentence (a "." only before a space)."""
    return any(ch in _SENTENCE_END for ch in tail) or ". " in f"{tail} "


def pieces_from_result(result: dict[str, Any], duration: float) -> list[Piece]:
    """One FunASR result (for audio ``duration`` seconds long) as sentences with times."""
    sentences = result.get("sentence_info")
    if isinstance(sentences, list) and sentences:
        pieces = [
            Piece(float(s["start"]) / 1000, float(s["end"]) / 1000, tidy(str(s.get("text", ""))))
            for s in sentences
        ]
        return [p for p in pieces if p.text]
    surface, units = units_of(result)
    if units:
        split = split_units(surface, units)
        if split is not None:
            return split
    text = tidy(surface)
    if not text:
        return []
    if units:
        return [Piece(units[0].start, max(units[-1].end, units[0].start), text)]
    return [Piece(0.0, duration, text)]
