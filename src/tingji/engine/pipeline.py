"""The recognition pipeline: stream audio → VAD → per-utterance decoding → post-processing.

:class:`Transcription` is a run over one input. Iterating it yields :class:`Segment` objects as
they are recognised (so callers can show progress or stream results); :meth:`result` drains it
and returns the :class:`Transcript`. While one batch of windows decodes, the audio after it is
read and cut into the next, so memory stays bounded by two batches of windows plus one audio
block, whatever the length of the input.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import BinaryIO

import numpy as np

from tingji import audio
from tingji.engine import heard
from tingji.engine import speakers as floor
from tingji.engine import text as textproc
from tingji.engine.backend import Backend, Decoded, DecodeOptions, Piece
from tingji.engine.diarize.pipeline import MAX_SPEAKERS
from tingji.engine.finish import hint_for, postprocess, restore_terms, script_for_matching
from tingji.engine.hotwords import HotwordIndex
from tingji.engine.packing import Window
from tingji.engine.vad import SAMPLE_RATE, WINDOW, SileroProbabilities, SpeechSegmenter, SpeechSpan
from tingji.errors import AudioError, EmptyAudioError, OptionError, TooLongAudioError
from tingji.types import (
    Omission,
    Replacement,
    Segment,
    SpeakerTurn,
    TranscribeOptions,
    Transcript,
    VadOptions,
)

BLOCK_SECONDS = 30.0
LANGUAGE_PROBE_SECONDS = 8.0
"""Speech gathered before the language is decided, when it is not given."""
HINT_ALL_LIMIT = 20
"""Glossaries up to this many terms are hinted whole; longer ones per segment."""
HINT_PER_SEGMENT = 12
MIN_COVERAGE = 0.3
"""A packed span whose time the text covers less than this is decoded again on its own."""
MAX_WINDOW_SECONDS = 27.0
"""Longest window: with the silence the decoder appends (3 s) it fills Whisper's 30 s."""
TIMESTAMP_WINDOW_SECONDS = 12.0
"""Windows longer than this are decoded with timestamps, to split them into shorter segments."""
BATCH_WINDOWS = 8
BATCH_SECONDS = 120.0
"""Windows are decoded in batches of this many, or this much audio, whichever comes first."""
IN_FLIGHT = 2
"""Batches of windows being decoded while the audio after them is read and cut: the next batch
queues behind the last, so a model with several replicas never waits for the reading."""

Source = str | BinaryIO
Timed = tuple[float, float, Piece]
"""A decoded piece with its start and end on the input's time line."""
Decoding = tuple[list[Timed], list[Timed]]
"""A window's pieces, and the stretches whose text was dropped (:attr:`Decoded.omitted`)."""
Diarize = Callable[[np.ndarray, TranscribeOptions, Callable[[float], None]], list[SpeakerTurn]]
"""Who speaks when in the whole input (16 kHz mono), for ``options``; gets a progress callback
(share done, 0–1)."""


class Transcription:
    """One run of the pipeline over one input; iterate for segments, or call :meth:`result`."""

    def __init__(
        self,
        backend: Backend,
        source: Source,
        options: TranscribeOptions,
        *,
        beam_size: int = 5,
        name: str | None = None,
        max_seconds: float | None = None,
        diarize: Diarize | None = None,
        checkpoint: Callable[[], None] | None = None,
    ) -> None:
        """``max_seconds``: longest input accepted; longer raises ``TooLongAudioError`` (here
        when the input declares it, else while decoding, which then stops). ``diarize`` tells
        speakers apart when ``options.diarize`` asks for it. ``checkpoint`` is called now and
        then while speakers are told apart (no segment comes then): an exception raised from
        it stops the run there, as one raised between segments would."""
        self.backend = backend
        self.source = source
        self.options = options
        self.name = name or (source if isinstance(source, str) else None)
        self.beam_size = options.beam_size or beam_size
        if options.language is not None and options.language not in backend.languages():
            raise OptionError(
                f"unknown language '{options.language}'; this model knows "
                f"{', '.join(sorted(backend.languages()))}"
            )
        self.max_seconds = max_seconds
        if options.diarize and diarize is None:
            raise OptionError("telling speakers apart is not available here")
        check_speaker_options(options)
        self._diarize = diarize if options.diarize else None
        self._checkpoint = checkpoint
        self.speakers: list[SpeakerTurn] = []
        """Who speaks when, once known (before the first segment)."""
        self._holds: list[SpeakerTurn] = []
        self._several = False
        """More than one speaker holds the floor somewhere."""
        self.stage = "recognising"
        """``speakers`` while telling speakers apart, then ``recognising``."""
        self.stage_progress = 0.0
        try:
            self.info = audio.probe(source, max_seconds=max_seconds)
        except AudioError as exc:
            raise self._named(exc) from exc.__cause__
        self.duration: float | None = self.info.duration
        """Audio length in seconds: metadata until decoding ends, then exact."""
        self.position = 0.0
        """Seconds of audio recognised so far."""
        self.language: str | None = options.language
        self.language_probability: float | None = None if options.language is None else 1.0
        self.segments: list[Segment] = []
        self.replacements: list[Replacement] = []
        self.omitted: list[Omission] = []
        """Stretches whose text was dropped as a repetition loop."""
        self.processing_time = 0.0
        self._hotwords = HotwordIndex(list(options.hotwords)) if options.hotwords else None
        self._ready: list[Window] = []
        self._dispatched = 0
        """Windows sent to be decoded so far."""
        self._speech: tuple[float, float] | None = None
        """Where VAD heard speech, in a file decoded whole (seconds)."""
        self._in_flight: deque[tuple[list[Window], Future[list[Decoding]]]] = deque()
        self._pool: ThreadPoolExecutor | None = None
        self._iterator: Iterator[Segment] | None = None

    # -- iteration ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Segment]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    def result(self) -> Transcript:
        """Run to the end and return the whole transcript."""
        for _ in self:
            pass
        assert self.language is not None
        texts = [s.text for s in self.segments]
        return Transcript(
            text=textproc.join_segments(texts, self.language),
            segments=self.segments,
            language=self.language,
            language_probability=self.language_probability,
            duration=self.duration or 0.0,
            processing_time=self.processing_time,
            model=self.backend.info,
            replacements=self.replacements,
            source=self.name,
            omitted=sorted(self.omitted, key=lambda o: o.start),
            speakers=self.speakers,
        )

    def _run(self) -> Iterator[Segment]:
        try:
            yield from self._steps()
        finally:  # finished, failed or abandoned: stop what is still queued
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            self._in_flight.clear()

    def _find_speakers(self) -> None:
        """Tell speakers apart over the whole input before recognising it."""
        assert self._diarize is not None
        self.stage = "speakers"
        start = None if isinstance(self.source, str) else self.source.tell()
        try:
            blocks = list(audio.stream(self.source, max_seconds=self.max_seconds))
        except AudioError as exc:
            raise self._named(exc) from exc.__cause__
        finally:
            if start is not None and not isinstance(self.source, str):
                self.source.seek(start)
        whole = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
        del blocks

        def progress(share: float) -> None:
            self.stage_progress = share
            if self._checkpoint is not None:
                self._checkpoint()

        self.speakers = self._diarize(whole, self.options, progress)
        self._holds = floor.floor(self.speakers, len(whole) / SAMPLE_RATE)
        self._several = len({h.speaker for h in self._holds}) > 1
        self.stage, self.stage_progress = "recognising", 0.0

    def _at_changes(self, found: list[Timed]) -> list[Timed]:
        """Pieces cut between words where the floor passes to another speaker."""
        out: list[Timed] = []
        for start, end, piece in found:
            if len(piece.words) < 2:
                out.append((start, end, piece))
                continue
            offset = start - piece.start  # a timed piece's words share its mapping
            words = [floor.Word(w.text, w.start + offset, w.end + offset) for w in piece.words]
            for part in floor.split_at_changes(words, self._holds):
                text = "".join(w.text for w in part).strip()
                if text:
                    first, last = part[0].start, min(part[-1].end, end)
                    sub = replace(piece, start=first - offset, end=last - offset, text=text)
                    out.append((max(start, first), max(first, last), sub))
        return out

    def _speaker(self, start: float, end: float) -> str | None:
        return floor.speaker_of(self._holds, start, end) if self._holds else None

    def _steps(self) -> Iterator[Segment]:
        started = time.perf_counter()
        if self._diarize is not None:
            self._find_speakers()
        vad = self.options.vad
        probs = SileroProbabilities() if vad.enabled else None
        segmenter = SpeechSegmenter(vad) if vad.enabled else None
        buffer = np.zeros(0, dtype=np.float32)
        buffer_start = 0
        total = 0
        pending: list[tuple[SpeechSpan, np.ndarray]] = []
        failure: AudioError | None = None

        def take(spans: list[SpeechSpan]) -> Iterator[Segment]:
            for span in spans:
                clip = buffer[span.start - buffer_start : span.end - buffer_start].copy()
                pending.append((span, clip))
            yield from self._drain(pending, final=False)

        blocks = audio.stream(
            self.source, block_seconds=BLOCK_SECONDS, max_seconds=self.max_seconds
        )
        window_samples = self._window_samples()
        head: list[np.ndarray] | None = []  # the whole input, while it fits one window
        try:
            for block in blocks:
                buffer = np.concatenate([buffer, block])
                total += len(block)
                if head is not None:
                    head = head + [block] if total <= window_samples else None
                if segmenter is not None and probs is not None:
                    spans = segmenter.push(probs(block))
                    keep_from = segmenter.earliest_needed(total)
                else:
                    spans = _fixed_spans(buffer_start, total, vad)
                    keep_from = spans[-1].end if spans else buffer_start
                yield from take(spans)
                drop = max(0, keep_from - buffer_start)
                buffer, buffer_start = buffer[drop:], buffer_start + drop
                self.processing_time = time.perf_counter() - started
        except TooLongAudioError as exc:  # over the limit: the rest is not worth recognising
            raise self._named(exc) from exc.__cause__
        except AudioError as exc:
            failure = self._named(exc)  # decode what arrived, then report
        if segmenter is not None and probs is not None:
            spans = segmenter.push(probs(np.zeros(0, dtype=np.float32), final=True))
            spans += segmenter.finish(total)
        else:
            spans = _fixed_spans(buffer_start, total, vad, final=True)
        yield from take(spans)
        if head and pending and not self._dispatched:
            # A file that fits one window is heard whole, as recorded, as Whisper was trained
            # (VAD still decides that there is speech at all): cutting its silences changes
            # words ("语音识别" came out as "运营识别").
            first, last = pending[0][0].start, pending[-1][0].end
            self._speech = (first / SAMPLE_RATE, last / SAMPLE_RATE)
            pending[:] = [(SpeechSpan(0, total), np.concatenate(head))]
        yield from self._drain(pending, final=True)
        while self._in_flight:
            yield from self._recognise()
        if failure is None and total == 0:
            failure = EmptyAudioError("no audio samples", source=self.name)
        self.duration = total / SAMPLE_RATE
        self.position = self.duration
        self.processing_time = time.perf_counter() - started
        if self.language is None:
            self.language = ""  # no speech: nothing to tell the language by
        if failure is not None:
            raise failure

    def _named(self, exc: AudioError) -> AudioError:
        """Report audio errors under the caller's name for the input, not a storage path."""
        if self.name is not None:
            exc.source = self.name
        return exc

    # -- per window --------------------------------------------------------------------------
    def _drain(
        self, pending: list[tuple[SpeechSpan, np.ndarray]], *, final: bool
    ) -> Iterator[Segment]:
        """Pack pending spans into windows; decode once a batch of windows is complete (all
        of them when ``final``)."""
        if pending and self.language is None:
            speech = sum(span.duration for span, _ in pending)
            if speech < LANGUAGE_PROBE_SECONDS and not final:
                return
            sample = np.concatenate([clip for _, clip in pending])[: 30 * SAMPLE_RATE]
            self.language, self.language_probability = self.backend.detect_language(sample)
        max_samples = self._window_samples()
        window = Window()
        taken = 0
        for span, clip in pending:
            if not window.fits(span, max_samples):
                self._ready.append(window)
                window = Window()
            window.add(span, clip)
            taken += 1
        if final:
            if window.parts:
                self._ready.append(window)
            pending.clear()
        else:  # the last window may still grow
            del pending[: taken - len(window.parts)]
        ready_seconds = sum(w.length for w in self._ready) / SAMPLE_RATE
        if self._ready and (
            final or len(self._ready) >= BATCH_WINDOWS or ready_seconds >= BATCH_SECONDS
        ):
            windows, self._ready = self._ready, []
            self._dispatched += len(windows)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="tingji-pipeline")
            self._in_flight.append((windows, self._pool.submit(self._decode, windows)))
        while self._in_flight and (
            self._in_flight[0][1].done() or len(self._in_flight) >= IN_FLIGHT
        ):
            yield from self._recognise()

    def _window_samples(self) -> int:
        """Longest window, in samples."""
        return int(min(self.options.vad.max_segment_s, MAX_WINDOW_SECONDS) * SAMPLE_RATE)

    def _recognise(self) -> Iterator[Segment]:
        """Take the oldest batch of windows in flight; yield its segments in order."""
        windows, decoding = self._in_flight.popleft()
        timed = decoding.result()
        for window, (found, dropped) in zip(windows, timed, strict=True):
            self._omit(dropped)
            if len(window.parts) > 1 and self._timestamps(window):
                # A packed window sometimes comes back with a whole utterance left out;
                # decode any span the text does not reach on its own.
                spans = [(start, end) for start, end, _ in found]
                alone = []
                for part in window.parts:
                    if window.coverage(part, spans) < MIN_COVERAGE:
                        single = Window()
                        single.add(part.span, part.clip)
                        alone.append(single)
                for extra, dropped in self._decode(alone):
                    found += extra
                    self._omit(dropped)
                found.sort(key=lambda item: item[0])
            if self._holds:
                found = self._at_changes(found)
            for n, (start, end, piece) in enumerate(found):
                text = self._postprocess(piece, last=n == len(found) - 1)
                if not text:
                    continue
                whole = piece.start <= 0 and piece.end >= window.length / SAMPLE_RATE
                if self._speech is not None and whole:
                    # an untimed piece of a file heard whole: it spans the speech VAD heard
                    start, end = self._speech
                segment = Segment(
                    id=len(self.segments),
                    start=round(start, 3),
                    end=round(end, 3),
                    text=text,
                    avg_logprob=piece.avg_logprob,
                    no_speech_prob=piece.no_speech_prob,
                    speaker=self._speaker(start, end),
                )
                self.segments.append(segment)
                yield segment
            self.position = window.end

    def _omit(self, dropped: list[Timed]) -> None:
        self.omitted.extend(
            Omission(round(start, 3), round(end, 3), piece.text) for start, end, piece in dropped
        )

    def _timestamps(self, window: Window) -> bool:
        """Timed pieces for long windows, and for all when several people speak (their
        words' times tell where the floor changes)."""
        return window.length / SAMPLE_RATE > TIMESTAMP_WINDOW_SECONDS or self._several

    def _decode(self, windows: list[Window]) -> list[Decoding]:
        """Decode windows (hinting hotwords); each one's pieces, and the stretches whose text
        was dropped, on the input's time line."""
        assert self.language is not None
        if not windows:
            return []
        base = DecodeOptions(
            language=self.language,
            task=self.options.task,
            beam_size=self.beam_size,
            hotwords=self.options.hotwords,
            initial_prompt=self.options.initial_prompt,
            itn=self.options.itn,
        )
        index = self._hotwords
        if index is not None and len(index) <= HINT_ALL_LIMIT:
            base = replace(base, hint=self._hint(index.terms))
        decoded: list[Decoded | None] = [None] * len(windows)

        def decode_group(timestamps: bool) -> None:
            chosen = [n for n, w in enumerate(windows) if self._timestamps(w) == timestamps]
            options = replace(base, timestamps=timestamps)
            clips = [windows[n].audio for n in chosen]
            for n, answer in zip(chosen, self._decode_clips(clips, options), strict=True):
                decoded[n] = answer

        if all(self._timestamps(w) == self._timestamps(windows[0]) for w in windows):
            decode_group(self._timestamps(windows[0]))  # one group: no thread needed
        else:  # both at once: a backend with several replicas runs them side by side
            with ThreadPoolExecutor(max_workers=1) as pool:
                timed_group = pool.submit(decode_group, True)
                decode_group(False)
                timed_group.result()
        timed = []
        for window, result in zip(windows, decoded, strict=True):
            assert result is not None
            timed.append((_on_input(window, result.pieces), _on_input(window, result.omitted)))
        return timed

    def _decode_clips(self, clips: list[np.ndarray], options: DecodeOptions) -> list[Decoded]:
        """One batched pass; with a long glossary, a second pass per clip hinted with the
        terms that sound like its first pass. A term the first pass wrote out and the hinted
        pass lost is put back where the hinted pass has other characters for it
        (:meth:`_restore`); the hinted pass is then kept unless it has fewer terms."""
        if not clips:
            return []
        decoded = heard.decode(self.backend, clips, options)
        index = self._hotwords
        if index is None or len(index) <= HINT_ALL_LIMIT:
            return decoded
        by_hint: dict[str, list[int]] = {}
        for n, first in enumerate(decoded):
            text = self._script_for_matching(" ".join(p.text for p in first.pieces))
            hint = self._hint(index.select_hints(text, limit=HINT_PER_SEGMENT))
            if hint:
                by_hint.setdefault(hint, []).append(n)
        for hint, chosen in by_hint.items():
            second = heard.decode(
                self.backend, [clips[n] for n in chosen], replace(options, hint=hint)
            )
            for n, again in zip(chosen, second, strict=True):
                lost = self._terms_found(decoded[n]) - self._terms_found(again)
                if lost:
                    again = self._restore(decoded[n], again, lost)
                if len(self._terms_found(again)) >= len(self._terms_found(decoded[n])):
                    decoded[n] = again
        return decoded

    def _terms_found(self, decoded: Decoded) -> set[str]:
        """The glossary terms a pass has, after correction."""
        assert self._hotwords is not None
        text = self._script_for_matching("".join(p.text for p in decoded.pieces))
        corrected, _ = self._hotwords.correct(text)
        return {term for term in self._hotwords.terms if term in corrected}

    def _restore(self, first: Decoded, again: Decoded, lost: set[str]) -> Decoded:
        """The hinted pass with the terms it lost from the first pass written back
        (:func:`restore_terms`)."""
        texts = [self._script_for_matching(p.text) for p in again.pieces]
        if any(len(t) != len(p.text) for t, p in zip(texts, again.pieces, strict=True)):
            return again  # a script conversion changed lengths: positions would not hold
        before = self._script_for_matching("".join(p.text for p in first.pieces))
        texts = restore_terms(before, texts, lost, self._terms_found(again))
        pieces = [replace(p, text=t) for p, t in zip(again.pieces, texts, strict=True)]
        return replace(again, pieces=pieces)

    def _hint(self, terms: Sequence[str]) -> str | None:
        return hint_for(terms, self.language)

    def _script_for_matching(self, text: str) -> str:
        return script_for_matching(text, self.language, self.options)

    def _postprocess(self, piece: Piece, *, last: bool) -> str:
        text, corrections = postprocess(
            piece.text, self.options, self.language, self._hotwords, last=last
        )
        self.replacements.extend(
            Replacement(len(self.segments), c.original, c.replacement) for c in corrections
        )
        return text


def _on_input(window: Window, pieces: list[Piece]) -> list[Timed]:
    """Pieces with their times on the input's time line."""
    timed = []
    for piece in pieces:
        start = window.to_original(piece.start, is_end=False)
        end = max(start, window.to_original(piece.end, is_end=True))
        timed.append((start, end, piece))
    return timed


def check_speaker_options(options: TranscribeOptions) -> None:
    """Speaker counts are whole numbers from 1 to :data:`MAX_SPEAKERS`, minimum ≤ maximum, and
    only with ``diarize``."""
    values = {
        "speakers": options.speakers,
        "min_speakers": options.min_speakers,
        "max_speakers": options.max_speakers,
    }
    for name, value in values.items():
        if value is None:
            continue
        if not options.diarize:
            raise OptionError(f"{name} needs diarize (telling speakers apart) to be on")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SPEAKERS:
            raise OptionError(f"{name} must be a whole number from 1 to {MAX_SPEAKERS}")
    low, high = options.min_speakers, options.max_speakers
    if low is not None and high is not None and low > high:
        raise OptionError("min_speakers must not be more than max_speakers")
    if options.speakers is not None and (low is not None or high is not None):
        raise OptionError("give either speakers or min_speakers/max_speakers, not both")


def _fixed_spans(start: int, total: int, vad: VadOptions, final: bool = False) -> list[SpeechSpan]:
    """Without VAD: consecutive windows of ``max_segment_s``."""
    size = int(vad.max_segment_s * SAMPLE_RATE)
    spans = []
    while total - start >= size or (final and total - start >= WINDOW):
        end = min(start + size, total)
        spans.append(SpeechSpan(start, end))
        start = end
    return spans
