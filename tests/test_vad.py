"""VAD segmentation logic on synthetic probabilities, and on real speech."""

from __future__ import annotations

import numpy as np
import pytest

from tingji import audio
from tingji.engine.packing import Window
from tingji.engine.vad import (
    SAMPLE_RATE,
    WINDOW,
    SileroProbabilities,
    SpeechSegmenter,
    SpeechSpan,
    detect_speech,
)
from tingji.types import VadOptions

from .conftest import manifest, shared_clip

MS_PER_WINDOW = 32


def _probs(pattern: list[tuple[float, float]]) -> np.ndarray:
    """[(probability, milliseconds), ...] → per-window probabilities."""
    return np.concatenate([np.full(round(ms / MS_PER_WINDOW), p) for p, ms in pattern])


def _segment(probs: np.ndarray, options: VadOptions, chunk: int = 7) -> list[SpeechSpan]:
    segmenter = SpeechSegmenter(options)
    spans = []
    for i in range(0, len(probs), chunk):
        spans += segmenter.push(probs[i : i + chunk])
    return spans + segmenter.finish(len(probs) * WINDOW)


def test_splits_at_pauses_longer_than_min_silence() -> None:
    options = VadOptions(min_silence_ms=500, speech_pad_ms=0)
    probs = _probs([(0.0, 320), (0.9, 1600), (0.0, 320), (0.9, 960), (0.0, 800), (0.9, 640)])
    spans = _segment(probs, options)
    assert len(spans) == 2  # the 320 ms pause does not split; the 800 ms one does
    assert spans[0].start == 10 * WINDOW
    assert spans[0].end == (10 + 50 + 10 + 30) * WINDOW
    assert spans[1].start == (10 + 50 + 10 + 30 + 25) * WINDOW


def test_padding_never_overlaps_neighbours() -> None:
    options = VadOptions(min_silence_ms=300, speech_pad_ms=400)
    probs = _probs([(0.9, 960), (0.0, 320), (0.9, 960), (0.0, 640)])
    spans = _segment(probs, options)
    assert len(spans) == 2
    assert spans[0].start == 0
    assert spans[0].end <= spans[1].start


def test_long_speech_cut_at_its_longest_inner_pause() -> None:
    options = VadOptions(max_segment_s=10, min_silence_ms=1000, speech_pad_ms=0)
    probs = _probs([(0.9, 6400), (0.1, 320), (0.9, 6400), (0.2, 96), (0.9, 6400)])
    spans = _segment(probs, options)
    assert len(spans) >= 2
    assert all(s.duration <= 10.0 + 1e-6 for s in spans)
    cut = spans[0].end / SAMPLE_RATE
    assert 6.4 <= cut <= 6.72  # inside the 320 ms pause, not at the hard limit
    assert spans[1].start == spans[0].end  # contiguous: nothing lost at a cut


def test_short_bursts_dropped() -> None:
    spans = _segment(_probs([(0.0, 640), (0.9, 64), (0.0, 1280)]), VadOptions())
    assert spans == []


def test_streaming_probabilities_equal_whole_array() -> None:
    rng = np.random.default_rng(0)
    signal = (rng.standard_normal(SAMPLE_RATE * 3) * 0.1).astype(np.float32)
    whole = SileroProbabilities()(signal, final=True)
    model = SileroProbabilities()
    parts = [model(signal[i : i + 7000]) for i in range(0, len(signal), 7000)]
    parts.append(model(np.zeros(0, dtype=np.float32), final=True))
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)


def test_real_concatenation_splits_into_its_utterances() -> None:
    path = shared_clip("long/zh_dev_concat.wav")
    spans = detect_speech(audio.load(path), VadOptions())
    clips = [c for c in manifest() if c["lang"] == "zh" and c["path"].startswith("zh/")]
    # 15 utterances joined by 1.5 s pauses: at least one span each, none over 30 s
    assert len(spans) >= len(clips)
    assert all(s.duration <= 30.0 for s in spans)
    speech = sum(s.duration for s in spans)
    assert speech > 0.8 * sum(c["duration_s"] for c in clips)


def test_window_maps_packed_times_back() -> None:
    window = Window()
    a = SpeechSpan(16000, 48000)  # 1 s .. 3 s
    b = SpeechSpan(160000, 192000)  # 10 s .. 12 s, after an 7 s pause shortened to 0.6 s
    window.add(a, np.ones(a.end - a.start, dtype=np.float32))
    assert not window.fits(b, 30 * SAMPLE_RATE)  # a 7 s pause starts a new window
    assert window.fits(b, 30 * SAMPLE_RATE, max_pause=10)
    window.add(b, np.ones(b.end - b.start, dtype=np.float32))
    assert window.length == 32000 + 9600 + 32000
    assert window.to_original(0.5, is_end=False) == pytest.approx(1.5)
    assert window.to_original(2.3, is_end=False) == pytest.approx(10.0)  # in the gap: next start
    assert window.to_original(2.3, is_end=True) == pytest.approx(3.0)  # in the gap: prior end
    assert window.to_original(3.1, is_end=False) == pytest.approx(10.5)
    assert window.end == pytest.approx(12.0)
    audio_ = window.audio
    assert audio_[32000:41600].max() == 0 and audio_[:32000].min() == 1
    too_long = SpeechSpan(200000, 200000 + 26 * SAMPLE_RATE)
    assert not window.fits(too_long, 30 * SAMPLE_RATE, max_pause=10)


def test_a_soft_onset_is_kept_with_its_segment() -> None:
    """A quiet first syllable scores under the threshold; the start reaches back over it."""
    options = VadOptions(min_silence_ms=500, speech_pad_ms=0)
    probs = _probs([(0.0, 640), (0.03, 320), (0.25, 320), (0.9, 960), (0.0, 800)])
    spans = _segment(probs, options)
    assert len(spans) == 1
    assert spans[0].start == (20 + 10) * WINDOW  # the 0.25 stretch, not the 0.03 one
    lookback = _probs([(0.0, 640), (0.3, 3200), (0.9, 960), (0.0, 800)])
    (span,) = _segment(lookback, options)
    assert (20 + 100) * WINDOW - span.start <= 32 * WINDOW  # at most about a second back


def test_a_long_segment_ends_at_a_shorter_pause_when_relaxed() -> None:
    """Live captions: after ``relax_after_s`` a breath (300 ms) ends the sentence."""
    options = VadOptions(min_silence_ms=500, speech_pad_ms=0)
    probs = _probs([(0.9, 1920), (0.0, 320), (0.9, 4800), (0.0, 320), (0.9, 960), (0.0, 800)])
    assert len(_segment(probs, options)) == 1  # 320 ms pauses never end a segment
    segmenter = SpeechSegmenter(options, relax_after_s=5.0, relaxed_silence_ms=300)
    spans = segmenter.push(probs) + segmenter.finish(len(probs) * WINDOW)
    # the first pause comes 1.9 s in (too early); the second 7 s in ends the segment
    assert [s.end // WINDOW for s in spans] == [60 + 10 + 150, 60 + 10 + 150 + 10 + 30]


def test_an_onset_after_a_long_pause_scores_as_at_the_start() -> None:
    """After a second of quiet a fresh-state opinion is scored too: the state carried over a
    1.5 s pause scored the soft "我" that starts this clip 0.06–0.2, and the segment lost it."""
    before = audio.load(shared_clip("zh/fireredasr/TEST_MEETING_T0000000001_S00000.wav"))
    clip = audio.load(shared_clip("zh/fireredasr/TEST_NET_Y0000000000_-KTKHdZ2fb8_S00000.wav"))
    gap = np.zeros(int(1.5 * SAMPLE_RATE), dtype=np.float32)
    joined = np.concatenate([before, gap, clip])
    onset = (len(before) + len(gap)) // WINDOW  # the clip's first window
    probs = SileroProbabilities()(joined, final=True)
    assert probs[onset : onset + 8].max() >= 0.5
    spans = detect_speech(joined, VadOptions())
    last = spans[-1]
    assert abs(last.start / SAMPLE_RATE - onset * WINDOW / SAMPLE_RATE) < 0.1


def test_the_carried_state_still_counts_after_a_pause() -> None:
    """A fresh state alone scores JFK's "ask" (after a 1 s pause) 0.26–0.47 and it was lost;
    the carried state scores it 0.5–0.6. Each window gets the higher opinion."""
    jfk = audio.load(shared_clip("en/faster_whisper/jfk.flac"))
    carried = SileroProbabilities(second_opinion=False)(jfk, final=True)
    probs = SileroProbabilities()(jfk, final=True)
    assert (probs >= carried - 1e-6).all()
    ask = slice(int(3.2 * SAMPLE_RATE) // WINDOW, int(3.7 * SAMPLE_RATE) // WINDOW)
    assert probs[ask].max() >= 0.5
