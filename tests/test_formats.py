import csv
import io
import json
import re

from tingji.formats import render
from tingji.types import ModelInfo, Segment, Transcript


def _transcript() -> Transcript:
    return Transcript(
        text="你好，世界。",
        segments=[Segment(0, 0.0, 1.25, "你好，"), Segment(1, 3661.5, 3662.0, "世界 --> 。")],
        language="zh",
        language_probability=0.9,
        duration=3663.0,
        processing_time=100.0,
        model=ModelInfo("whisper", "whisper-base", "/m", "cpu", "int8"),
    )


def test_srt() -> None:
    srt = render(_transcript(), "srt")
    blocks = srt.strip().split("\n\n")
    assert blocks[0] == "1\n00:00:00,000 --> 00:00:01,250\n你好，"
    assert blocks[1].startswith("2\n01:01:01,500 --> 01:01:02,000\n")


def test_vtt() -> None:
    vtt = render(_transcript(), "vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.250\n你好，\n")
    cue_lines = [line for line in vtt.splitlines() if "-->" in line]
    assert len(cue_lines) == 2
    stamp = r"\d\d:\d\d:\d\d\.\d{3}"
    assert all(re.fullmatch(f"{stamp} --> {stamp}", c) for c in cue_lines)


def test_json_csv_txt() -> None:
    data = json.loads(render(_transcript(), "json"))
    assert data["text"] == "你好，世界。" and data["language"] == "zh"
    assert data["segments"][1]["start"] == 3661.5
    assert data["speed"] == 36.63 and data["model"]["compute_type"] == "int8"
    rows = list(csv.reader(io.StringIO(render(_transcript(), "csv"))))
    assert rows[0] == ["start", "end", "text"] and rows[1] == ["0.000", "1.250", "你好，"]
    assert render(_transcript(), "txt") == "你好，世界。\n"


def _diarized() -> Transcript:
    from tingji.types import SpeakerTurn

    return Transcript(
        text="大家好。我们开始吧。好的。",
        segments=[
            Segment(0, 0.0, 1.0, "大家好。", speaker="王经理"),
            Segment(1, 1.0, 2.0, "我们开始吧。", speaker="王经理"),
            Segment(2, 2.5, 3.0, "好的。", speaker="S2"),
        ],
        language="zh",
        language_probability=0.9,
        duration=3.0,
        processing_time=1.0,
        model=ModelInfo("whisper", "whisper-base", "/m", "cpu", "int8"),
        source="/uploads/周会 录音.wav",
        speakers=[SpeakerTurn(0.0, 2.1, "王经理"), SpeakerTurn(2.4, 3.0, "S2")],
    )


def test_speakers_in_every_format() -> None:
    transcript = _diarized()
    assert render(transcript, "txt") == "[王经理] 大家好。我们开始吧。\n\n[S2] 好的。\n"
    assert "\n[王经理] 大家好。\n" in render(transcript, "srt")
    assert "\n[S2] 好的。\n" in render(transcript, "vtt")
    rows = list(csv.reader(io.StringIO(render(transcript, "csv"))))
    assert rows[0] == ["start", "end", "speaker", "text"]
    assert rows[3] == ["2.500", "3.000", "S2", "好的。"]
    data = json.loads(render(transcript, "json"))
    assert [s["speaker"] for s in data["segments"]] == ["王经理", "王经理", "S2"]
    assert data["speakers"][1] == {"start": 2.4, "end": 3.0, "speaker": "S2"}
    assert render(transcript, "rttm").splitlines() == [
        "SPEAKER 周会_录音 1 0.000 2.100 <NA> <NA> 王经理 <NA> <NA>",
        "SPEAKER 周会_录音 1 2.400 0.600 <NA> <NA> S2 <NA> <NA>",
    ]


def test_rttm_without_speakers_is_empty() -> None:
    assert render(_transcript(), "rttm") == ""
