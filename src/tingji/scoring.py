"""Character error rate, with the normalisation the shared references need.

Both sides are normalised the same way before scoring: NFKC, lower case, traditional →
simplified, ITN, then punctuation and spaces dropped.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from tingji.engine.text import inverse_normalize, to_script


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = inverse_normalize(to_script(text, "simplified"))
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PZSC")


def edit_distance(ref: str, hyp: str) -> int:
    """Levenshtein distance between two strings (characters)."""
    if len(ref) < len(hyp):
        ref, hyp = hyp, ref
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i]
        for j, h in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def cer(reference: str, hypothesis: str) -> float:
    ref, hyp = normalize(reference), normalize(hypothesis)
    return edit_distance(ref, hyp) / max(1, len(ref))


def pooled_cer(pairs: Iterable[tuple[str, str]]) -> float:
    """Total edits over total reference characters, across (reference, hypothesis) pairs."""
    edits = chars = 0
    for reference, hypothesis in pairs:
        ref, hyp = normalize(reference), normalize(hypothesis)
        edits += edit_distance(ref, hyp)
        chars += len(ref)
    return edits / max(1, chars)
