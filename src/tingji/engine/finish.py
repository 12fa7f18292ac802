"""A decoded piece's text as the user reads it: the script hotwords are matched in, hotword
correction, inverse text normalisation, punctuation, typography; the decoding hint for a
language; terms written back into a second pass. Pure text work, shared by file and live
recognition."""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Sequence
from difflib import SequenceMatcher

from tingji.engine import text as textproc
from tingji.engine.hotwords import Correction, HotwordIndex
from tingji.types import TranscribeOptions


def hint_for(terms: Sequence[str], language: str | None) -> str | None:
    """The decoding hint for this language: Chinese terms mean nothing to English speech."""
    if language not in textproc.CJK_LANGUAGES:
        terms = [t for t in terms if t.isascii()]
    return " ".join(terms) or None


def script_for_matching(text: str, language: str | None, options: TranscribeOptions) -> str:
    """Chinese text in simplified characters, the script hotwords are matched in."""
    if language in textproc.ITN_LANGUAGES and options.script != "original":
        return textproc.to_script(text, "simplified")
    return text


def postprocess(
    text: str,
    options: TranscribeOptions,
    language: str | None,
    hotwords: HotwordIndex | None,
    *,
    last: bool,
) -> tuple[str, list[Correction]]:
    """A decoded piece as the user reads it: script, hotword correction, ITN, punctuation.

    ``last`` closes a CJK piece with 。 rather than ，. Returns the text and the hotword
    corrections made.
    """
    text = script_for_matching(text.strip(), language, options)
    corrections: list[Correction] = []
    if hotwords is not None and text:
        text, corrections = hotwords.correct(text)
    if options.itn and language in textproc.ITN_LANGUAGES:
        text = textproc.inverse_normalize(text)
    if language in textproc.ITN_LANGUAGES and options.script == "traditional":
        text = textproc.to_script(text, options.script)
    if options.punctuate and language in textproc.CJK_LANGUAGES:
        text = textproc.punctuate(text, final=last)
    return textproc.tidy(text.strip(), language), corrections


def restore_terms(before: str, texts: list[str], lost: set[str], found: set[str]) -> list[str]:
    """Write terms back into a second pass (``texts``, its pieces) that the first pass
    (``before``) had verbatim: where the two passes, aligned character by character, have as
    many other characters for the term in the second (国州市 where the first had 广州市), inside
    one piece and touching no occurrence of a term the second pass has (``found``)."""
    texts = list(texts)
    after = "".join(texts)
    kept = [(m.start(), m.end()) for t in found for m in re.finditer(re.escape(t), after)]
    ops = SequenceMatcher(None, before, after, autojunk=False).get_opcodes()

    def mapped(i: int) -> int | None:  # where character i of the first pass went
        for tag, a1, a2, b1, b2 in ops:
            if a1 <= i < a2 and (tag == "equal" or (tag == "replace" and a2 - a1 == b2 - b1)):
                return b1 + i - a1
        return None

    bounds = list(itertools.accumulate(len(t) for t in texts))
    for term in sorted(lost, key=len, reverse=True):
        for match in re.finditer(re.escape(term), before):
            start, last = mapped(match.start()), mapped(match.end() - 1)
            if start is None or last is None or last - start + 1 != len(term):
                continue
            end = last + 1
            piece = bisect.bisect_right(bounds, start)
            if (
                piece >= len(texts)
                or end > bounds[piece]
                or any(start < b and a < end for a, b in kept)
            ):
                continue
            offset = bounds[piece] - len(texts[piece])
            text = texts[piece]
            texts[piece] = text[: start - offset] + term + text[end - offset :]
            kept.append((start, end))
            break
    return texts
