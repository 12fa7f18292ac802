"""Hotwords (a user glossary): pick decoding hints and repair near-homophones in recognised text.

Whisper takes a glossary only as a prompt, and that prompt is cut at ~223 tokens, so a long
glossary drowns the terms that matter. The pipeline therefore decodes a segment once without a
hint, asks :meth:`HotwordIndex.select_hints` for the few terms that plausibly occur in it, decodes
again with only those, and finally runs :meth:`HotwordIndex.correct` over the text.

How a Chinese term is compared with the text (simplified script; the pipeline converts first)
    Each character gets tone-numbered pinyin (``zhong4``): a term's from pypinyin's phrase-aware
    reading; a text character's usual reading with its tone plus its rarer readings with a tone
    that matches nothing (the recogniser may have meant any of them, but 周一 must not become a
    homophone of 周易 through the sandhi forms of 一). One term syllable against one text
    character costs::

        0     same character, or same syllable and tone (燕之污 → 燕之屋: wu1 = wu1)
        0.2   one confusable part, same tone (jin1 ~ jing1; z/zh c/ch s/sh n/l f/h r/l,
              an/ang en/eng in/ing ian/iang uan/uang)
        0.5   same syllable, other tone (yi1 ~ yi3)
        0.6   one confusable part and another tone, or both parts confusable
        0.7   both parts confusable, another tone
        0.85  only the initial or only the final in common
        1.0   nothing in common, or a character dropped or added (windows of ±1 character are
              tried for terms of 4+ characters when the budget allows a whole miss)

    Similarity is ``1 - cost / len(term)``; a window passes when it reaches the threshold, i.e.
    its cost stays within ``(1 - threshold) * len(term)``. A two-character term carries too
    little evidence for that: it gets at most 0.3 (one confusable part) and must share a
    character with the window. Single characters match only exactly.

Why correction is stricter than hint selection
    A wrong hint costs a second decode that the audio then overrules; a wrong correction puts a
    word into the transcript that nobody said. :meth:`HotwordIndex.correct` uses threshold 0.85
    (a 3-character term may cost 0.45, so 北京时(间) never becomes 北京市; a 4-character one 0.6,
    so 太一真人 becomes 太乙真人 but 杭州西部 stays) and further requires that the window

    - shares at least half of its characters with the term (燕之污 for 燕之屋, not 言之物);
    - for a two-character term, is no exact homophone that is itself a word of jieba's
      dictionary: the recogniser heard the sounds right and chose a real word (科技 against
      科济, 团员 against 团圆, 分析 against 汾西); an exact homophone that is no word (傅旦 for
      复旦) and a confusable sound (金算 for 精算) are repaired;
    - overlaps no exact occurrence of any hotword and lies in one run of Chinese characters
      (no punctuation, digits or Latin inside; numbers belong to ITN);
    - is not itself a word of pypinyin's phrase list, and changes no grammatical particle
      (广州是 stays) and no character of a listed word reaching outside it (下雨音乐 keeps 雨
      although 语音 is a hotword);
    - for terms of up to three characters, changes no character at its edge that has a Chinese
      non-particle neighbour outside: that character may begin or end the next word, and the
      phrase list misses most everyday words (上海事业 stays with 上海市 in the glossary;
      燕之污的 and 在金算 are repaired).

    What remains at risk: a homophone of four or more characters that differs from the term in
    one same-tone character and is a real phrase missing from pypinyin's list.

Digits read as their numerals (``12线城市`` hints 一二线城市) for hints only.

Latin-script terms (PyTorch, SeACo-Paraformer, FunASR)
    Compared case-, space- and hyphen-insensitively over whole alphanumeric tokens (``fun asr`` →
    ``FunASR``), plus an edit distance of one per six letters for terms of 6+ letters, when the
    first letter agrees, the word is not the term's plural and not another hotword. Terms mixing
    scripts (A股) match exactly, ignoring case.

The index precomputes each term's pinyin and a posting list from a coarse syllable key (confusable
parts merged) to (term, position); a text is scanned once, votes are counted per (term, offset),
and only windows with enough votes are scored: with 500 terms, 200 characters take about 2 ms
to correct and 5 ms to select hints from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pypinyin import Style, lazy_pinyin, pinyin
from pypinyin.constants import PHRASES_DICT

from tingji.engine import text as textproc

DEFAULT_CORRECT_THRESHOLD = 0.85
"""Minimum similarity (0–1) for :func:`correct` to replace a window."""
DEFAULT_HINT_THRESHOLD = 0.6
"""Minimum similarity (0–1) for :func:`select_hints` to offer a term."""

_SHORT_TERM_MAX_COST = 0.3
_WEAK_COST = 0.85
_MISS_COST = 1.0
_INDEL_MIN_LEN = 4
_EDGE_RULE_MAX_LEN = 3
_EPS = 1e-9
_ANY_OTHER_TONE = "0"

_INITIAL_RE = re.compile(r"(zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])(?=.)")
_INITIAL_PAIRS = {("z", "zh"), ("c", "ch"), ("s", "sh"), ("n", "l"), ("f", "h"), ("r", "l")}
_FINAL_PAIRS = {("an", "ang"), ("en", "eng"), ("in", "ing"), ("ian", "iang"), ("uan", "uang")}
_COARSE_INITIAL = {"zh": "z", "ch": "c", "sh": "s", "l": "n", "r": "n", "h": "f"}
_COARSE_FINAL = {"ang": "an", "eng": "en", "ing": "in", "iang": "ian", "uang": "uan"}
_PART_COSTS = {
    (0, True): 0.0,
    (0, False): 0.5,
    (1, True): 0.2,
    (1, False): 0.6,
    (2, True): 0.6,
    (2, False): 0.7,
}
_DIGIT_READINGS = {
    "0": ("ling2",),
    "1": ("yi1", "yao1"),
    "2": ("er4", "liang3"),
    "3": ("san1",),
    "4": ("si4",),
    "5": ("wu3",),
    "6": ("liu4",),
    "7": ("qi1",),
    "8": ("ba1",),
    "9": ("jiu3",),
}
_PARTICLES = frozenset("的地得了着是在有和就也都不没这那个吗呢吧啊呀嘛们我你他她它")

_CJK_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
_CJK_RE = re.compile(f"[{_CJK_CLASS}]")
_CJK_GAP_RE = re.compile(f"(?<=[{_CJK_CLASS}])\\s+(?=[{_CJK_CLASS}])")
_LATIN_TERM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]*")
_TOKEN_RE = re.compile(r"[A-Za-z0-9]+")
_JOINERS = frozenset(" -_.")
_LIST_SEPARATORS = re.compile(r"[,，、；;]")
_WEIGHTED = re.compile(r"^(?P<term>.*?\S)\s+\d+(?:\.\d+)?$")


@dataclass(frozen=True)
class Correction:
    """One replacement made by :func:`correct`; ``start``/``end`` index the input text."""

    start: int
    end: int
    original: str
    replacement: str


def parse_hotwords(text: str) -> list[str]:
    """Split a user-typed glossary into terms.

    Lines starting with ``#`` are comments. Terms are separated by newlines, by , ， 、 ； ;
    and by whitespace next to a Chinese term, while Latin words on one line stay one term
    ("large language model"). A trailing number is a FunASR weight ("阿里巴巴 20"), dropped
    when the term is Chinese, or when every entry carries one and some are Chinese (a FunASR
    hotword file); otherwise it is part of the name ("iPhone 15").
    Duplicates (ignoring case) keep their first spelling and place.
    """
    lines = (line.strip() for line in text.splitlines())
    pieces = [
        piece.strip()
        for line in lines
        if line and not line.startswith("#")
        for piece in _LIST_SEPARATORS.split(line)
    ]
    pieces = [piece for piece in pieces if piece]
    weights = [_WEIGHTED.match(piece) for piece in pieces]
    weighted_list = all(weights) and any(m and _CJK_RE.search(m["term"]) for m in weights)
    terms: dict[str, str] = {}
    for piece in pieces:
        match = _WEIGHTED.match(piece)
        if match and (weighted_list or _CJK_RE.search(match["term"])):
            piece = match["term"]
        for term in _split_words(piece):
            terms.setdefault(term.casefold(), term)
    return list(terms.values())


def correct(
    text: str, hotwords: Sequence[str], *, threshold: float = DEFAULT_CORRECT_THRESHOLD
) -> tuple[str, list[Correction]]:
    """Replace near-homophones of ``hotwords`` in ``text``; see :meth:`HotwordIndex.correct`."""
    return _cached_index(tuple(hotwords)).correct(text, threshold=threshold)


def select_hints(
    text: str,
    hotwords: Sequence[str],
    *,
    limit: int = 20,
    threshold: float = DEFAULT_HINT_THRESHOLD,
) -> list[str]:
    """The terms that plausibly occur in ``text``; see :meth:`HotwordIndex.select_hints`."""
    return _cached_index(tuple(hotwords)).select_hints(text, limit, threshold=threshold)


@dataclass(frozen=True)
class _CjkTerm:
    text: str
    syllables: tuple[str, ...]


@dataclass(frozen=True)
class _LatinTerm:
    text: str
    key: str
    n_tokens: int


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int
    term: str
    units: int
    cost: float

    @property
    def similarity(self) -> float:
        return 1.0 - self.cost / self.units

    @property
    def evidence(self) -> float:
        """Matched units: ranks a long, slightly worse match above a short, perfect one."""
        return self.units - self.cost


class HotwordIndex:
    """A glossary prepared for many segments: pinyin, posting lists and Latin keys, once."""

    def __init__(self, hotwords: Sequence[str]) -> None:
        self.terms: tuple[str, ...] = tuple(dict.fromkeys(t.strip() for t in hotwords if t.strip()))
        self._order = {term: i for i, term in enumerate(self.terms)}
        self._cjk: list[_CjkTerm] = []
        self._latin: dict[str, _LatinTerm] = {}
        self._exact_only: list[tuple[str, re.Pattern[str]]] = []
        self._postings: dict[str, list[tuple[int, int]]] = {}
        for term in self.terms:
            self._add(term)
        self._sizes = {len(t.syllables) for t in self._cjk}
        self._fuzzy_latin = [t for t in self._latin.values() if len(t.key) >= 6]
        self._max_tokens = max((t.n_tokens for t in self._latin.values()), default=0) + 1

    def __len__(self) -> int:
        return len(self.terms)

    def _add(self, term: str) -> None:
        if all(_CJK_RE.fullmatch(ch) for ch in term):
            syllables = tuple(lazy_pinyin(term, style=Style.TONE3, neutral_tone_with_five=True))
            if (
                len(term) >= 2
                and len(syllables) == len(term)
                and all(s[-1].isdigit() for s in syllables)
            ):
                term_id = len(self._cjk)
                self._cjk.append(_CjkTerm(term, syllables))
                for pos, syllable in enumerate(syllables):
                    self._postings.setdefault(_coarse(syllable), []).append((term_id, pos))
                return
        elif _LATIN_TERM_RE.fullmatch(term) and len(key := _latin_key(term)) >= 2:
            n_tokens = len(_TOKEN_RE.findall(term))
            self._latin.setdefault(key, _LatinTerm(term, key, n_tokens))
            return
        left = r"(?<![A-Za-z0-9])" if term[0].isascii() and term[0].isalnum() else ""
        right = r"(?![A-Za-z0-9])" if term[-1].isascii() and term[-1].isalnum() else ""
        self._exact_only.append((term, re.compile(left + re.escape(term) + right, re.IGNORECASE)))

    def correct(
        self, text: str, *, threshold: float = DEFAULT_CORRECT_THRESHOLD
    ) -> tuple[str, list[Correction]]:
        """Replace near-homophones of glossary terms, conservatively (see the module docstring).

        Overlapping candidates are resolved by matched units (term length minus cost), then
        similarity, then position; the survivors are applied left to right and returned in
        that order with their positions in the input text.
        """
        found = list(self._candidates(text, threshold, strict=True))
        protected = [(c.start, c.end) for c in found if text[c.start : c.end] == c.term]
        candidates = [
            c for c in found if not any(c.start < end and start < c.end for start, end in protected)
        ]
        candidates.sort(key=lambda c: (-c.evidence, -c.similarity, c.start, self._order[c.term]))
        chosen: list[_Candidate] = []
        for cand in candidates:
            if all(cand.end <= c.start or c.end <= cand.start for c in chosen):
                chosen.append(cand)
        chosen.sort(key=lambda c: c.start)
        parts: list[str] = []
        corrections: list[Correction] = []
        cursor = 0
        for cand in chosen:
            parts += [text[cursor : cand.start], cand.term]
            corrections.append(
                Correction(cand.start, cand.end, text[cand.start : cand.end], cand.term)
            )
            cursor = cand.end
        parts.append(text[cursor:])
        return "".join(parts), corrections

    def select_hints(
        self, text: str, limit: int = 20, *, threshold: float = DEFAULT_HINT_THRESHOLD
    ) -> list[str]:
        """Up to ``limit`` terms that occur in ``text`` exactly or pinyin-near, best first.

        Looser than :meth:`correct` (threshold 0.6; no word rules; 3+ character terms need no
        shared character; digits read as numerals): the second decode, not this function,
        decides whether the term was said. Exact occurrences rank first at equal similarity,
        then longer terms, then glossary order.
        """
        text = _CJK_GAP_RE.sub("", text)  # Whisper spaces words apart: "佛地產 中間協會"
        best: dict[str, float] = {}
        exact: set[str] = set()
        for cand in self._candidates(text, threshold, strict=False):
            best[cand.term] = max(best.get(cand.term, 0.0), cand.similarity)
            if text[cand.start : cand.end] == cand.term:
                exact.add(cand.term)
        ranked = sorted(best, key=lambda t: (-best[t], t not in exact, -len(t), self._order[t]))
        return ranked[: max(limit, 0)]

    def _candidates(self, text: str, threshold: float, *, strict: bool) -> Iterator[_Candidate]:
        yield from self._exact_matches(text)
        yield from self._latin_matches(text, threshold)
        yield from self._cjk_matches(text, threshold, strict=strict)

    def _exact_matches(self, text: str) -> Iterator[_Candidate]:
        for cjk in self._cjk:
            start = text.find(cjk.text)
            while start >= 0:
                yield _Candidate(start, start + len(cjk.text), cjk.text, len(cjk.text), 0.0)
                start = text.find(cjk.text, start + 1)
        for term, pattern in self._exact_only:
            for match in pattern.finditer(text):
                yield _Candidate(match.start(), match.end(), term, len(term), 0.0)

    def _latin_matches(self, text: str, threshold: float) -> Iterator[_Candidate]:
        if not self._latin:
            return
        tokens = list(_TOKEN_RE.finditer(text))
        for i, first in enumerate(tokens):
            key = ""
            for j in range(i, min(i + self._max_tokens, len(tokens))):
                if j > i and text[tokens[j - 1].end() : tokens[j].start()] not in _JOINERS:
                    break
                key += tokens[j].group().lower()
                start, end = first.start(), tokens[j].end()
                exact = self._latin.get(key)
                if exact is not None:
                    yield _Candidate(start, end, exact.text, len(key), 0.0)
                    continue
                for term in self._fuzzy_latin:
                    cost = _latin_fuzzy_cost(term, key, j - i + 1)
                    if cost is not None and 1.0 - cost / len(term.key) >= threshold - _EPS:
                        yield _Candidate(start, end, term.text, len(term.key), cost)

    def _cjk_matches(self, text: str, threshold: float, *, strict: bool) -> Iterator[_Candidate]:
        readings = [() if strict and ch in _DIGIT_READINGS else _char_readings(ch) for ch in text]
        run = _runs(readings)
        votes: dict[tuple[int, int], int] = {}
        for i, char_readings in enumerate(readings):
            for key in {_coarse(r) for r in char_readings}:
                for term_id, pos in self._postings.get(key, ()):
                    votes[term_id, i - pos] = votes.get((term_id, i - pos), 0) | (1 << pos)
        limits = {size: _limits(size, threshold) for size in self._sizes}
        for (term_id, start), mask in votes.items():
            term = self._cjk[term_id]
            size = len(term.syllables)
            max_cost, need, indel = limits[size]
            sizes = [size]
            if indel:  # an inner syllable dropped or added shifts the votes after it by one
                mask |= votes.get((term_id, start - 1), 0) | votes.get((term_id, start + 1), 0)
                sizes = [size, size - 1, size + 1]
            if mask.bit_count() < need or start < 0:
                continue
            for n in sizes:
                end = start + n
                if end > len(text) or run[start] < 0 or run[start] != run[end - 1]:
                    continue
                cost, changed = _align(term, text[start:end], readings[start:end])
                if cost > max_cost + _EPS or (size == 2 and len(changed) > 1):
                    continue
                changed = [start + k for k in changed]
                if strict and size == 2 and cost < _EPS:
                    if not _homophone_slip(text, start, end, changed):
                        continue
                elif strict and not _safe_to_replace(text, start, end, term.text, changed):
                    continue
                yield _Candidate(start, end, term.text, size, cost)


def _safe_to_replace(text: str, start: int, end: int, term: str, changed: list[int]) -> bool:
    """The word-level rules that keep :meth:`HotwordIndex.correct` from inventing a term."""
    kept = (end - start) - len(changed)
    if kept < max(1, math.ceil(len(term) / 2)) or text[start:end] in PHRASES_DICT:
        return False
    for i in changed:
        if text[i] in _PARTICLES:
            return False
        if len(term) <= _EDGE_RULE_MAX_LEN and (
            (i == start and _joins(text, start - 1)) or (i == end - 1 and _joins(text, end))
        ):
            return False
        for size in (2, 3, 4):
            for left in range(max(0, i - size + 1), i + 1):
                right = left + size
                if (left < start or right > end) and text[left:right] in PHRASES_DICT:
                    return False
    return True


def _homophone_slip(text: str, start: int, end: int, changed: list[int]) -> bool:
    """Whether two characters that read exactly as a two-character term are a slip for it:
    they make no word of jieba's dictionary, no particle is changed, and no word of 2–4
    characters reaches across either edge (跟傅旦去: 傅旦, 跟傅 and 旦去 are no words)."""
    if textproc.is_word(text[start:end]) or any(text[i] in _PARTICLES for i in changed):
        return False
    for size in (2, 3, 4):
        for left in range(max(0, start - size + 1), end):
            right = left + size
            crosses = left < start < right or left < end < right
            if crosses and right <= len(text) and textproc.is_word(text[left:right]):
                return False
    return True


def _joins(text: str, i: int) -> bool:
    """Whether ``text[i]`` could form a word with its neighbour: a Chinese non-particle."""
    return 0 <= i < len(text) and bool(_CJK_RE.fullmatch(text[i])) and text[i] not in _PARTICLES


def _align(
    term: _CjkTerm, chars: str, readings: Sequence[tuple[str, ...]]
) -> tuple[float, list[int]]:
    """Cost of reading ``chars`` as ``term``, and the offsets in ``chars`` that would change.

    Same length: position by position. One character fewer or more: the term with one inner
    syllable dropped, or the text with one inner character skipped, wherever that is cheapest,
    for a whole miss; a dropped or added edge character would only be a shifted window.
    """
    size, n = len(term.syllables), len(chars)
    if n == size:
        options = [(0.0, [(k, k) for k in range(n)])]
    elif n == size - 1:
        options = [
            (_MISS_COST, [(k if k < gap else k + 1, k) for k in range(n)])
            for gap in range(1, size - 1)
        ]
    else:
        options = [
            (_MISS_COST, [(k, k if k < gap else k + 1) for k in range(size)])
            for gap in range(1, n - 1)
        ]
    best_cost, best_kept = math.inf, set[int]()
    for cost, pairs in options:
        cost += sum(_char_cost(term, k, chars[j], readings[j]) for k, j in pairs)
        if cost < best_cost:
            best_cost = cost
            best_kept = {j for k, j in pairs if chars[j] == term.text[k]}
    return best_cost, [j for j in range(n) if j not in best_kept]


def _char_cost(term: _CjkTerm, pos: int, char: str, readings: tuple[str, ...]) -> float:
    if char == term.text[pos]:
        return 0.0
    return min((_syllable_cost(term.syllables[pos], r) for r in readings), default=_MISS_COST)


def _limits(size: int, threshold: float) -> tuple[float, int, bool]:
    """For a term of ``size`` characters: the cost allowed, the votes (syllables matching at
    least loosely) a window needs before it is scored, and whether indels are worth trying."""
    max_cost = (1.0 - threshold) * size
    if size <= 2:
        max_cost = min(max_cost, _SHORT_TERM_MAX_COST)
    indel = size >= _INDEL_MIN_LEN and max_cost >= _MISS_COST - _EPS
    need = size - int(max_cost / _WEAK_COST + _EPS) - indel
    return max_cost, need, indel


def _runs(readings: Sequence[tuple[str, ...]]) -> list[int]:
    """Per position, the id of its run of readable characters, or -1 (punctuation, Latin)."""
    out: list[int] = []
    current = -1
    for i, char_readings in enumerate(readings):
        if not char_readings:
            out.append(-1)
        else:
            if i == 0 or out[-1] < 0:
                current = i
            out.append(current)
    return out


@lru_cache(maxsize=32768)
def _char_readings(char: str) -> tuple[str, ...]:
    """Pinyin a recognised character may stand for: its usual reading with its tone, the rarer
    ones with a tone that matches nothing (一 is yi1; its sandhi forms must not make 周一 a
    homophone of 周易)."""
    if char in _DIGIT_READINGS:
        return _DIGIT_READINGS[char]
    if not _CJK_RE.fullmatch(char):
        return ()
    got = pinyin(
        char, style=Style.TONE3, heteronym=True, neutral_tone_with_five=True, errors="ignore"
    )
    readings = [r for r in (got[0] if got else ()) if r[-1:].isdigit()]
    others = (r[:-1] + _ANY_OTHER_TONE for r in readings[1:])
    return tuple(dict.fromkeys([*readings[:1], *others]))


@lru_cache(maxsize=4096)
def _split(syllable: str) -> tuple[str, str, str]:
    body, tone = syllable[:-1], syllable[-1]
    match = _INITIAL_RE.match(body)
    initial = match.group() if match else ""
    return initial, body[len(initial) :], tone


@lru_cache(maxsize=4096)
def _coarse(syllable: str) -> str:
    initial, final, _ = _split(syllable)
    return f"{_COARSE_INITIAL.get(initial, initial)}|{_COARSE_FINAL.get(final, final)}"


def _part(a: str, b: str, pairs: set[tuple[str, str]]) -> int:
    """0: equal, 1: confusable, 2: different."""
    if a == b:
        return 0
    return 1 if (a, b) in pairs or (b, a) in pairs else 2


@lru_cache(maxsize=65536)
def _syllable_cost(want: str, got: str) -> float:
    if want == got:
        return 0.0
    want_initial, want_final, want_tone = _split(want)
    got_initial, got_final, got_tone = _split(got)
    initial = _part(want_initial, got_initial, _INITIAL_PAIRS)
    final = _part(want_final, got_final, _FINAL_PAIRS)
    if initial == 2 and final == 2:
        return _MISS_COST
    if 2 in (initial, final):
        return _WEAK_COST
    same_tone = want_tone == got_tone or "5" in (want_tone, got_tone)
    return _PART_COSTS[initial + final, same_tone]


def _latin_key(term: str) -> str:
    return "".join(_TOKEN_RE.findall(term)).lower()


def _latin_fuzzy_cost(term: _LatinTerm, key: str, n_tokens: int) -> float | None:
    """Edit distance of ``key`` to the term when it is a plausible misspelling, else None.

    Only called for keys that are no hotword themselves.
    """
    allowed = len(term.key) // 6
    if (
        abs(len(key) - len(term.key)) > allowed
        or key[0] != term.key[0]
        or n_tokens > term.n_tokens + 1
        or key in (term.key + "s", term.key + "es")
        or term.key in (key + "s", key + "es")
    ):
        return None
    distance = _levenshtein(key, term.key, allowed)
    return float(distance) if distance <= allowed else None


def _levenshtein(a: str, b: str, bound: int) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > bound:
            return bound + 1
        previous = current
    return previous[-1]


def _split_words(piece: str) -> list[str]:
    """Whitespace separates Chinese terms; runs of Latin words stay one term."""
    out: list[str] = []
    latin: list[str] = []
    for word in piece.split():
        if _CJK_RE.search(word):
            if latin:
                out.append(" ".join(latin))
                latin = []
            out.append(word)
        else:
            latin.append(word)
    if latin:
        out.append(" ".join(latin))
    return out


@lru_cache(maxsize=8)
def _cached_index(hotwords: tuple[str, ...]) -> HotwordIndex:
    return HotwordIndex(hotwords)
