"""How live partial text is written and settled: plain text without punctuation or broken
characters, loops shown once, and the prefix of the hypotheses that no longer changes."""

from __future__ import annotations

import re

from tingji.engine import text as textproc

BROKEN = "\ufffd"
"""What a tokenizer writes for bytes that are no whole UTF-8 character: a decode that stopped
inside a character (its last token holds only the first bytes of it), or a stray byte."""


def drop_broken(text: str) -> str:
    """``text`` without :data:`BROKEN` characters: the part of a character a decode stopped
    in comes whole with a later decode, or never."""
    return text.replace(BROKEN, "")


_LOOP = re.compile(r"(.{2,12}?)\1{2,}")


def collapse_loops(text: str) -> str:
    """A partial stuck in a loop ("虽然有人虽然有人虽然有人…") shown once: greedy decoding of
    the first second of an utterance sometimes repeats itself until cut off."""
    return _LOOP.sub(r"\1", text)


def settle(
    stable: str, previous: str, current: str, language: str | None, *, confident: bool
) -> str:
    """The settled prefix of an utterance after a new hypothesis ``current``.

    Settled is what two consecutive hypotheses agree on, or, when the decoder was confident
    (``confident``), all of ``current`` but its last two CJK characters or its last word (the
    end of the audio often cuts a word, and Whisper completes it wrongly). What was settled
    stays: a hypothesis that contradicts it settles nothing new.
    """
    candidates = [common_prefix(previous, current)] if previous else []
    if confident:
        candidates.append(_drop_tail(current, language))
    best = stable
    for candidate in candidates:
        cut_word = not current[len(candidate) :].startswith(" ") and candidate != current
        if language not in textproc.CJK_LANGUAGES and cut_word:  # whole words only
            candidate = candidate[: candidate.rfind(" ")].rstrip() if " " in candidate else ""
        if candidate.startswith(stable) and len(candidate) > len(best):
            best = candidate
    return best


def common_prefix(a: str, b: str) -> str:
    """The longest start that ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


def shown_end(shown: str, text: str) -> int:
    """Where, in a final ``text``, the partial text ``shown`` of the same utterance ends.

    ``shown`` was sent and cannot be taken back, and it may have heard some words differently
    from ``text``: the end is found by aligning all of ``shown`` against a start of ``text``
    (the fewest edits; among equals, the end nearest ``shown``'s length), so that what follows
    it is the rest of the utterance, not a second reading of its middle. An end inside a word
    is kept: what follows completes the word the client shows ("the quick" + "est way").
    """
    if not shown:
        return 0
    if text.startswith(shown):
        return len(shown)
    previous = list(range(len(shown) + 1))  # edits to turn shown[:i] into text[:0]
    best, best_j = previous[-1], 0
    for j, ch in enumerate(text, start=1):
        current = [j]
        for i, sh in enumerate(shown, start=1):
            current.append(min(previous[i] + 1, current[i - 1] + 1, previous[i - 1] + (sh != ch)))
        previous = current
        cost = current[-1]
        if cost < best or (cost == best and abs(j - len(shown)) < abs(best_j - len(shown))):
            best, best_j = cost, j
    return best_j


def _drop_tail(text: str, language: str | None) -> str:
    if language in textproc.CJK_LANGUAGES:
        return text[:-2]
    return text[: text.rfind(" ")].rstrip() if " " in text else ""


_PUNCTUATION = re.compile(r"(?<!\d)(?<!\b[A-Z])\.(?!\d)|(?<!\d)[,:](?!\d)|[!?;…\"“”，。！？、；：]")
"""Sentence punctuation; not a decimal point, a time's colon or an abbreviation's dot."""
_CJK_GAP = re.compile(r"(?<=[^\x00-\x7f])\s+(?=[^\x00-\x7f])")


def plain(text: str, language: str | None) -> str:
    """Text without punctuation (partials have none: it changes as more audio arrives), in the
    typography finals have (:func:`tingji.engine.text.tidy`). In CJK languages a mark beside a
    CJK character goes without a trace and no space stands between two CJK characters; spaces
    between them and Latin words or numbers are kept."""
    if language not in textproc.CJK_LANGUAGES:
        return textproc.tidy(" ".join(_PUNCTUATION.sub(" ", text).split()), language)

    def mark(match: re.Match[str]) -> str:
        before = text[match.start() - 1 : match.start()]
        after = text[match.end() : match.end() + 1]
        return " " if before.isascii() and after.isascii() else ""

    text = _CJK_GAP.sub("", " ".join(_PUNCTUATION.sub(mark, text).split()))
    return textproc.tidy(text, language)
