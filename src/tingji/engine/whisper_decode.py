"""Decoding a batch of utterances with CTranslate2's Whisper.

Utterances share one encoder and one beam-search call, so the decoder's matrix products grow
from vectors into matrices; a file's windows and other requests' utterances ride together.
Batching never changes a result: each utterance is fed exactly as faster-whisper's
``transcribe`` feeds a window (its own log-mel frames, then zero frames), padded to the next
5 s past a 3 s tail (``fit``, the default) or to Whisper's whole 30 s window (``full``), and
is batched only with utterances of the same padded length (and so token budget), set by its
own length. A result that looks wrong is decoded again with deterministic searches
(:data:`RETRIES`), never by sampling, so the same audio always gives the same text. Text
still implausible after them (a phrase over and over, more words than the time can hold) is
cut to one copy of each repeated phrase, and dropped if even that is implausible: the caller
gets the stretch in :attr:`Decoded.omitted` instead of garbage.

Text is always decoded without Whisper's timestamp tokens: they cost words (on the shared
clips, pooled CER 0.171 with them against 0.153 without, and English WER 0.044 against 0.025).
Where the caller wants timed pieces, the words are placed on the audio by the decoder's
cross-attention (CTranslate2's ``align``, as faster-whisper's word timestamps are) and the
text is cut into pieces at sentence ends and pauses (:func:`_split_words`).

The model, feature extractor and tokenizer are faster-whisper's; the loop around them is ours.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tingji.engine import text as textproc
from tingji.engine.backend import Decoded, DecodeOptions, Piece, Word

SAMPLE_RATE = 16000
FRAMES_PER_SECOND = 100
SAMPLES_PER_FRAME = SAMPLE_RATE // FRAMES_PER_SECOND
MAX_FRAMES = 3000
"""Whisper's encoder window: 30 s of 10 ms frames."""
TAIL_FRAMES = 300
"""Without the full window: zero frames at least after each utterance (3 s). Less than ~2 s
and Whisper starts dropping the last words of short utterances."""
BUCKET_FRAMES = 500
"""Without the full window, a clip is padded up to a multiple of this (5 s)."""
TIME_PRECISION = 0.02
MAX_LENGTH = 448
TOKENS_PER_SECOND = 12.0
"""Most tokens a second of speech needs (fast Mandarin is ~7 characters a second, ~1.5 tokens
each). Output is capped at this per second of the longest clip plus :data:`SPARE_TOKENS`, so a
decode caught in a repetition loop stops there instead of running to 448 tokens: on a second of
audio that is the difference between 0.2 s and 2 s of decoding."""
SPARE_TOKENS = 24
MAX_CHARS_PER_SECOND = 12.0
"""More Chinese characters than this per second of a clip (plus :data:`SPARE_SECONDS`) is a
repetition loop, not speech: fast Mandarin is 6–8 characters a second. (A 2.1 s clip came
back as its 14-character sentence three times over, at a compression ratio of 2.17, under the
2.4 that catches longer loops.)"""
MAX_WORDS_PER_SECOND = 6.0
"""The same for words of other scripts: fast English is 4–5 words a second."""
SPARE_SECONDS = 0.5
OMITTED_REPETITION = "repetition"
"""Why a stretch's text was dropped: it repeated itself past belief under every search."""
RETRIES: tuple[dict[str, Any], ...] = (
    {"repetition_penalty": 1.15, "no_repeat_ngram_size": 6},
    {"beam_size": 1, "repetition_penalty": 1.3, "no_repeat_ngram_size": 4},
)
"""The searches a result that looks wrong is decoded again with: repeating itself costs more,
and a phrase of so many tokens may not come twice."""
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
MAX_INITIAL_TIMESTAMP = 1.0
ALIGN_FRAMES_PER_SECOND = 50
"""The encoder's time steps a second: alignment times are in these."""
PAUSE_SECONDS = 0.5
"""A silence this long between two words ends a timed piece."""
MAX_PIECE_SECONDS = 7.0
"""A timed piece longer than this is cut at its widest pause or last comma."""
MAX_WORD_SECONDS = 1.5
"""A word (a Han character) is never longer than this: alignment stretches the last word of a
sentence over the silence after it."""
_SENTENCE_END = set("。！？!?.…")
_CLAUSE_END = _SENTENCE_END | set("，,、；;：:")


@dataclass
class _Item:
    index: int
    audio: np.ndarray
    result: Any = None
    tokens: list[int] = field(default_factory=list)
    avg_logprob: float = 0.0
    text: str = ""
    language: str = ""
    language_probability: float | None = None
    words: list[Word] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def decode_batch(
    model: Any, clips: Sequence[np.ndarray], options: DecodeOptions, *, full_window: bool = False
) -> list[Decoded]:
    """Recognise ``clips`` (16 kHz mono float32) with one faster-whisper ``WhisperModel``.

    All clips share ``options``. Each clip's result depends on that clip alone, never on the
    others in the call: its features are its own log-mel frames followed by zero frames, as
    faster-whisper's ``transcribe`` pads a window, up to a length set by the clip's own length
    or (``full_window``) to Whisper's 30 s; clips are encoded and decoded together only with
    clips of the same padded length and token budget.
    Returns one :class:`Decoded` per clip, in order.
    """
    items = [_Item(n, clip) for n, clip in enumerate(clips)]
    groups: dict[tuple[int, int], list[_Item]] = {}
    for item in items:
        groups.setdefault(_shape(item, full_window), []).append(item)
    for (frames, budget), group in sorted(groups.items()):
        _decode_group(model, group, options, frames, budget)
    return [_decoded(model, item, options) for item in items]


def _shape(item: _Item, full_window: bool) -> tuple[int, int]:
    """(padded frames, token budget) of a clip: functions of its own length only. The budget
    follows the padded length, so clips padded alike share one call."""
    own = -(-len(item.audio) // SAMPLES_PER_FRAME)
    if full_window:
        frames = MAX_FRAMES
    else:
        frames = min(MAX_FRAMES, -(-(own + TAIL_FRAMES) // BUCKET_FRAMES) * BUCKET_FRAMES)
    seconds = frames / FRAMES_PER_SECOND
    return frames, int(seconds * TOKENS_PER_SECOND) + SPARE_TOKENS


def _decode_group(
    model: Any, items: list[_Item], options: DecodeOptions, frames: int, budget: int
) -> None:
    encoded = _encode(model, [item.audio for item in items], frames)
    languages = _languages(model, encoded, items, options)
    by_language: dict[str, list[_Item]] = {}
    for item, language in zip(items, languages, strict=True):
        item.language = language
        by_language.setdefault(language, []).append(item)
    for language, group in by_language.items():
        if len(group) == len(items):
            _generate(model, encoded, group, options, language, budget)
        else:  # mixed languages in one batch: encode each language's clips again
            sub = _encode(model, [item.audio for item in group], frames)
            _generate(model, sub, group, options, language, budget)
    if options.fallback:
        for item in items:
            if _needs_fallback(item):
                _fallback(model, item, options, frames, budget)
    if options.timestamps:
        for language, group in by_language.items():
            same = len(group) == len(items)
            source = encoded if same else _encode(model, [item.audio for item in group], frames)
            _align(model, source, group, options, language, frames)


def features(model: Any, clips: Sequence[np.ndarray], frames: int) -> np.ndarray:
    """Each clip's own log-mel frames, then zero frames up to ``frames`` (or cut there)."""
    mels = [model.feature_extractor(clip)[:, :frames] for clip in clips]
    out = np.zeros((len(mels), mels[0].shape[0], frames), dtype=np.float32)
    for row, mel in zip(out, mels, strict=True):
        row[:, : mel.shape[1]] = mel
    return out


def _encode(model: Any, clips: Sequence[np.ndarray], frames: int) -> Any:
    import ctranslate2

    features_ = ctranslate2.StorageView.from_array(features(model, clips, frames))
    return model.model.encode(features_, to_cpu=False)


def _languages(model: Any, encoded: Any, items: list[_Item], options: DecodeOptions) -> list[str]:
    if options.language is not None:
        for item in items:
            item.language_probability = 1.0
        return [options.language] * len(items)
    found = []
    for item, ranked in zip(items, model.model.detect_language(encoded), strict=True):
        token, probability = ranked[0]
        item.language_probability = float(probability)
        found.append(token[2:-2])
    return found


def _tokenizer(model: Any, options: DecodeOptions, language: str) -> Any:
    from faster_whisper.tokenizer import Tokenizer

    return Tokenizer(
        model.hf_tokenizer, model.model.is_multilingual, task=options.task, language=language
    )


def _prompt(model: Any, tokenizer: Any, options: DecodeOptions) -> list[int]:
    previous: list[int] = []
    if options.initial_prompt:
        previous = tokenizer.encode(" " + options.initial_prompt.strip())
    prompt: list[int] = model.get_prompt(
        tokenizer,
        previous,
        without_timestamps=True,
        hotwords=options.hint or None,
    )
    return prompt


def _generate(
    model: Any,
    encoded: Any,
    items: list[_Item],
    options: DecodeOptions,
    language: str,
    budget: int,
    retry: dict[str, Any] | None = None,
) -> None:
    from faster_whisper.transcribe import get_suppressed_tokens

    tokenizer = _tokenizer(model, options, language)
    prompt = _prompt(model, tokenizer, options)
    search: dict[str, Any] = {"beam_size": options.beam_size, **(retry or {})}
    results = model.model.generate(
        encoded,
        [prompt] * len(items),
        max_length=min(MAX_LENGTH, len(prompt) + budget),
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=list(get_suppressed_tokens(tokenizer, (-1,)) or ()),
        max_initial_timestamp_index=int(round(MAX_INITIAL_TIMESTAMP / TIME_PRECISION)),
        **search,
    )
    for item, result in zip(items, results, strict=True):
        tokens = result.sequences_ids[0]
        item.result = result
        item.tokens = list(tokens)
        item.avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
        item.text = _text(tokenizer, item.tokens)
        if _implausible(item.text, item.seconds):
            _cut_loop(tokenizer, item)


def _text(tokenizer: Any, tokens: list[int]) -> str:
    return str(tokenizer.decode([t for t in tokens if t < tokenizer.eot])).strip()


_REPEAT = re.compile(r"(\S.*?)(?:[\s,，、。.!！?？;；…-]*\1){2,}", re.DOTALL)
"""A phrase (two characters or more, or one followed by a separator) three or more times in a
row, with or without punctuation between."""


def collapse_repeats(text: str) -> str:
    """One copy of each phrase said three or more times in a row (「天然 天然 天然」 → 「天然」,
    "Swee,Swee,Swee" → "Swee"); a single repeated character (哈哈哈, 对对对) stays."""

    def one(match: re.Match[str]) -> str:
        unit = match.group(1)
        return unit if len(unit.strip()) >= 2 else match.group(0)

    previous = None
    while previous != text:
        previous, text = text, _REPEAT.sub(one, text)
    return text


def _cut_loop(tokenizer: Any, item: _Item) -> None:
    """A decode that repeats itself: keep one round of a sequence that repeats from the start
    (the same sentence two or more times over, perhaps cut off in the last round), else one
    copy of each phrase repeated three or more times."""
    tokens = item.tokens
    for period in range(1, len(tokens) // 2 + 1):
        if all(tokens[n] == tokens[n - period] for n in range(period, len(tokens))):
            item.tokens = tokens[:period]
            item.text = _text(tokenizer, item.tokens)
            return
    collapsed = collapse_repeats(item.text)
    if collapsed != item.text:
        item.text = collapsed
        item.tokens = list(tokenizer.encode(collapsed))


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def _too_fast(text: str, seconds: float) -> bool:
    """More characters (Chinese) and words (other scripts) than anyone says in ``seconds``:
    each Han character takes at least 1/12 s, each other word 1/6 s, with half a second spare."""
    han = len(_HAN.findall(text))
    words = len(_HAN.sub(" ", text).split())
    return han / MAX_CHARS_PER_SECOND + words / MAX_WORDS_PER_SECOND > seconds + SPARE_SECONDS


def _implausible(text: str, seconds: float) -> bool:
    """A repetition loop: text that compresses too well, or more of it than the clip can hold."""
    return _compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD or _too_fast(text, seconds)


def _needs_fallback(item: _Item) -> bool:
    silent = (
        item.result.no_speech_prob > NO_SPEECH_THRESHOLD and item.avg_logprob < LOG_PROB_THRESHOLD
    )
    if silent:
        return False
    return _implausible(item.text, item.seconds) or item.avg_logprob < LOG_PROB_THRESHOLD


def _fallback(model: Any, item: _Item, options: DecodeOptions, frames: int, budget: int) -> None:
    """Decode a repetitive or unlikely result again, with the searches of :data:`RETRIES` in
    turn, and keep the likeliest plausible one. Deterministic, unlike faster-whisper's sampling
    at rising temperatures: the same audio always gives the same text."""
    tried = [(item.result, item.avg_logprob, item.text, item.tokens)]
    encoded = _encode(model, [item.audio], frames)
    for retry in RETRIES:
        _generate(model, encoded, [item], options, item.language, budget, retry)
        tried.append((item.result, item.avg_logprob, item.text, item.tokens))
        if not _needs_fallback(item):
            return
    plausible = [t for t in tried if not _implausible(t[2], item.seconds)]
    best = max(plausible or tried, key=lambda t: t[1])
    item.result, item.avg_logprob, item.text, item.tokens = best


def _decoded(model: Any, item: _Item, options: DecodeOptions) -> Decoded:
    duration = item.seconds
    no_speech = float(item.result.no_speech_prob)
    if no_speech > NO_SPEECH_THRESHOLD and item.avg_logprob < LOG_PROB_THRESHOLD:
        return Decoded([], item.language, item.language_probability)
    if item.text and _implausible(item.text, duration):
        dropped = Piece(0.0, duration, OMITTED_REPETITION, item.avg_logprob, no_speech)
        return Decoded([], item.language, item.language_probability, omitted=[dropped])
    if options.timestamps and item.words:
        pieces = [
            Piece(p.start, p.end, p.text, item.avg_logprob, no_speech, p.words)
            for p in _split_words(item.words, duration)
        ]
    else:
        pieces = [Piece(0.0, duration, item.text, item.avg_logprob, no_speech)] if item.text else []
    return Decoded(pieces, item.language, item.language_probability)


def _align(
    model: Any,
    encoded: Any,
    items: list[_Item],
    options: DecodeOptions,
    language: str,
    frames: int,
) -> None:
    """Place each item's words on its audio with the decoder's cross-attention (``encoded``:
    the items' encoder output, padded to ``frames``)."""
    tokenizer = _tokenizer(model, options, language)
    texts = [[t for t in item.tokens if t < tokenizer.eot] for item in items]
    chosen = [n for n, tokens in enumerate(texts) if tokens]
    if not chosen:
        return
    if len(chosen) < len(items):  # some came back empty: encode the others alone (on a GPU
        # the encoder output cannot be sliced on the host)
        encoded = _encode(model, [items[n].audio for n in chosen], frames)
    own = [min(MAX_FRAMES, -(-len(items[n].audio) // SAMPLES_PER_FRAME)) for n in chosen]
    results = model.model.align(encoded, tokenizer.sot_sequence, [texts[n] for n in chosen], own)
    for n, result in zip(chosen, results, strict=True):
        items[n].words = _words(tokenizer, texts[n], result)


def _words(tokenizer: Any, tokens: list[int], result: Any) -> list[Word]:
    """Words with their times, from one alignment (faster-whisper's ``find_alignment``)."""
    words, word_tokens = tokenizer.split_to_word_tokens(tokens + [tokenizer.eot])
    if len(word_tokens) <= 1 or not result.alignments:
        return []
    text_indices = np.array([pair[0] for pair in result.alignments])
    time_indices = np.array([pair[1] for pair in result.alignments])
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = time_indices[jumps] / ALIGN_FRAMES_PER_SECOND
    if len(jump_times) <= boundaries[-1]:
        return []
    starts, ends = jump_times[boundaries[:-1]], jump_times[boundaries[1:]]
    return [
        Word(word, float(start), float(min(end, start + MAX_WORD_SECONDS)))
        for word, start, end in zip(words[:-1], starts, ends, strict=True)
    ]


def _split_words(words: list[Word], duration: float) -> list[Piece]:
    """Timed pieces from aligned words.

    The alignment gives each word the time up to the next word's start, so a pause shows as a
    word longer than its neighbours: its excess over twice the median word is the pause after
    it. Pieces end after a sentence's end and at pauses of :data:`PAUSE_SECONDS`; in Chinese
    only between words (jieba's) and never before a sentence-final particle. A piece over
    :data:`MAX_PIECE_SECONDS` is cut at its widest pause, where a punctuation mark or a space
    Whisper wrote counts as one more pause of :data:`PAUSE_SECONDS`.
    """
    typical = 2.0 * float(np.median([w.end - w.start for w in words]))
    pauses = [max(0.0, w.end - w.start - typical) for w in words]
    whole = textproc.whole_word_cuts([w.text for w in words])

    def allowed(n: int) -> bool:
        return whole[n]

    def width(n: int) -> float:
        marked = words[n].text.strip()[-1:] in _CLAUSE_END or words[n + 1].text.startswith(" ")
        return pauses[n] + (PAUSE_SECONDS if marked else 0.0)

    cuts = [
        n
        for n in range(len(words) - 1)
        if allowed(n)
        and (words[n].text.strip()[-1:] in _SENTENCE_END or pauses[n] >= PAUSE_SECONDS)
    ]
    runs, first = [], 0
    for n in cuts + [len(words) - 1]:
        runs.append(range(first, n + 1))
        first = n + 1
    out = []
    for run in runs:
        for part in _cut_long(words, run, allowed, width):
            text = "".join(words[n].text for n in part).strip()
            if not text:
                continue
            last = words[part[-1]]
            start = min(words[part[0]].start, duration)
            end = min(last.start + max(typical, 0.2), last.end, duration)
            timed = tuple(words[n] for n in part)
            out.append(Piece(start, max(end, start), text, words=timed))
    return out


def _cut_long(words: list[Word], run: range, allowed: Any, width: Any) -> list[range]:
    """Cut a run of words longer than :data:`MAX_PIECE_SECONDS` at its widest allowed pause,
    away from its ends, again until every part fits."""
    if len(run) < 2 or words[run[-1]].end - words[run[0]].start <= MAX_PIECE_SECONDS:
        return [run]
    inner = range(run[0] + len(run) // 5, run[-1] - len(run) // 5)
    choices = [n for n in inner if allowed(n)]
    if not choices:  # one long word: keep it whole
        return [run]
    best = max(choices, key=width)
    return _cut_long(words, range(run[0], best + 1), allowed, width) + _cut_long(
        words, range(best + 1, run[-1] + 1), allowed, width
    )
