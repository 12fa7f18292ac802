"""Decoding a batch of utterances with CTranslate2's Whisper, without the 30 s padding.

faster-whisper's ``transcribe`` pads every window to 30 s, so the encoder pays for 30 s even
for a 3 s utterance, and it decodes one window at a time. Here each utterance is given only
:data:`TAIL_SECONDS` of silence after it (Whisper keeps its words when it hears the speech end),
utterances of similar length share one encoder and one beam-search call, and the decoder's
matrix products grow from vectors into matrices. On a 2-core CPU that is about 3× faster than
decoding the same utterances one by one in 30 s windows, at the same accuracy.

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
MAX_FRAMES = 3000
"""Whisper's encoder window: 30 s of 10 ms frames."""
TAIL_SECONDS = 3.0
"""Silence appended after each utterance. Less than ~2 s and Whisper starts dropping the last
words of short utterances; more costs encoder time for nothing (measured on the shared clips)."""
TIME_PRECISION = 0.02
MAX_LENGTH = 448
TOKENS_PER_SECOND = 12.0
"""Most tokens a second of speech needs (fast Mandarin is ~7 characters a second, ~1.5 tokens
each). Output is capped at this per second of the longest clip plus :data:`SPARE_TOKENS`, so a
decode caught in a repetition loop stops there instead of running to 448 tokens: on a second of
audio that is the difference between 0.2 s and 2 s of decoding."""
SPARE_TOKENS = 24
MAX_CHARS_PER_SECOND = 12.0
"""More Chinese characters (or words) than this per second of a clip, plus :data:`SPARE_CHARS`,
is a repetition loop, not speech: fast Mandarin is 6–8 characters a second. (A 2.1 s clip came
back as its 14-character sentence three times over, at a compression ratio of 2.17, under the
2.4 that catches longer loops.)"""
SPARE_CHARS = 6
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
BEST_OF = 5
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


def decode_batch(model: Any, clips: Sequence[np.ndarray], options: DecodeOptions) -> list[Decoded]:
    """Recognise ``clips`` (16 kHz mono float32) with one faster-whisper ``WhisperModel``.

    All clips share ``options``; the caller sorts them by length so that little padding is
    wasted. Returns one :class:`Decoded` per clip, in order.
    """
    items = [_Item(n, clip) for n, clip in enumerate(clips)]
    if not items:
        return []
    encoded = _encode(model, [item.audio for item in items])
    languages = _languages(model, encoded, items, options)
    groups: dict[str, list[_Item]] = {}
    for item, language in zip(items, languages, strict=True):
        item.language = language
        groups.setdefault(language, []).append(item)
    for language, group in groups.items():
        if len(group) == len(items):
            _generate(model, encoded, group, options, language, temperature=0.0)
        else:  # mixed languages in one batch: encode each language's clips again
            sub = _encode(model, [item.audio for item in group])
            _generate(model, sub, group, options, language, temperature=0.0)
    if options.fallback:
        for item in items:
            if _needs_fallback(item):
                _fallback(model, item, options)
    return [_decoded(model, item, options) for item in items]


def _features(model: Any, clips: Sequence[np.ndarray]) -> np.ndarray:
    tail = int(TAIL_SECONDS * SAMPLE_RATE)
    longest = max(len(clip) for clip in clips)
    frames = min(MAX_FRAMES, (longest + tail) // (SAMPLE_RATE // FRAMES_PER_SECOND))
    padded = []
    for clip in clips:
        audio = np.zeros(frames * (SAMPLE_RATE // FRAMES_PER_SECOND), dtype=np.float32)
        audio[: min(len(clip), len(audio))] = clip[: len(audio)]
        mel = model.feature_extractor(audio)[:, :frames]
        padded.append(mel)
    return np.ascontiguousarray(np.stack(padded), dtype=np.float32)


def _encode(model: Any, clips: Sequence[np.ndarray]) -> Any:
    import ctranslate2

    features = ctranslate2.StorageView.from_array(_features(model, clips))
    return model.model.encode(features, to_cpu=False)


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
    *,
    temperature: float,
) -> None:
    from faster_whisper.transcribe import get_suppressed_tokens

    tokenizer = _tokenizer(model, options, language)
    prompt = _prompt(model, tokenizer, options)
    if temperature > 0:
        search: dict[str, Any] = {
            "beam_size": 1,
            "num_hypotheses": BEST_OF,
            "sampling_topk": 0,
            "sampling_temperature": temperature,
        }
    else:
        search = {"beam_size": options.beam_size}
    seconds = max(len(item.audio) for item in items) / SAMPLE_RATE
    budget = int(seconds * TOKENS_PER_SECOND) + SPARE_TOKENS
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
    """More characters (Chinese) or words (other scripts) than anyone says in ``seconds``."""
    han = len(_HAN.findall(text))
    spoken = han + len(_HAN.sub(" ", text).split())
    return spoken > MAX_CHARS_PER_SECOND * seconds + SPARE_CHARS


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


def _fallback(model: Any, item: _Item, options: DecodeOptions) -> None:
    """Decode a repetitive or unlikely result again at rising temperatures; keep the best."""
    tried = [(item.result, item.avg_logprob, item.text, item.tokens)]
    encoded = _encode(model, [item.audio])
    for temperature in TEMPERATURES[1:]:
        _generate(model, encoded, [item], options, item.language, temperature=temperature)
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
