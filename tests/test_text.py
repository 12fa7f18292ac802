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


def test_chinese_text_is_tidied() -> None:
    from tingji.engine.text import tidy

    cases = {
        "对,这就是我": "对，这就是我",
        "广州市 佛地产": "广州市佛地产",
        "中 文 字": "中文字",
        "你好 . 再见": "你好。再见",
        "真的吗?好!": "真的吗？好！",
        "注意:下面;然后": "注意：下面；然后",
        "你好，   世界。": "你好，世界。",
        "时间10:30,开会": "时间10:30，开会",
        "Python,我们": "Python，我们",
        # left alone: numbers, and spaces between Han and Latin words
        "价格是3.5元": "价格是3.5元",
        "1,000 元": "1,000 元",
        "我们用 Python 写代码": "我们用 Python 写代码",
        "10:30": "10:30",
        "": "",
    }
    for before, after in cases.items():
        assert tidy(before, "zh") == after, before
    assert tidy("日本 語", "ja") == "日本語"
    assert tidy("對,這", "yue") == "對，這"


def test_other_languages_are_tidied() -> None:
    from tingji.engine.text import tidy

    assert tidy("a happy family.Although it", "en") == "a happy family. Although it"
    assert tidy("hello , world .", "en") == "hello, world."
    for kept in ("U.S.A is big", "e.g. this", "3.5 m", "10:30 am", "Hi! Ok?"):
        assert tidy(kept, "en") == kept
    assert tidy("a,b", "de") == "a,b"  # no Han: nothing widened


def test_postprocess_tidies_and_hotwords_add_no_spaces() -> None:
    from tingji.engine.finish import postprocess
    from tingji.engine.hotwords import HotwordIndex
    from tingji.types import TranscribeOptions

    options = TranscribeOptions(language="zh")
    text, _ = postprocess("对,这是 广州 的 会议", options, "zh", None, last=True)
    assert text == "对，这是广州的会议。"
    index = HotwordIndex(["燕之屋"])
    text, corrections = postprocess("我们买了 燕之污 的燕窝", options, "zh", index, last=True)
    assert text == "我们买了燕之屋的燕窝。" and corrections


def test_live_partials_have_no_punctuation_and_the_typography_of_finals() -> None:
    from tingji.engine.live_text import plain

    assert plain("对,这就是我 万人敬仰的 AI 模型 3.5 倍，10:30 开会。", "zh") == (
        "对这就是我万人敬仰的 AI 模型 3.5 倍10:30 开会"
    )
    assert plain("广州市 佛地产，中介协会", "zh") == "广州市佛地产中介协会"
    assert plain("こんにちは、世界。 今日 は", "ja") == "こんにちは世界今日は"
    assert plain("I don't know, it's 3.5 percent. U.S. team at 10:30!", "en") == (
        "I don't know it's 3.5 percent U.S. team at 10:30"
    )
    assert plain("Hello，world。Next", "en") == "Hello world Next"
