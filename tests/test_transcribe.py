"""The real embedded model on real speech: content, timing, options, streaming."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from tingji import audio
from tingji.errors import OptionError
from tingji.scoring import cer, pooled_cer
from tingji.service import Tingji

from .conftest import manifest, shared_clip


def test_english_jfk_words(service: Tingji) -> None:
    result = service.transcribe(str(shared_clip("en/faster_whisper/jfk.flac")))
    text = result.text.lower()
    assert "ask not what your country can do for you" in text
    assert "ask what you can do for your country" in text
    assert result.language == "en"
    assert result.language_probability is not None and result.language_probability > 0.5
    assert result.duration == pytest.approx(11.0, abs=0.05)
    assert result.processing_time > 0 and result.speed > 0
    assert result.real_time_factor == pytest.approx(result.processing_time / result.duration)
    assert result.model.device == "cpu" and result.model.name.startswith("whisper-base")
    assert result.segments[0].start < 1.0 and result.segments[-1].end <= 11.0


def test_mandarin_pooled_cer_within_bar(service: Tingji) -> None:
    clips = [c for c in manifest() if c["lang"] == "zh" and c["path"].startswith("zh/")]
    assert len(clips) >= 10
    pairs = []
    for clip in clips:
        result = service.transcribe(str(shared_clip(clip["path"])))
        assert result.language == "zh", clip["path"]
        pairs.append((clip["text"], result.text))
    score = pooled_cer(pairs)
    print(f"pooled CER over {len(pairs)} Mandarin clips: {score:.3f}")
    assert score <= 0.25


def test_segments_stream_with_progress(service: Tingji) -> None:
    path = shared_clip("long/funasr/vad_example.wav")
    run = service.start(str(path), service.options(language="zh"))
    assert run.duration == pytest.approx(70.47, abs=0.1)
    positions = []
    for segment in run:
        positions.append(run.position)
        assert segment.text
        assert 0 <= segment.start <= segment.end <= run.duration + 0.01
    transcript = run.result()
    assert len(transcript.segments) >= 10
    assert positions == sorted(positions) and positions[0] < positions[-1]
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts)
    assert [s.id for s in transcript.segments] == list(range(len(transcript.segments)))
    assert transcript.segments[-1].end > 60


def test_simplified_by_default_traditional_on_request(service: Tingji) -> None:
    path = str(shared_clip("zh/funasr/asr_example_zh.wav"))
    simplified = service.transcribe(path, service.options(language="zh"))
    assert "达摩院" in simplified.text and "體驗" not in simplified.text
    traditional = service.transcribe(path, service.options(language="zh", script="traditional"))
    assert "達摩院" in traditional.text and "體驗" in traditional.text
    assert cer(simplified.text, traditional.text) == 0


def test_hotword_correction_on_real_speech(service: Tingji) -> None:
    path = str(shared_clip("zh/mossttsd/pod_m_enhanced.wav"))  # 精算 is often heard as 金算
    plain = service.transcribe(path, service.options(language="zh"))
    hot = service.transcribe(path, service.options(language="zh", hotwords=("精算", "复旦")))
    assert hot.text.count("精算") >= 3
    assert hot.text.count("精算") > plain.text.count("精算")
    assert all(r.replacement in ("精算", "复旦") for r in hot.replacements)


def test_translate_to_english(service: Tingji) -> None:
    path = str(shared_clip("zh/mossttsd/zh_spk2_moon.wav"))
    result = service.transcribe(path, service.options(task="translate"))
    assert result.language == "zh"
    latin = sum(ch.isascii() and ch.isalpha() for ch in result.text)
    han = sum("\u4e00" <= ch <= "\u9fff" for ch in result.text)
    assert latin > 20 and han == 0, result.text


def test_unknown_language_is_an_option_error(service: Tingji) -> None:
    path = str(shared_clip("zh/funasr/asr_example_zh.wav"))
    with pytest.raises(OptionError, match="unknown language 'xx'"):
        service.start(path, service.options(language="xx"))


def test_without_vad_fixed_windows(service: Tingji) -> None:
    path = str(shared_clip("en/faster_whisper/jfk.flac"))
    options = service.options(language="en")
    result = service.transcribe(path, replace(options, vad=replace(options.vad, enabled=False)))
    assert "ask not what your country" in result.text.lower()


def test_silence_gives_no_segments(service: Tingji, tmp_path) -> None:
    import wave

    path = tmp_path / "silence.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\x00\x00" * 16000 * 3)
    result = service.transcribe(str(path))
    assert result.segments == [] and result.text == ""
    assert result.duration == pytest.approx(3.0)


def test_utterances_are_decoded_in_batches(service: Tingji) -> None:
    """A file's utterances share decode batches; the text stays as accurate."""
    clip = next(c for c in manifest() if c["path"] == "long/zh_dev_concat.wav")
    backend = service.backend()
    batches_before = backend._batcher.batches  # type: ignore[attr-defined]
    result = service.transcribe(str(shared_clip(clip["path"])), service.options(language="zh"))
    batches = backend._batcher.batches - batches_before  # type: ignore[attr-defined]
    score = cer(clip["text"], result.text)
    print(f"zh_dev_concat: {len(result.segments)} segments in {batches} batches, CER {score:.3f}")
    assert score <= 0.22
    assert 0 < batches <= len(result.segments) / 2
    ends = [s.end for s in result.segments]
    assert ends == sorted(ends) and ends[-1] > 130


def test_concurrent_requests_share_the_model(service: Tingji) -> None:
    """Four threads at once: each gets its own clip's text (the decodes are batched)."""
    chosen = [c for c in manifest() if c["lang"] == "zh" and c["path"].startswith("zh/")][:4]
    results: dict[str, str] = {}

    def run(clip: dict[str, Any]) -> None:
        path = str(shared_clip(clip["path"]))
        results[clip["path"]] = service.transcribe(path, service.options(language="zh")).text

    threads = [threading.Thread(target=run, args=(clip,)) for clip in chosen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 4
    for clip in chosen:
        assert cer(clip["text"], results[clip["path"]]) <= 0.4, (clip, results[clip["path"]])


def test_decode_with_and_without_timestamps(service: Tingji) -> None:
    from tingji.engine.backend import DecodeOptions

    samples = audio.load(str(shared_clip("zh/mossttsd/zh_spk1_moon.wav")))
    backend = service.backend()
    duration = len(samples) / 16000
    (whole,) = backend.decode_many([samples], DecodeOptions(language="zh", timestamps=False))
    assert len(whole.pieces) == 1
    assert (whole.pieces[0].start, whole.pieces[0].end) == (0.0, duration)
    timed = backend.decode(samples, DecodeOptions(language="zh", timestamps=True))
    assert len(timed.pieces) >= 2
    for piece in timed.pieces:
        assert 0 <= piece.start <= piece.end <= duration
    assert [p.start for p in timed.pieces] == sorted(p.start for p in timed.pieces)
    assert cer(whole.pieces[0].text, "".join(p.text for p in timed.pieces)) < 0.3
