"""Live recognition as the audio arrives: partial text while someone speaks, a final
sentence when a pause ends the utterance.

:class:`OnlineRecognizer` runs Silero VAD over the stream as blocks arrive. While someone speaks
it decodes the growing utterance greedily every ``partial_interval`` seconds of audio (a
:class:`~tingji.engine.streaming.Partial`); once a pause of ``min_silence_ms`` closes the
utterance it decodes it again with the configured beam and the file pipeline's post-processing
(a :class:`~tingji.engine.streaming.Final`).

Decodes are rationed: partials are spaced out (never more than half the model's time for one
session) and yield to finals. In a long utterance partials anchor at a dip and decode only
what follows it, and the final of an utterance over 8 s uses a narrower beam, so that a long
sentence's final comes as soon after it ends as a short one's. The final does not wait for the
pause to be confirmed: once ``settle_silence_ms`` of it have passed, the utterance is decoded
as VAD will cut it, and that decode is the final if the pause goes on to ``min_silence_ms``. A
:class:`DecodeGate` shared by the live sessions on one model starts no partial while a final is
in flight; the partials of several sessions share the model's batches.
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from tingji.engine import heard
from tingji.engine import text as textproc
from tingji.engine.backend import Backend, Decoded, DecodeOptions, Piece
from tingji.engine.finish import hint_for, postprocess, script_for_matching
from tingji.engine.hotwords import HotwordIndex
from tingji.engine.live_text import collapse_loops, plain, settle
from tingji.engine.pipeline import (
    HINT_ALL_LIMIT,
    HINT_PER_SEGMENT,
    LANGUAGE_PROBE_SECONDS,
    TIMESTAMP_WINDOW_SECONDS,
)
from tingji.engine.streaming import Event, Final, Partial
from tingji.engine.vad import (
    SAMPLE_RATE,
    WINDOW,
    SileroProbabilities,
    SpeechSegmenter,
    SpeechSpan,
)
from tingji.errors import OptionError
from tingji.types import Replacement, Segment, TranscribeOptions

SURE_LANGUAGE = 0.9
"""When no language is given, a detection this sure on ``LANGUAGE_LOCK_SECONDS`` of audio or
more fixes it; otherwise detections are pooled over ``LANGUAGE_PROBE_SECONDS`` of speech."""
LANGUAGE_LOCK_SECONDS = 2.0
AGREEING_LANGUAGE = 0.7
"""Two detections this sure of the same language fix it too."""
CONFIDENT_LOGPROB = -0.6
"""A partial decoded at least this sure (mean token log-probability) shows text early."""
STUCK_RATIO = 2.4
"""A final whose text compresses better than this is decoded again with fallback."""
_VAD_WINDOW_MS = 32
PAUSE_WINDOWS = 2
"""No partial starts once this many VAD windows (64 ms) of a pause have passed: the final
decode the pause may start would wait for it."""
EMPTY_RETRY_S = 0.3
"""Seconds of new audio after a partial that heard nothing before the next one."""
_RECENT_WINDOWS = 47
"""Windows (1.5 s) among which an overdue partial anchor goes at the least speech-like."""


@dataclass(frozen=True)
class StreamOptions:
    """How a live session trades latency against accuracy and CPU."""

    partials: bool = True
    """Decode the utterance in progress for partial text."""
    partial_interval: float = 0.7
    """Seconds of new audio between two partial decodes of one utterance."""
    partial_gap: float = 0.4
    """Seconds from the end of one partial decode to the start of the next, at least as long
    as that decode took (time for the other sessions and for finals)."""
    first_partial: float = 0.8
    """Seconds from the utterance's start (speech padding included) to its first partial."""
    min_silence_ms: int = 400
    """A pause this long ends an utterance (files use 500 ms: here it is latency). From 400
    ms up the utterance keeps the file pipeline's 200 ms of padding, and so its audio."""
    relax_after_s: float = 5.0
    relaxed_silence_ms: int = 300
    """An utterance longer than ``relax_after_s`` ends at a pause of ``relaxed_silence_ms``:
    a long sentence is finished (and corrected) at its next breath, and its final decode
    stays short enough to arrive soon after. (A beam-5 decode of 9 s of speech takes about
    1.3 s on 2 cores. 200 ms after 3 s was measured too: no better worst final through the
    server, and CER between live and file text went from 0.084 to 0.102.)"""
    max_utterance_s: float = 15.0
    """An utterance this long is cut at its longest pause (partials re-decode all of it)."""
    final_beam_size: int | None = None
    """Beam width of the decode that finishes an utterance; None: the pipeline's."""
    long_final_s: float = 8.0
    long_final_beam_size: int | None = 2
    """Beam width of the final decode of an utterance longer than ``long_final_s``; None: as
    short ones. A beam-5 decode of 10.8 s takes 1.06 s on 2 cores, beam 2 0.89 s, greedy 0.65 s;
    on the shared clips beam 2 gave the same live text as beam 5, greedy did not."""
    anchor_after_s: float = 4.0
    dip_ms: int = 96
    anchor_by_s: float = 6.0
    """Once an utterance has ``anchor_after_s`` seconds of speech before a dip of ``dip_ms``
    that the speech resumed after, its partials anchor there: the part before the dip is
    decoded once (greedily, as partials are) and later partials decode only what follows, so
    a partial in flight when the utterance ends holds its final back less. With no such dip
    by ``anchor_by_s``, they anchor at the least speech-like window of the last second and a
    half. Finals always decode the whole utterance. 0 turns anchoring off."""
    settle_silence_ms: int = 160
    """A pause this long (and at least the speech padding) starts the final decode of the
    utterance as VAD will cut it if the pause goes on."""


class DecodeGate:
    """Orders the decodes of the live sessions that share one model.

    Finals never wait here, and while one is in flight no partial starts, so finals go first.
    Partials of different sessions may run at the same time: the model's batcher decodes the
    ones that arrive together as one batch (three sessions' partials cost little more than
    one). A session that is refused simply asks again with its next audio block.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._finals = 0

    @contextmanager
    def final(self) -> Iterator[None]:
        with self._lock:
            self._finals += 1
        try:
            yield
        finally:
            with self._lock:
                self._finals -= 1

    def try_partial(self) -> bool:
        """May a partial start now? False while a final is in flight."""
        with self._lock:
            return self._finals == 0


class OnlineRecognizer:
    """Partial text while an utterance goes on, a final sentence when a pause ends it.

    A pause of ``settle_silence_ms`` already starts the final decode of the utterance so far;
    when VAD confirms the end (``min_silence_ms``) with no speech in between, that decode is the
    final, so the final costs the pause plus about one decode, not the pause plus a wait.
    """

    def __init__(
        self,
        backend: Backend,
        options: TranscribeOptions,
        stream: StreamOptions | None = None,
        *,
        beam_size: int = 5,
        gate: DecodeGate | None = None,
    ) -> None:
        if options.language is not None and options.language not in backend.languages():
            raise OptionError(f"unknown language '{options.language}'")
        self.backend = backend
        self.options = options
        self.stream = stream or StreamOptions()
        self.language: str | None = options.language
        self._guess: str | None = None  # the language detections favour so far
        self._votes: dict[str, float] = {}  # language → detection probability × seconds
        self._heard = 0.0  # seconds of audio detected on
        self._fairly_sure: str | None = None  # the last detection of AGREEING_LANGUAGE
        self.final_beam = self.stream.final_beam_size or options.beam_size or beam_size
        vad = replace(
            options.vad,
            enabled=True,
            min_silence_ms=self.stream.min_silence_ms,
            max_segment_s=min(options.vad.max_segment_s, self.stream.max_utterance_s),
        )
        self._probs = SileroProbabilities(second_opinion=False)
        self._segmenter = SpeechSegmenter(
            vad,
            relax_after_s=self.stream.relax_after_s,
            relaxed_silence_ms=self.stream.relaxed_silence_ms,
        )
        self._low = max(vad.threshold - 0.15, 0.01)
        self._pad = min(vad.speech_pad_ms * SAMPLE_RATE // 1000, vad.min_silence_ms * 8)
        self._settle_windows = max(
            math.ceil(self.stream.settle_silence_ms / _VAD_WINDOW_MS), math.ceil(self._pad / WINDOW)
        )
        self._quiet = 0
        self._windows = 0
        self._dip_windows = max(1, math.ceil(self.stream.dip_ms / _VAD_WINDOW_MS))
        self._anchoring = self.stream.partials and self.stream.anchor_after_s > 0
        self._anchor: _Anchor | None = None
        self._cut: int | None = None  # where to anchor partials, once speech resumed after a dip
        self._recent = np.zeros(0, dtype=np.float32)  # the last probabilities
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0
        self.total = 0
        """Samples received so far."""
        self._hotwords = HotwordIndex(list(options.hotwords)) if options.hotwords else None
        self._gate = gate or DecodeGate()
        self._utterance = 0
        self._open: int | None = None
        self._hypothesis = ""
        self._stable = ""
        self._partial_at: int | None = None
        self._partial_done = 0.0
        self._partial_cost = 0.0
        self._early: _Early | None = None
        self._finals: list[Final] = []
        self.replacements: list[Replacement] = []
        self.decode_time = 0.0
        """Seconds spent decoding, waits for the model included."""

    # -- the stream --------------------------------------------------------------------------
    def accept(self, samples: np.ndarray) -> list[Event]:
        """Take the next block (float32, 16 kHz mono); return what it made known."""
        block = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._buffer = np.concatenate([self._buffer, block])
        self.total += len(block)
        events = self._push(self._probs(block))
        events.extend(self._decode_in_progress())
        return events

    def finish(self) -> list[Event]:
        """The stream has ended: finish the utterance in progress."""
        spans = self._segmenter.push(self._probs(np.zeros(0, dtype=np.float32), final=True))
        spans += self._segmenter.finish(self.total)
        events: list[Event] = [self._final(span) for span in spans]
        self._open = None
        return events

    def segments(self) -> list[Segment]:
        return [segment for final in self._finals for segment in final.segments]

    def close(self) -> None:
        """Nothing is held between calls (the gate keeps no per-session state)."""

    # -- VAD ---------------------------------------------------------------------------------
    def _push(self, probs: np.ndarray) -> list[Event]:
        spans = self._segmenter.push(probs)
        self._recent = np.concatenate([self._recent, probs])[-_RECENT_WINDOWS:]
        voiced = np.flatnonzero(probs >= self._low)
        dip = self._quiet + int(voiced[0]) if len(voiced) else 0  # windows, if speech resumed
        resumed = (self._windows + int(voiced[0])) * WINDOW if len(voiced) else 0
        self._windows += len(probs)
        self._quiet = len(probs) - 1 - int(voiced[-1]) if len(voiced) else self._quiet + len(probs)
        events: list[Event] = [self._final(span) for span in spans]
        if len(voiced):
            self._early = None  # speech went on after the pause it was decoded at
        start = self._segmenter.speech_start
        if start != self._open:  # an utterance began (or a long one was cut)
            self._open = start
            self._reset_utterance()
        elif start is not None and dip >= self._dip_windows and self._anchor_due(start, resumed):
            # one window before the speech that resumed: its onset may score low
            self._cut = max(resumed - WINDOW, resumed - (dip - 1) * WINDOW)
        elif start is not None and self._cut is None and self._anchor_overdue(start):
            lowest = self._windows - len(self._recent) + int(np.argmin(self._recent))
            self._cut = lowest * WINDOW + WINDOW // 2
        keep_from = self._segmenter.earliest_needed(self.total)
        drop = max(0, keep_from - self._buffer_start)
        self._buffer, self._buffer_start = self._buffer[drop:], self._buffer_start + drop
        return events

    def _reset_utterance(self) -> None:
        self._hypothesis, self._stable, self._partial_at, self._early = "", "", None, None
        self._anchor, self._cut = None, None

    # -- decoding ----------------------------------------------------------------------------
    def _decode_in_progress(self) -> list[Event]:
        """A decode of the open utterance when one is due: early final, partial, or none."""
        start = self._open
        if start is None:
            return []
        if self._quiet >= self._settle_windows:  # a pause began: decode as if it ended here
            end = (self._windows - self._quiet) * WINDOW + self._pad  # where VAD would cut
            if self._early is not None or end > self.total:
                return []
            clip = self._buffer[start - self._buffer_start : end - self._buffer_start]
            with self._gate.final():
                decoded, language = self._decode(clip, beam_size=self._beam(clip), final=True)
            self._early = _Early(start, end, decoded, language)
            return self._partial(start, decoded, language)
        if self._quiet >= PAUSE_WINDOWS or not (self._cut or self._partial_due(start)):
            # a pause may be the end: keep the model free for the final decode it would start
            return []
        if not self._gate.try_partial():
            return []
        anchor, cut = self._anchor, self._cut
        begin = self._anchored_to(start)
        end = cut if cut is not None else self.total
        clip = self._buffer[begin - self._buffer_start : end - self._buffer_start]
        began = time.monotonic()
        try:
            decoded, language = self._decode(clip, beam_size=1, final=False)
        finally:
            self._partial_done = time.monotonic()
            self._partial_cost = self._partial_done - began
        if anchor is not None:
            shift = (begin - start) / SAMPLE_RATE
            tail = [replace(p, start=p.start + shift, end=p.end + shift) for p in decoded.pieces]
            decoded = Decoded([*anchor.pieces, *tail], decoded.language)
        if cut is not None:
            self._anchor, self._cut = _Anchor(cut, decoded.pieces), None
        return self._partial(start, decoded, language)

    def _anchored_to(self, start: int) -> int:
        """Where the partials of the utterance from ``start`` begin to decode."""
        return self._anchor.end if self._anchor is not None else start

    def _anchor_overdue(self, start: int) -> bool:
        """Whether the partials decode ``anchor_by_s`` or more and no dip came to anchor at."""
        if not self._anchoring or len(self._recent) < _RECENT_WINDOWS:
            return False
        oldest = (self._windows - _RECENT_WINDOWS) * WINDOW  # the cut comes after it
        return oldest - self._anchored_to(start) >= (self.stream.anchor_by_s - 1.5) * SAMPLE_RATE

    def _anchor_due(self, start: int, resumed: int) -> bool:
        """Whether enough speech before the dip that ended at ``resumed`` is not anchored."""
        return (
            self._anchoring
            and resumed - self._anchored_to(start) >= self.stream.anchor_after_s * SAMPLE_RATE
        )

    def _partial_due(self, start: int) -> bool:
        if not self.stream.partials:
            return False
        if self._partial_at is None:
            return self.total - start >= self.stream.first_partial * SAMPLE_RATE
        since = time.monotonic() - self._partial_done
        if not self._hypothesis:  # nothing heard yet: try again soon, to show text early
            return self.total - self._partial_at >= EMPTY_RETRY_S * SAMPLE_RATE
        return (
            self.total - self._partial_at >= self.stream.partial_interval * SAMPLE_RATE
            and since >= max(self.stream.partial_gap, self._partial_cost)
        )

    def _partial(self, start: int, decoded: Decoded, language: str) -> list[Event]:
        self._partial_at = self.total
        if not self.stream.partials:
            return []
        text = collapse_loops(self._plain_text(decoded, language))
        confident = bool(decoded.pieces) and all(
            p.avg_logprob is not None and p.avg_logprob >= CONFIDENT_LOGPROB for p in decoded.pieces
        )
        self._stable = settle(self._stable, self._hypothesis, text, language, confident=confident)
        self._hypothesis = text
        return [Partial(self._utterance, round(start / SAMPLE_RATE, 3), text, self._stable)]

    def _final(self, span: SpeechSpan) -> Final:
        early = self._early
        if early is not None and (early.start, early.end) == (span.start, span.end):
            decoded, language = early.decoded, early.language
        else:
            clip = self._buffer[span.start - self._buffer_start : span.end - self._buffer_start]
            with self._gate.final():
                decoded, language = self._decode(clip, beam_size=self._beam(clip), final=True)
        offset = span.start / SAMPLE_RATE
        limit = span.end / SAMPLE_RATE
        segments: list[Segment] = []
        first_id = sum(len(f.segments) for f in self._finals)
        for n, piece in enumerate(decoded.pieces):
            text, corrections = postprocess(
                piece.text,
                self.options,
                language,
                self._hotwords,
                last=n == len(decoded.pieces) - 1,
            )
            segment_id = first_id + len(segments)
            self.replacements.extend(
                Replacement(segment_id, c.original, c.replacement) for c in corrections
            )
            if not text:
                continue
            start = min(offset + piece.start, limit)
            segments.append(
                Segment(
                    id=segment_id,
                    start=round(start, 3),
                    end=round(max(start, min(offset + piece.end, limit)), 3),
                    text=text,
                    avg_logprob=piece.avg_logprob,
                    no_speech_prob=piece.no_speech_prob,
                )
            )
        final = Final(
            utterance=self._utterance,
            start=round(offset, 3),
            end=round(limit, 3),
            text=textproc.join_segments([s.text for s in segments], language),
            segments=tuple(segments),
            raw=self._plain_text(decoded, language),
        )
        self._finals.append(final)
        self._utterance += 1
        self._reset_utterance()
        return final

    def _beam(self, clip: np.ndarray) -> int:
        """The final decode's beam width for ``clip``."""
        long_beam = self.stream.long_final_beam_size
        if long_beam is not None and len(clip) > self.stream.long_final_s * SAMPLE_RATE:
            return min(long_beam, self.final_beam)
        return self.final_beam

    def _decode(self, clip: np.ndarray, *, beam_size: int, final: bool) -> tuple[Decoded, str]:
        """Decode ``clip``; also the language of its text.

        Without a given language, finals detect it (an extra encoder pass) until detections
        agree enough to fix it (:meth:`_learn_language`); partials meanwhile take the best
        guess so far (a clip of a second is too short to tell a language by). A final that
        comes back stuck in a repetition is decoded again with the fallback searches. Partials
        are padded to fit (faster); finals decode as files do.

        The hotwords' hint only corrects what is heard: where the model hears no speech (noise
        the VAD took for speech), Whisper reads the hint back as text, so such a decode stands
        only if one without the hint hears something too. Characters the decode stopped
        inside of (U+FFFD) are left out.
        """
        language = self.language or (None if final else self._guess)
        options = DecodeOptions(
            language=language,
            task=self.options.task,
            beam_size=beam_size,
            hint=self._hint(),
            hotwords=self.options.hotwords,
            initial_prompt=self.options.initial_prompt,
            itn=self.options.itn,
            fallback=False,
            full_window=None if final else False,
            # as in files: one piece for a short utterance, timed pieces for a long one
            timestamps=final and len(clip) / SAMPLE_RATE > TIMESTAMP_WINDOW_SECONDS,
        )
        started = time.perf_counter()
        decoded = self.backend.decode(clip, options)
        if final and _stuck(decoded):
            decoded = self.backend.decode(clip, replace(options, fallback=True))
        decoded = heard.checked(self.backend, [clip], options, [decoded])[0]
        self.decode_time += time.perf_counter() - started
        if self.language is None and language is None:
            self._learn_language(decoded, len(clip) / SAMPLE_RATE)
        return decoded, language or decoded.language

    def _learn_language(self, decoded: Decoded, seconds: float) -> None:
        """Fixed by one sure detection, two fairly sure ones that agree, or the most
        probable over ``LANGUAGE_PROBE_SECONDS`` of audio."""
        language, sure = decoded.language, decoded.language_probability or 0.0
        agreeing = sure >= AGREEING_LANGUAGE and self._fairly_sure == language
        self._votes[language] = self._votes.get(language, 0.0) + sure * seconds
        self._heard += seconds
        self._guess = max(self._votes, key=self._votes.__getitem__)
        if sure >= AGREEING_LANGUAGE:
            self._fairly_sure = language
        if (sure >= SURE_LANGUAGE and seconds >= LANGUAGE_LOCK_SECONDS) or agreeing:
            self.language = language
        elif self._heard >= LANGUAGE_PROBE_SECONDS:
            self.language = self._guess

    def _hint(self) -> str | None:
        index = self._hotwords
        if index is None:
            return None
        if len(index) <= HINT_ALL_LIMIT:
            terms: list[str] = list(index.terms)
        elif self._hypothesis:  # a long glossary: the terms that sound like what was heard
            terms = index.select_hints(self._hypothesis, limit=HINT_PER_SEGMENT)
        else:
            return None
        language = self.language or self._guess
        if language is None:
            return " ".join(terms) or None
        return hint_for(terms, language)

    def _plain_text(self, decoded: Decoded, language: str) -> str:
        """Text as partials show it: script and hotwords, but no ITN and no punctuation (both
        change earlier characters as later ones arrive)."""
        texts = []
        for piece in decoded.pieces:
            text = script_for_matching(piece.text.strip(), language, self.options)
            if self._hotwords is not None and text:
                text, _ = self._hotwords.correct(text)
            if language in textproc.ITN_LANGUAGES and self.options.script == "traditional":
                text = textproc.to_script(text, "traditional")
            texts.append(plain(text, language))
        return textproc.join_segments(texts, language)


def _stuck(decoded: Decoded) -> bool:
    """Text that repeats itself (gzip-compresses better than 2.4:1, Whisper's own test)."""
    data = "".join(p.text for p in decoded.pieces).encode()
    return len(data) > 24 and len(data) / len(zlib.compress(data)) > STUCK_RATIO


@dataclass(frozen=True)
class _Anchor:
    """The part of a long utterance its partials no longer decode again."""

    end: int
    """Samples from the start of the stream."""
    pieces: list[Piece]
    """Its partial decode; times in seconds from the utterance's start."""


@dataclass(frozen=True)
class _Early:
    """A final decode made at the start of a pause, used if the pause ends the utterance."""

    start: int
    end: int
    decoded: Decoded
    language: str
