"""Decoding a batch of utterances with CTranslate2's Whisper.

Utterances share one encoder and one beam-search call, so the decoder's matrix products grow
from vectors into matrices; a file's windows and other requests' utterances ride together.
Batching never changes a result: each utterance is fed exactly as faster-whisper's
``transcribe`` feeds a window (its own log-mel frames, then zero frames), padded to the next
5 s past a 3 s tail (``fit``, the default) or to Whisper's whole 30 s window (``full``), and
is batched only with utterances of the same padded length (and so token budget), set by its
own length. A result that looks wrong is decoded again with deterministic searches
(:data:`RETRIES`), never by sampling, so the same audio always gives the same text.

The model, feature extractor and tokenizer are faster-whisper's; the loop around them is ours.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tingji.engine.backend import Decoded, DecodeOptions, Piece

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
        without_timestamps=not options.timestamps,
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
        if _too_fast(item.text, item.seconds):
            _cut_loop(tokenizer, item)


def _text(tokenizer: Any, tokens: list[int]) -> str:
    return str(tokenizer.decode([t for t in tokens if t < tokenizer.eot])).strip()


def _cut_loop(tokenizer: Any, item: _Item) -> None:
    """Keep one round of a sequence that repeats itself from the start (the same sentence two
    or more times over, perhaps cut off in the last round)."""
    tokens = item.tokens
    for period in range(1, len(tokens) // 2 + 1):
        if all(tokens[n] == tokens[n - period] for n in range(period, len(tokens))):
            item.tokens = tokens[:period]
            item.text = _text(tokenizer, item.tokens)
            return


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
    if options.timestamps:
        tokenizer = _tokenizer(model, options, item.language)
        pieces = _timed_pieces(tokenizer, item.tokens, duration)
        pieces = [
            Piece(p.start, p.end, p.text, item.avg_logprob, no_speech) for p in pieces if p.text
        ]
    else:
        pieces = [Piece(0.0, duration, item.text, item.avg_logprob, no_speech)] if item.text else []
    return Decoded(pieces, item.language, item.language_probability)


def _timed_pieces(tokenizer: Any, tokens: list[int], duration: float) -> list[Piece]:
    """Split a sequence at Whisper's timestamp tokens into timed pieces."""
    begin = tokenizer.timestamp_begin
    pieces: list[Piece] = []
    start: float | None = None
    text_tokens: list[int] = []

    def flush(end: float) -> None:
        text = tokenizer.decode(text_tokens).strip()
        if text:
            first = start if start is not None else (pieces[-1].end if pieces else 0.0)
            pieces.append(Piece(min(first, duration), min(max(end, first), duration), text))
        text_tokens.clear()

    for token in tokens:
        if token >= begin:
            moment = (token - begin) * TIME_PRECISION
            if text_tokens:
                flush(moment)
                start = None
            else:
                start = moment
        elif token < tokenizer.eot:
            text_tokens.append(token)
    if text_tokens:
        flush(duration)
    return pieces
