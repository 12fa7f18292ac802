"""Pipeline behaviour with a scripted backend: post-processing, hints, language, errors."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tingji.engine.pipeline import HINT_ALL_LIMIT, Transcription
from tingji.errors import AudioNotFoundError, ModelError
from tingji.types import TranscribeOptions, VadOptions

from .conftest import FakeBackend, shared_clip


def _run(texts: list[str], options: TranscribeOptions, clip: str = "zh/funasr/asr_example_zh.wav"):
    backend = FakeBackend(texts)
    result = Transcription(backend, str(shared_clip(clip)), options).result()
    return backend, result


def test_itn_on_by_default_and_switchable() -> None:
    _, on = _run(["会议定在二零二五年三月，预算增加百分之二十五"], TranscribeOptions(language="zh"))
    assert on.text == "会议定在2025年3月，预算增加25%。"
    _, off = _run(["会议定在二零二五年三月"], TranscribeOptions(language="zh", itn=False))
    assert off.text == "会议定在二零二五年三月。"


def test_script_simplified_by_default() -> None:
    _, simp = _run(["歡迎大家來體驗語音識別"], TranscribeOptions(language="zh"))
    assert simp.text == "欢迎大家来体验语音识别。"
    _, trad = _run(["欢迎大家来体验"], TranscribeOptions(language="zh", script="traditional"))
    assert trad.text == "歡迎大家來體驗。"
    _, orig = _run(["歡迎大家"], TranscribeOptions(language="zh", script="original"))
    assert orig.text == "歡迎大家。"


def test_hotword_correction_lists_replacements() -> None:
    options = TranscribeOptions(language="zh", hotwords=("燕之屋", "达摩院"))
    backend, result = _run(["我们买了燕之污的燕窝"], options)
    assert result.text == "我们买了燕之屋的燕窝。"
    assert [(r.original, r.replacement) for r in result.replacements] == [("燕之污", "燕之屋")]
    assert backend.calls[0].hint == "燕之屋 达摩院"  # a short list is hinted whole


def test_long_glossary_hints_per_window() -> None:
    glossary = tuple(f"术语{n:03d}" for n in range(HINT_ALL_LIMIT + 80)) + ("达摩院",)
    options = TranscribeOptions(language="zh", hotwords=glossary)
    backend, result = _run(["欢迎体验打魔院的模型", "欢迎体验达摩院的模型"], options)
    assert backend.calls[0].hint is None
    assert backend.calls[1].hint == "达摩院"
    assert result.text == "欢迎体验达摩院的模型。"


def test_no_hint_second_pass_when_nothing_is_near() -> None:
    glossary = tuple(f"术语{n:03d}" for n in range(HINT_ALL_LIMIT + 80))
    backend, _ = _run(["今天天气很好"], TranscribeOptions(language="zh", hotwords=glossary))
    assert len(backend.calls) == 1


def test_language_detected_once_and_used() -> None:
    backend, result = _run(["hello there"], TranscribeOptions(), clip="en/faster_whisper/jfk.flac")
    assert result.language == "zh"  # what the fake detector said
    assert all(call.language == "zh" for call in backend.calls)


def test_english_left_alone() -> None:
    backend = FakeBackend(["Twenty twenty five"], language="en")
    path = str(shared_clip("en/faster_whisper/jfk.flac"))
    result = Transcription(backend, path, TranscribeOptions(language="en")).result()
    assert result.text == "Twenty twenty five"


def test_missing_file_raises_before_any_work(tmp_path: Path) -> None:
    backend = FakeBackend(["x"])
    with pytest.raises(AudioNotFoundError) as info:
        Transcription(backend, str(tmp_path / "nope.wav"), TranscribeOptions())
    assert "nope.wav" in str(info.value)
    assert backend.calls == []


LONG = "long/zh_dev_concat.wav"
TEN_SECOND_WINDOWS = TranscribeOptions(
    language="zh", vad=VadOptions(enabled=False, max_segment_s=10)
)
"""Without VAD the 136 s file is cut into 10 s windows: a batch of eight, then one of six."""


class _GatedBackend(FakeBackend):
    """Holds the first decode until a second one starts (or 10 s pass)."""

    def __init__(self) -> None:
        super().__init__(["一段话"])
        self.second_started = threading.Event()
        self.overlapped = False
        self.sizes: list[int] = []

    def decode_many(self, clips: Any, options: Any) -> list[Any]:
        first = not self.sizes
        self.sizes.append(len(clips))
        if first:
            self.overlapped = self.second_started.wait(10)
        else:
            self.second_started.set()
        return super().decode_many(clips, options)


def test_the_audio_after_a_batch_is_read_and_sent_while_the_batch_decodes() -> None:
    backend = _GatedBackend()
    result = Transcription(backend, str(shared_clip(LONG)), TEN_SECOND_WINDOWS).result()
    assert backend.sizes == [8, 6]
    assert backend.overlapped  # the second batch was cut and sent before the first came back
    assert [s.start for s in result.segments] == [10.0 * n for n in range(14)]
    assert result.duration == pytest.approx(136.0, abs=0.5)


def test_a_failed_batch_fails_the_run_after_the_segments_before_it() -> None:
    class FailingSecond(FakeBackend):
        def decode_many(self, clips: Any, options: Any) -> list[Any]:
            if len(clips) == 6:
                raise ModelError("decoder crashed")
            return super().decode_many(clips, options)

    run = Transcription(FailingSecond(["一段话"]), str(shared_clip(LONG)), TEN_SECOND_WINDOWS)
    seen = []
    with pytest.raises(ModelError, match="decoder crashed"):
        for segment in run:
            seen.append(segment.start)
    assert seen == [10.0 * n for n in range(8)]
    for thread in threading.enumerate():  # the run's decoding threads end with it
        if thread.name.startswith("tingji-pipeline"):
            thread.join(timeout=5)
            assert not thread.is_alive()
