"""FunASR's result shapes as tingji pieces, and model names and directories; no funasr needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tingji.engine.backend import Piece
from tingji.engine.funasr import catalog
from tingji.engine.funasr.results import (
    join_tokens,
    majority_language,
    pieces_from_result,
    split_units,
    tidy,
    units_of,
)
from tingji.errors import ModelError


def test_paraformer_tokens_are_cut_at_pauses() -> None:
    result = {
        "text": "欢 迎 大 家 hello world 来 了",
        "timestamp": [
            [100, 300], [300, 500], [500, 700], [700, 900],
            [1600, 1900], [1900, 2200], [2300, 2500], [2500, 2700],
        ],
    }  # fmt: skip
    pieces = pieces_from_result(result, duration=3.0)
    assert pieces == [
        Piece(0.1, 0.9, "欢迎大家"),
        Piece(1.6, 2.7, "hello world来了"),
    ]


def test_punctuated_text_is_cut_into_sentences() -> None:
    """With ct-punc but no VAD, FunASR gives punctuated text and the spaced raw tokens."""
    result = {
        "text": "欢迎大家。你好吗？好",
        "raw_text": "欢 迎 大 家 你 好 吗 好",
        "timestamp": [[i * 200, i * 200 + 200] for i in range(8)],
    }
    pieces = pieces_from_result(result, duration=2.0)
    assert [(p.start, p.end, p.text) for p in pieces] == [
        (0.0, 0.8, "欢迎大家。"),
        (0.8, 1.4, "你好吗？"),
        (1.4, 1.6, "好"),
    ]


def test_sentence_info_is_taken_as_it_is() -> None:
    result = {
        "text": "x",
        "sentence_info": [
            {"start": 120, "end": 1500, "text": "欢 迎 大 家，"},
            {"start": 1700, "end": 2600, "text": "<|zh|>"},
            {"start": 2800, "end": 3900, "text": "hello there."},
        ],
    }
    assert pieces_from_result(result, duration=4.0) == [
        Piece(0.12, 1.5, "欢迎大家，"),
        Piece(2.8, 3.9, "hello there."),
    ]


def test_sensevoice_words_and_tags() -> None:
    result = {
        "text": "<|zh|><|NEUTRAL|><|Speech|><|withitn|>你好。今天2025年",
        "words": ["你", "好", "。", "今", "天", "2025", "年"],
        "timestamp": [[0, 100], [100, 200], [200, 250], [900, 1000], [1000, 1100],
                      [1100, 1400], [1400, 1500]],
    }  # fmt: skip
    pieces = pieces_from_result(result, duration=1.5)
    assert pieces == [Piece(0.0, 0.25, "你好。"), Piece(0.9, 1.5, "今天2025年")]


def test_nano_timestamps_in_seconds() -> None:
    result = {
        "text": "开放时间早上9点至下午5点。",
        "timestamps": [
            {"token": "开放", "start_time": 0.3, "end_time": 0.6},
            {"token": "时间", "start_time": 0.6, "end_time": 0.9},
            {"token": "早上9点至下午5点", "start_time": 0.9, "end_time": 2.4},
        ],
    }
    assert pieces_from_result(result, duration=3.0) == [
        Piece(0.3, 2.4, "开放时间早上9点至下午5点。")
    ]


def test_text_that_does_not_match_its_tokens_is_one_piece() -> None:
    result = {"text": "二零二五年", "words": ["2025", "年"], "timestamp": [[100, 400], [400, 600]]}
    assert pieces_from_result(result, duration=1.0) == [Piece(0.1, 0.6, "二零二五年")]


def test_results_without_times_span_the_window() -> None:
    assert pieces_from_result({"text": "<|en|>hi there"}, duration=2.5) == [
        Piece(0.0, 2.5, "hi there")
    ]
    assert pieces_from_result({"text": ""}, duration=2.5) == []
    assert pieces_from_result({"text": "a b", "timestamp": [[0, 10]]}, duration=1.0) == [
        Piece(0.0, 1.0, "a b")
    ]


def test_text_helpers() -> None:
    assert join_tokens(["我", "是", "open", "ai", "的"]) == "我是open ai的"
    assert tidy(" 欢 迎 ， 大 家  hello  world ") == "欢迎，大家 hello world"
    assert majority_language(["<|ja|>x<|ja|>", "<|zh|>y", "<|BGM|>"]) == ("ja", 2 / 3)
    assert majority_language(["plain"]) is None
    assert units_of({"text": "a", "timestamp": [[0, 1], [1, 2]]})[1] == []
    assert split_units("abc", []) is None


# -- names and directories -------------------------------------------------------------------
def test_claims_names_and_funasr_directories(tmp_path: Path) -> None:
    assert catalog.claims("paraformer-zh")
    assert catalog.claims("iic/SenseVoiceSmall")
    assert catalog.claims("FunAudioLLM/Fun-ASR-Nano-2512")
    assert catalog.claims("iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch")
    assert not catalog.claims("base")
    assert not catalog.claims("Systran/faster-whisper-large-v3")
    funasr_dir = tmp_path / "sensevoice"
    funasr_dir.mkdir()
    (funasr_dir / "config.yaml").write_text("model: SenseVoiceSmall\n")
    assert catalog.claims(str(funasr_dir))
    assert catalog.family_of(funasr_dir) == "sensevoice"
    whisper_dir = tmp_path / "whisper"
    whisper_dir.mkdir()
    (whisper_dir / "model.bin").write_bytes(b"")
    (whisper_dir / "config.json").write_text("{}")
    assert not catalog.claims(str(whisper_dir))
    assert not catalog.claims(str(tmp_path / "absent"))


def test_family_comes_from_the_configured_model_class(tmp_path: Path) -> None:
    (tmp_path / "configuration.json").write_text(
        json.dumps({"file_path_metas": {"config": "conf/asr.yaml", "init_param": "model.pt"}})
    )
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "asr.yaml").write_text("encoder: SANMEncoder\nmodel: SeacoParaformer\n")
    assert catalog.family_of(tmp_path) == "seaco"
    with pytest.raises(ModelError, match="model.pt missing"):
        catalog.check_model_dir(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"")
    catalog.check_model_dir(tmp_path)
    (tmp_path / "conf" / "asr.yaml").write_text("model: Conformer\n")
    assert catalog.family_of(tmp_path) == "other"


def test_unknown_names_and_files_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "modelscope"))
    with pytest.raises(ModelError, match="unknown FunASR model 'nonsense'"):
        catalog.resolve("nonsense", tmp_path)
    file = tmp_path / "model.pt"
    file.write_bytes(b"")
    with pytest.raises(ModelError, match="is a file"):
        catalog.resolve(str(file), tmp_path)
    with pytest.raises(ModelError, match="modelscope download --model iic/SenseVoiceSmall"):
        catalog.resolve("iic/SenseVoiceSmall", tmp_path, allow_download=False)
