"""Hotword correction and hint selection: exact outputs on real recogniser errors and on
ordinary text that must stay untouched."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from tingji.engine.hotwords import (
    Correction,
    HotwordIndex,
    correct,
    parse_hotwords,
    select_hints,
)

GLOSSARY = Path(__file__).resolve().parents[1] / "benchmarks" / "glossary_zh.txt"

# Reference transcripts of the Mandarin clips in ../shared/audio/manifest.jsonl.
REFERENCES = [
    "希望你以后能够做的比我还好呦。",
    "甚至出现交易几乎停滞的情况",
    "换一首歌",
    "好首先说一下刚才这个经理说完的这个销售问题咱再说一下咱们的商场问题首先咱们商场上半年业这个"
    "先各部门儿汇报一下就是业绩",
    "我有的时候说不清楚你们知道吗",
    "欢迎大家来体验达摩院推出的语音识别模型",
    "对，这就是我，万人敬仰的太乙真人，虽然有点婴儿肥，但也掩不住我逼人的帅气。",
    "92年回到中国之后跟复旦去建了精算学院，现在跟很多学院学校也有在合作，就是这是最早在国内去做精算的。"
    "现在精算也是有中精，就中国精算师体系，还有北美精算师，这个是提的比较多的，也可能是业界含金量最高的吧。",
    "我意思是说通用计算机是指我们所有人都能用的这种普通计算机的意思啊？不是，不是。现在通用计算机就，"
    "比如说现在买了一台电脑嘛。嗯。电脑里面你可以装各种各样的软件，对吧？你可以用来聊微信，你可以用来明白，"
    "可以做快机用的发票机啊对对对对连接各种设备啊什么的。",
    "周一到周五，每天早晨七点半到九点半的直播片段。言下之意呢，就是废话有点多，大家也别嫌弃，"
    "因为这都是直播间最真实的状态了。",
    "如果大家想听到更丰富更及时的直播内容，记得在周一到周五准时进入直播间，和大家一起畅聊新消费新科技新趋势。",
    "一二线城市虽然也处于调整中",
    "各位观众晚上好",
    "春节是团圆是温暖是亲情是说不尽的家长里短",
    "广州市房地产中介协会分析",
]

# What whisper-base (faster-whisper, no hint) wrote for some of those clips, converted to
# simplified characters as the pipeline does, and what correct() must make of it.
FIRST_PASS_FIXES = [
    (
        "对,这就是我万人仅仰的太以真人。虽然有点英尔肥,但也远不住我,逼人的帅气。",
        "对,这就是我万人仅仰的太乙真人。虽然有点英尔肥,但也远不住我,逼人的帅气。",
    ),
    (
        "现在金算其实有中经就中国金算实体系还有北美金算实这个是提的比较多的",
        "现在精算其实有中经就中国金算实体系还有北美精算师这个是提的比较多的",
    ),
    ("各位观众玩笑好", "各位观众玩笑好"),
    (
        "春节是团员、温暖、是亲情、是说不进的家常理短",
        "春节是团员、温暖、是亲情、是说不进的家常理短",
    ),
    ("广州市佛地产中间协会分析", "广州市佛地产中间协会分析"),
]


@pytest.fixture(scope="module")
def glossary() -> list[str]:
    return parse_hotwords(GLOSSARY.read_text(encoding="utf-8"))


def test_near_homophone_is_replaced() -> None:
    assert correct("我们买了燕之污的燕窝", ["达摩院", "燕之屋"]) == (
        "我们买了燕之屋的燕窝",
        [Correction(start=4, end=7, original="燕之污", replacement="燕之屋")],
    )


def test_existing_hotword_is_kept_while_another_is_fixed() -> None:
    text, corrections = correct("言之物和燕之污", ["燕之屋", "言之物"])
    assert text == "言之物和燕之屋"
    assert corrections == [Correction(4, 7, "燕之污", "燕之屋")]


def test_nothing_close_changes_nothing() -> None:
    assert correct("今天天气很好，我们去公园散步", ["燕之屋", "精算", "达摩院"]) == (
        "今天天气很好，我们去公园散步",
        [],
    )


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("今天开会", "精算"),  # jin tian / jing suan: one syllable only
        ("各位观众晚上好", "关中"),  # same pinyin, no shared character, other tone
        ("周一到周五", "周易"),  # 一 is yi1; its sandhi readings do not count
        ("用微信聊天", "微星"),  # xin4 / xing1
        ("记得来直播内容", "智播"),  # zhi2 / zhi4
        ("新科技新趋势", "科济"),  # exact homophone of a real word: two characters are too few
        ("他是共青团员", "团圆"),  # 团员 is a known word
        ("下雨音乐会", "语音"),  # 雨 belongs to 下雨
        ("广州是一个城市", "广州市"),  # 是 is a particle
        ("现在是北京时间八点", "北京市"),  # shi2 / shi4 in a three-character term
        ("杭州西部地区", "杭州西湖"),  # bu / hu: a whole syllable off in four characters
        ("直播中的画面", "直播间"),  # zhong / jian
        ("他在上海事业有成", "上海市"),  # 事 may begin the next word
        ("你去的是广州是吧", "广州市"),  # 是 is a particle, even before 吧
        ("我们要发展科技", "科济"),  # two-character exact homophone: a real word
        ("太乙真任何时候都在", "太乙真人"),  # 任 belongs to 任何
        ("京都很美", "金都"),  # 京都 is a known word
        ("国金算力", "精算"),  # 金 may end the word before
        ("这需要分析一下", "汾西"),  # two-character exact homophone: a real word
    ],
)
def test_common_words_near_a_term_are_left_alone(text: str, term: str) -> None:
    assert correct(text, [term]) == (text, [])


def test_an_exact_homophone_that_is_no_word_is_repaired() -> None:
    # fu4 dan4 both: Whisper chose characters that make no word
    assert correct("跟傅旦去建了精算学院", ["复旦"]) == (
        "跟复旦去建了精算学院",
        [Correction(1, 3, "傅旦", "复旦")],
    )


def test_latin_terms_are_normalised() -> None:
    terms = ["PyTorch", "FunASR", "SeACo-Paraformer", "Kubernetes", "A股"]
    text, corrections = correct(
        "用pytorch训练fun asr，部署到kubernetis上，模型是seaco paraformer，炒a股", terms
    )
    assert text == "用PyTorch训练FunASR，部署到Kubernetes上，模型是SeACo-Paraformer，炒A股"
    assert [(c.original, c.replacement) for c in corrections] == [
        ("pytorch", "PyTorch"),
        ("fun asr", "FunASR"),
        ("kubernetis", "Kubernetes"),
        ("seaco paraformer", "SeACo-Paraformer"),
        ("a股", "A股"),
    ]


def test_latin_terms_leave_other_words_alone() -> None:
    terms = ["PyTorch", "Transformer", "Kubernetes", "ASR"]
    text = "PyTorch transformers and kubernetes-like tools, not lasr or asrs"
    fixed, corrections = correct(text, terms)
    assert fixed == "PyTorch transformers and Kubernetes-like tools, not lasr or asrs"
    assert corrections == [Correction(25, 35, "kubernetes", "Kubernetes")]


def test_longest_best_candidate_wins_an_overlap() -> None:
    assert correct("还有北美金算实这个", ["精算", "北美精算师"]) == (
        "还有北美精算师这个",
        [Correction(2, 7, "北美金算实", "北美精算师")],
    )


def test_correction_positions_index_the_input() -> None:
    source = "欢迎来到达摩元，太以真人说燕之污的燕窝好吃，精算很难。"
    text, corrections = correct(source, ["达摩院", "太乙真人", "燕之屋", "精算"])
    assert text == "欢迎来到达摩元，太乙真人说燕之屋的燕窝好吃，精算很难。"
    assert corrections == [
        Correction(8, 12, "太以真人", "太乙真人"),
        Correction(13, 16, "燕之污", "燕之屋"),
    ]
    assert all(source[c.start : c.end] == c.original for c in corrections)


def test_a_dropped_or_added_inner_character_is_repaired() -> None:
    terms = ["房地产中介协会", "广州市"]
    assert correct("广州市房地产中介会分析", terms) == (
        "广州市房地产中介协会分析",
        [Correction(3, 9, "房地产中介会", "房地产中介协会")],
    )
    assert correct("房地产中介协协会", terms)[0] == "房地产中介协会"
    assert correct("房地产中介的协会", terms)[0] == "房地产中介的协会"  # 的 is a particle


def test_replacement_never_straddles_punctuation() -> None:
    assert correct("燕之，污染", ["燕之屋"]) == ("燕之，污染", [])


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("燕之屋\n达摩院\n\n", ["燕之屋", "达摩院"]),
        (
            "燕之屋,达摩院，太乙真人、精算；复旦;团圆",
            ["燕之屋", "达摩院", "太乙真人", "精算", "复旦", "团圆"],
        ),
        ("燕之屋 达摩院\u3000太乙真人", ["燕之屋", "达摩院", "太乙真人"]),
        ("阿里巴巴 20\n达摩院 10\nFunASR 5", ["阿里巴巴", "达摩院", "FunASR"]),
        ("阿里巴巴 20\niPhone 15\n达摩院", ["阿里巴巴", "iPhone 15", "达摩院"]),
        ("iPhone 15\nWindows 11", ["iPhone 15", "Windows 11"]),
        ("large language model\n达摩院", ["large language model", "达摩院"]),
        ("# comment line\n达摩院\n  # indented comment\nPyTorch", ["达摩院", "PyTorch"]),
        ("达摩院\nPyTorch\n达摩院\npytorch", ["达摩院", "PyTorch"]),
        ("SeACo-Paraformer 达摩院", ["SeACo-Paraformer", "达摩院"]),
    ],
)
def test_parse_hotwords(typed: str, expected: list[str]) -> None:
    assert parse_hotwords(typed) == expected


def test_benchmark_glossary_parses(glossary: list[str]) -> None:
    assert len(glossary) >= 100
    assert not any(term.startswith("#") for term in glossary)
    present = [term for term in glossary if any(term in ref for ref in REFERENCES)]
    assert 12 <= len(present) <= 15


@pytest.mark.parametrize("reference", REFERENCES)
def test_large_glossary_leaves_references_alone(glossary: list[str], reference: str) -> None:
    assert correct(reference, glossary) == (reference, [])


@pytest.mark.parametrize(("first_pass", "expected"), FIRST_PASS_FIXES)
def test_large_glossary_fixes_real_errors(
    glossary: list[str], first_pass: str, expected: str
) -> None:
    assert correct(first_pass, glossary)[0] == expected


def test_hints_pick_the_few_terms_in_a_segment(glossary: list[str]) -> None:
    index = HotwordIndex(glossary)
    assert index.select_hints("欢迎大家来体验达摩院推出的语音识别模型") == ["语音识别", "达摩院"]
    # hints are loose on purpose (the second decode decides): 广州塔 shares 广州
    assert index.select_hints("广州市佛地产中间协会分析") == ["广州市", "房地产中介协会", "广州塔"]
    # Whisper often spaces words apart, in traditional characters; a term may span the space
    assert "房地产中介协会" in index.select_hints("廣州市 佛地產 中間協會分析")
    assert "含金量" in index.select_hints("有可能是业界含念量最高的吧")
    assert index.select_hints("春节是团员、温暖、是亲情") == ["团圆"]
    assert index.select_hints("各位观众玩笑好") == []
    assert index.select_hints("我有的时候说不清楚你们知道吗") == []
    assert select_hints("现在金算其实有中经", glossary) == ["精算"]


def test_hints_read_digits_and_need_a_shared_character_for_short_terms() -> None:
    terms = ["一二线城市", "芬溪", "团圆"]
    assert select_hints("12线城市虽然也处于调整中", terms) == ["一二线城市"]
    assert select_hints("这个分析很好", terms) == []  # 芬溪 sounds the same, shares no character
    assert select_hints("团员", terms) == ["团圆"]


def test_hints_ignore_rare_readings_for_tones() -> None:
    assert select_hints("周一到周五", ["周易"]) == []  # 一 is yi1, not its sandhi yi4
    assert select_hints("周易八卦", ["周易"]) == ["周易"]


def test_hints_respect_the_limit() -> None:
    terms = ["达摩院", "语音识别", "太乙真人", "燕之屋"]
    text = "达摩院的语音识别，太以真人，燕之污"
    assert select_hints(text, terms, limit=2) == ["语音识别", "达摩院"]
    assert len(select_hints(text, terms)) == 4


def test_index_matches_the_free_functions(glossary: list[str]) -> None:
    index = HotwordIndex(glossary)
    text = FIRST_PASS_FIXES[1][0]
    assert index.correct(text) == correct(text, glossary)
    assert len(index) == len(glossary)


def test_index_is_fast_on_a_large_glossary(glossary: list[str]) -> None:
    extra = [
        f"{a}{b}{c}"
        for a in "天地人和风云雷电春夏秋冬"
        for b in "山水火木金土"
        for c in "科技集团社院"
    ]
    index = HotwordIndex([*glossary, *extra][:500])
    assert len(index) == 500
    text = (REFERENCES[7] + REFERENCES[9])[:200]
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        index.correct(text)
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.010


def test_a_term_the_hinted_pass_lost_is_written_back() -> None:
    from tingji.engine.finish import restore_terms

    # the first pass had 广州市, the hinted pass 国州市 but the term it was hinted with
    assert restore_terms(
        "广州市佛地产中间协会分析", ["国州市 房地产中介协会分析"], {"广州市"}, {"房地产中介协会"}
    ) == ["广州市 房地产中介协会分析"]
    pieces = restore_terms("我在广州市", ["我在", "国州市。"], {"广州市"}, set())
    assert pieces == ["我在", "广州市。"]
    # nowhere to put it: other words of another length, or over a term the hinted pass has
    assert restore_terms("广州市", ["说了别的话题"], {"广州市"}, set()) == ["说了别的话题"]
    assert restore_terms("房地产中间", ["房地产中介协会"], {"地产中间"}, {"房地产中介协会"}) == [
        "房地产中介协会"
    ]
