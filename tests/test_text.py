from tingji.engine.text import inverse_normalize, join_segments, punctuate, to_script
from tingji.scoring import cer, edit_distance, normalize, pooled_cer


def test_itn_examples() -> None:
    assert inverse_normalize("二零二五年") == "2025年"
    assert inverse_normalize("百分之二十五") == "25%"
    assert inverse_normalize("花了三百五十块钱") == "花了350块钱"
    assert inverse_normalize("我的电话是一三八一二三四五六七八") == "我的电话是13812345678"
    assert inverse_normalize("一些人来了两个") == "一些人来了两个"


def test_script_conversion() -> None:
    assert to_script("這是語音識別", "simplified") == "这是语音识别"
    assert to_script("这是语音识别", "traditional") == "這是語音識別"
    assert to_script("這是", "original") == "這是"


def test_punctuate_and_join() -> None:
    assert punctuate("你好", final=False) == "你好，"
    assert punctuate("你好", final=True) == "你好。"
    assert punctuate("你好？", final=False) == "你好？"
    assert join_segments(["你好，", "世界。"], "zh") == "你好，世界。"
    assert join_segments(["Hello,", "world."], "en") == "Hello, world."


def test_scoring_normalises_both_sides() -> None:
    assert normalize("Hello, 世界！ 二零二五年。") == "hello世界2025年"
    assert normalize("這是") == "这是"
    assert edit_distance("abc", "abd") == 1
    assert cer("今天天气很好", "今天天气很好。") == 0
    assert cer("今天天气", "今天天汽") == 0.25
    assert pooled_cer([("ab", "ab"), ("cd", "ce")]) == 0.25


def test_itn_dates_read_as_chinese() -> None:
    assert inverse_normalize("二零二五年三月五日开会") == "2025年3月5日开会"
    assert inverse_normalize("二零二五年三月") == "2025年3月"
    assert inverse_normalize("十二月三十一号") == "12月31日"
    assert inverse_normalize("四分之三") == "3/4"
