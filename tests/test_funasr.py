"""The FunASR backend end to end, on tiny randomly initialised models built here.

The models are built with FunASR's own classes (width 32, two blocks) and saved as a model
directory FunASR loads — config.yaml, model.pt, tokens.json / bpe.model, am.mvn, seg_dict; for
Fun-ASR-Nano configuration.json, a Qwen3 config and tokenizer, a CTC vocabulary — so the real
loading and decoding code runs without network. Random weights give meaningless text:
the tests check structure (segments, times, languages) and that options reach the model, by
watching the arguments FunASR's ``generate`` receives.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import math
import shutil
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tingji.config import Settings
from tingji.engine.backend import find_backend
from tingji.engine.funasr import catalog
from tingji.errors import MissingExtraError, ModelError, OptionError
from tingji.service import Tingji
from tingji.types import VadOptions

from .conftest import shared_clip

pytestmark = pytest.mark.skipif(
    not catalog.extra_installed(),
    reason=f"the funasr extra is not installed ({catalog.EXTRA_COMMAND})",
)

ZH = "zh/funasr/asr_example_zh.wav"  # 欢迎大家来体验达摩院推出的语音识别模型, 5.5 s
HOTWORDS = ("达摩院", "语音识别")
CHARS = list(
    dict.fromkeys(
        "欢迎大家来体验达摩院推出的语音识别模型我们你他这是一个了在有和不人中国上下时会说要去"
        "就也得里后自以可而过天能对小多然于心学么之都好看起发当没成只如事把还用第样道想作种"
    )
)
SENSEVOICE_TAGS = [
    "<|zh|>", "<|en|>", "<|yue|>", "<|ja|>", "<|ko|>", "<|nospeech|>",
    "<|HAPPY|>", "<|SAD|>", "<|ANGRY|>", "<|NEUTRAL|>", "<|EMO_UNKNOWN|>",
    "<|Speech|>", "<|BGM|>", "<|withitn|>", "<|woitn|>",
]  # fmt: skip
WIDTH = 32
_SANM = {
    "output_size": WIDTH,
    "attention_heads": 2,
    "linear_units": 2 * WIDTH,
    "num_blocks": 2,
    "dropout_rate": 0.0,
    "positional_dropout_rate": 0.0,
    "attention_dropout_rate": 0.0,
    "input_layer": "pe",
    "pos_enc_class": "SinusoidalPositionEncoder",
    "normalize_before": True,
    "kernel_size": 11,
    "sanm_shfit": 0,
    "selfattention_layer_type": "sanm",
}
_DECODER = {
    "attention_heads": 2,
    "linear_units": 2 * WIDTH,
    "num_blocks": 2,
    "dropout_rate": 0.0,
    "positional_dropout_rate": 0.0,
    "self_attention_dropout_rate": 0.0,
    "src_attention_dropout_rate": 0.0,
    "att_layer_num": 2,
    "kernel_size": 11,
    "sanm_shfit": 0,
}
_FBANK = {"fs": 16000, "window": "hamming", "n_mels": 80, "frame_length": 25, "frame_shift": 10}
_LFR = {**_FBANK, "lfr_m": 7, "lfr_n": 6, "dither": 0.0}


# -- building tiny models --------------------------------------------------------------------
def _write_mvn(path: Path, dim: int) -> None:
    """An identity CMVN file in Kaldi nnet text form, as FunASR's am.mvn."""
    zeros, ones = " ".join(["0"] * dim), " ".join(["1"] * dim)
    path.write_text(
        f"<Nnet>\n<Splice> {dim} {dim}\n[ 0 ]\n<AddShift> {dim} {dim}\n"
        f"<LearnRateCoef> 0 [ {zeros} ]\n<Rescale> {dim} {dim}\n"
        f"<LearnRateCoef> 0 [ {ones} ]\n</Nnet>\n"
    )


def _write_tokens(root: Path) -> None:
    tokens = ["<blank>", "<s>", "</s>", *CHARS, "<unk>"]
    (root / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")


def _save(root: Path, config: dict[str, Any], adjust: Any = None) -> Path:
    """Build ``config`` through FunASR with the files already in ``root``; save config.yaml
    and the weights (after ``adjust(model)``) as model.pt."""
    import torch
    import yaml
    from funasr import AutoModel

    (root / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    kwargs = {**copy.deepcopy(config), "device": "cpu"}
    for section, key, name in (
        ("frontend_conf", "cmvn_file", "am.mvn"),
        ("tokenizer_conf", "token_list", "tokens.json"),
        ("tokenizer_conf", "bpemodel", "bpe.model"),
    ):
        if (root / name).exists():
            kwargs[section] = {**kwargs.get(section, {}), key: str(root / name)}
    configuration = root / "configuration.json"
    if configuration.exists():  # the files its file_path_metas names, found as FunASR does
        from funasr.download.download_model_from_hub import add_file_root_path
        from funasr.utils.misc import deep_update

        metas = json.loads(configuration.read_text(encoding="utf-8"))["file_path_metas"]
        sections = {k: v for k, v in metas.items() if isinstance(v, dict)}
        deep_update(kwargs, add_file_root_path(str(root), sections, {}))
    torch.manual_seed(0)
    model, _ = AutoModel.build_model(**kwargs)
    if adjust is not None:
        with torch.no_grad():
            adjust(model)
    torch.save(model.state_dict(), root / "model.pt")
    return root


def build_seaco(root: Path) -> Path:
    """SeACo-Paraformer: SANM encoder and decoder, CIF predictor with timestamps, bias LSTM;
    seg_dict beside am.mvn, as the hotword path looks for it there."""
    root.mkdir(parents=True)
    _write_tokens(root)
    (root / "seg_dict").write_text("".join(f"{c} {c}\n" for c in CHARS), encoding="utf-8")
    _write_mvn(root / "am.mvn", 80 * 7)
    config = {
        "model": "SeacoParaformer",
        "model_conf": {
            "ctc_weight": 0.0,
            "predictor_bias": 1,
            "inner_dim": WIDTH,
            "bias_encoder_type": "lstm",
            "NO_BIAS": len(CHARS) + 3,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": _SANM,
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": _DECODER,
        "predictor": "CifPredictorV3",
        "predictor_conf": {
            "idim": WIDTH,
            "threshold": 1.0,
            "l_order": 1,
            "r_order": 1,
            "tail_threshold": 0.45,
            "smooth_factor2": 0.25,
            "noise_threshold2": 0.01,
            "upsample_times": 3,
            "use_cif1_cnn": False,
            "upsample_type": "cnn_blstm",
        },
        "seaco_decoder": "ParaformerSANMDecoder",
        "seaco_decoder_conf": {
            **_DECODER,
            "num_blocks": 1,
            "kernel_size": 21,
            "use_output_layer": False,
            "wo_input_layer": True,
        },
        "frontend": "WavFrontend",
        "frontend_conf": _LFR,
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }
    return _save(root, config)


def build_sensevoice(root: Path) -> Path:
    """SenseVoice-Small with a sentencepiece model trained here, its tags as user symbols. The
    CTC output leans towards <|ja|>, so that language detection has a definite answer."""
    import sentencepiece as spm

    root.mkdir(parents=True)
    _write_mvn(root / "am.mvn", 80 * 7)
    lines = ["".join(CHARS[i : i + 12]) for i in range(0, len(CHARS), 12)]
    lines += ["hello world this is a test", "speech recognition model"]
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * 5),
        model_writer=buffer,
        vocab_size=200,
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=1.0,
        user_defined_symbols=SENSEVOICE_TAGS,
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
        minloglevel=2,
    )
    (root / "bpe.model").write_bytes(buffer.getvalue())
    processor = spm.SentencePieceProcessor(model_proto=buffer.getvalue())
    ja = processor.piece_to_id("<|ja|>")
    config = {
        "model": "SenseVoiceSmall",
        "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
        "encoder": "SenseVoiceEncoderSmall",
        "encoder_conf": {**_SANM, "tp_blocks": 1},
        "frontend": "WavFrontend",
        "frontend_conf": _LFR,
        "tokenizer": "SentencepiecesTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }

    def lean_to_japanese(model: Any) -> None:
        model.ctc.ctc_lo.bias[ja] += 1.0

    return _save(root, config, lean_to_japanese)


def _write_qwen3(root: Path) -> Any:
    """A one-layer Qwen3 config and a byte-level BPE tokenizer (Qwen's chat tokens as special
    tokens, the Chinese characters as whole tokens) where Fun-ASR-Nano has Qwen3-0.6B."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, Qwen2TokenizerFast, Qwen3Config

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [
        *CHARS,
        "".join(CHARS),
        "You are a helpful assistant.",
        "语音转写成中文，不进行文本规整：",
    ]
    bpe.train_from_iterator(corpus * 3, trainer)
    Qwen2TokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None
    ).save_pretrained(root)
    tokenizer = AutoTokenizer.from_pretrained(root)  # as FunASR's HuggingfaceTokenizer loads it
    Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=WIDTH,
        intermediate_size=2 * WIDTH,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ).save_pretrained(root)
    return tokenizer


def _write_tiktoken(path: Path) -> None:
    """A SenseVoice-style tiktoken vocabulary: every byte, then each character whole."""
    ranks = [bytes([b]) for b in range(256)]
    for char in CHARS:
        raw = char.encode()
        ranks += [raw[:k] for k in range(2, len(raw) + 1) if raw[:k] not in ranks]
    path.write_text("".join(f"{base64.b64encode(t).decode()} {n}\n" for n, t in enumerate(ranks)))


@contextlib.contextmanager
def _vocab_left_open() -> Iterator[None]:
    """FunASR's SenseVoice tokenizer (Fun-ASR-Nano's CTC tokenizer) leaves its vocabulary file
    open: a ResourceWarning, which this suite's warning filter makes an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        yield


def build_nano(root: Path) -> Path:
    """Fun-ASR-Nano laid out as FunASR's code expects FunAudioLLM/Fun-ASR-Nano-2512: SenseVoice
    encoder, Transformer adaptor, a Qwen3 LLM (its config and tokenizer in Qwen3-0.6B/), and
    the CTC branch that times the tokens (its SenseVoice vocabulary in multilingual.tiktoken),
    the paths in configuration.json. Its LLM writes
    only whole Chinese characters, and at most ``max_length`` tokens (random weights never
    stop on their own); its CTC head emits blanks and characters (never a special token)."""
    from funasr.register import tables

    root.mkdir(parents=True)
    tokenizer = _write_qwen3(root / "Qwen3-0.6B")
    _write_tiktoken(root / "multilingual.tiktoken")
    with _vocab_left_open():
        ctc_tokenizer = tables.tokenizer_classes.get("SenseVoiceTokenizer")(
            vocab_path=str(root / "multilingual.tiktoken")
        )
    ctc_vocab = ctc_tokenizer.encoding.n_vocab + 1  # the last one is the blank
    metas = {
        "init_param": "model.pt",
        "config": "config.yaml",
        "tokenizer_conf": {"init_param_path": "Qwen3-0.6B"},
        "llm_conf": {"init_param_path": "Qwen3-0.6B"},
        "dataset_conf": {"ctc_tokenizer_conf": {"vocab_path": "multilingual.tiktoken"}},
    }
    (root / "configuration.json").write_text(
        json.dumps({"framework": "pytorch", "model": {"type": "funasr"}, "file_path_metas": metas})
    )
    adaptor = {"downsample_rate": 1, "ffn_dim": 2 * WIDTH, "n_layer": 1, "attention_heads": 2}
    config = {
        "model": "FunASRNano",
        "model_conf": {"length_normalized_loss": True},
        "audio_encoder": "SenseVoiceEncoderSmall",
        "audio_encoder_conf": {**_SANM, "tp_blocks": 1, "freeze": True},
        "audio_adaptor": "Transformer",
        "audio_adaptor_conf": {**adaptor, "freeze": True},
        "llm": "Qwen3-0.6b",
        "llm_conf": {"hub": "hf", "freeze": True, "llm_dtype": "fp32", "use_lora": False},
        "ctc_decoder": "Transformer",
        "ctc_decoder_conf": {**adaptor, "llm_dim": WIDTH, "freeze": True},
        "ctc_vocab_size": ctc_vocab,
        "dataset_conf": {"ctc_tokenizer": "SenseVoiceTokenizer"},
        "max_length": 12,
        "frontend": "WavFrontend",
        "frontend_conf": _LFR,
        "tokenizer": "HuggingfaceTokenizer",
    }
    llm_chars = [
        tokenizer.convert_tokens_to_ids(t)
        for t in tokenizer.get_vocab()
        if tokenizer.convert_tokens_to_string([t]) in CHARS
    ]
    ctc_chars = [ctc_tokenizer.encode(c)[0] for c in CHARS]

    def write_chinese(model: Any) -> None:
        for head, keep in ((model.llm.lm_head, llm_chars), (model.ctc.ctc_lo, ctc_chars)):
            weight = head.weight[keep] * 100
            head.weight.zero_()
            head.weight[keep] = weight
        model.ctc.ctc_lo.bias.zero_()
        model.ctc.ctc_lo.bias[ctc_vocab - 1] = 2.0

    with _vocab_left_open():
        return _save(root, config, write_chinese)


def build_fsmn_vad(root: Path) -> Path:
    """fsmn-vad whose network always says "speech" (silence probability 0.1: never 0, FunASR
    takes its log), so its energy threshold alone cuts at pauses: a deterministic VAD."""
    root.mkdir(parents=True)
    _write_mvn(root / "am.mvn", 80 * 5)
    config = {
        "model": "FsmnVADStreaming",
        "model_conf": {
            "sample_rate": 16000,
            "detect_mode": 1,
            "max_end_silence_time": 300,
            "max_start_silence_time": 3000,
            "window_size_ms": 200,
            "sil_to_speech_time_thres": 150,
            "speech_to_sil_time_thres": 150,
            "max_single_segment_time": 60000,
            "decibel_thres": -25.0,
            "speech_noise_thres": 0.6,
            "silence_pdf_num": 1,
            "sil_pdf_ids": [0],
        },
        "encoder": "FSMN",
        "encoder_conf": {
            "input_dim": 80 * 5,
            "input_affine_dim": WIDTH,
            "fsmn_layers": 2,
            "linear_dim": WIDTH,
            "proj_dim": 16,
            "lorder": 4,
            "rorder": 0,
            "lstride": 1,
            "rstride": 0,
            "output_affine_dim": WIDTH,
            "output_dim": 2,
        },
        "frontend": "WavFrontendOnline",
        "frontend_conf": {**_FBANK, "dither": 0.0, "lfr_m": 5, "lfr_n": 1},
    }

    def always_speech(model: Any) -> None:
        out = model.encoder.out_linear2.linear
        out.weight.zero_()
        out.bias.copy_(out.bias.new_tensor([0.0, math.log(9.0)]))

    return _save(root, config, always_speech)


def build_ct_punc(root: Path) -> Path:
    """CT-Transformer punctuation over the same characters."""
    root.mkdir(parents=True)
    _write_tokens(root)
    config = {
        "model": "CTTransformer",
        "model_conf": {
            "ignore_id": 0,
            "embed_unit": WIDTH,
            "att_unit": WIDTH,
            "dropout_rate": 0.0,
            "punc_list": ["<unk>", "_", "，", "。", "？", "、"],
            "punc_weight": [1.0] * 6,
            "sentence_end_id": 3,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": {**_SANM, "input_size": WIDTH, "padding_idx": 0},
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>"},
    }

    def never_unk(model: Any) -> None:  # a trained model never predicts the "<unk>" mark
        model.decoder.bias[0] = -10.0

    return _save(root, config, never_unk)


@dataclass(frozen=True)
class TinyModels:
    seaco: Path
    sensevoice: Path
    nano: Path
    bare_cache: Path
    """A models dir with no FunASR helpers."""
    helper_cache: Path
    """A models dir with fsmn-vad and ct-punc under funasr/."""


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    from tingji.engine.funasr.backend import import_funasr

    import_funasr()  # quietly, once (several seconds)
    root = tmp_path_factory.mktemp("funasr-tiny")
    helpers = root / "helpers"
    build_fsmn_vad(helpers / "funasr" / "fsmn-vad")
    build_ct_punc(helpers / "funasr" / "ct-punc")
    bare = root / "bare"
    bare.mkdir()
    return TinyModels(
        seaco=build_seaco(root / "seaco"),
        sensevoice=build_sensevoice(root / "sensevoice"),
        nano=build_nano(root / "nano"),
        bare_cache=bare,
        helper_cache=helpers,
    )


@pytest.fixture(autouse=True)
def _no_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No network here: the hubs are unreachable, and ModelScope's cache is an empty dir."""
    monkeypatch.setattr(catalog, "_reachable", lambda host, timeout=3.0: False)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "modelscope"))


@dataclass
class Spy:
    """Records the keyword arguments of every ``AutoModel.generate`` call; results untouched."""

    calls: list[dict[str, Any]]


def _service(tmp_path: Path, model: Path | str, cache: Path, **settings: Any) -> Tingji:
    return Tingji(
        Settings(data_dir=tmp_path / "data", models_dir=cache, model=str(model), **settings)
    )


def spy_on(service: Tingji) -> Spy:
    """Wrap the loaded AutoModel's ``generate`` to record its arguments."""
    backend: Any = service.backend()
    spy = Spy([])
    original = backend.model.generate

    def generate(*args: Any, **kwargs: Any) -> Any:
        spy.calls.append(kwargs)
        return original(*args, **kwargs)

    backend.model.generate = generate
    return spy


def _check_segments(transcript: Any) -> None:
    assert transcript.model.backend == "funasr"
    assert transcript.segments, "the tiny model's text became no segment"
    previous = 0.0
    for segment in transcript.segments:
        assert segment.text
        assert 0.0 <= segment.start <= segment.end <= transcript.duration + 0.01
        assert segment.start >= previous - 0.01
        previous = segment.start


# -- the whole path --------------------------------------------------------------------------
def test_seaco_paraformer_hotwords_reach_the_model(tiny: TinyModels, tmp_path: Path) -> None:
    service = _service(tmp_path, tiny.seaco, tiny.bare_cache)
    spy = spy_on(service)
    backend: Any = service.backend()
    assert backend.vad_model is None and backend.punc_model is None
    assert backend.languages() == frozenset({"zh", "en"})

    transcript = service.transcribe(shared_clip(ZH), service.options(hotwords=HOTWORDS))

    _check_segments(transcript)
    assert transcript.language == "zh"
    assert transcript.model.device == "cpu" and transcript.model.compute_type == "float32"
    assert spy.calls and all(call["hotword"] == "达摩院 语音识别" for call in spy.calls)
    assert all(call["output_timestamp"] for call in spy.calls)
    # SeACo turned each term into token ids through seg_dict (an unknown term would be <unk>)
    token_lists = backend.model.model.hotword_list
    unk = len(CHARS) + 3
    assert [len(ids) for ids in token_lists[:2]] == [3, 4]
    assert all(unk not in ids for ids in token_lists[:2])


def test_seaco_without_hotwords_passes_none(tiny: TinyModels, tmp_path: Path) -> None:
    service = _service(tmp_path, tiny.seaco, tiny.bare_cache, language="zh")
    spy = spy_on(service)
    transcript = service.transcribe(shared_clip(ZH))
    _check_segments(transcript)
    assert spy.calls and all("hotword" not in call for call in spy.calls)


def test_funasr_vad_and_punctuation_give_sentences(tiny: TinyModels, tmp_path: Path) -> None:
    """With fsmn-vad and ct-punc in the models dir, FunASR cuts each window and punctuates."""
    service = _service(tmp_path, tiny.seaco, tiny.helper_cache)
    backend: Any = service.backend()
    assert backend.vad_model == tiny.helper_cache / "funasr" / "fsmn-vad"
    assert backend.punc_model == tiny.helper_cache / "funasr" / "ct-punc"
    spy = spy_on(service)
    options = service.options(hotwords=HOTWORDS, vad=VadOptions(enabled=False))

    transcript = service.transcribe(shared_clip(ZH), options)

    _check_segments(transcript)
    assert spy.calls
    for call in spy.calls:
        assert call["sentence_timestamp"] is True
        assert call["batch_size_s"] > 0
        assert call["hotword"] == "达摩院 语音识别"
    # fsmn-vad skipped the leading silence: no segment starts at 0
    assert transcript.segments[0].start > 0.3


def test_sensevoice_language_and_itn(tiny: TinyModels, tmp_path: Path) -> None:
    service = _service(tmp_path, tiny.sensevoice, tiny.bare_cache)
    spy = spy_on(service)
    backend: Any = service.backend()
    assert backend.languages() == frozenset({"zh", "en", "yue", "ja", "ko"})
    assert backend.punc_model is None  # SenseVoice punctuates by itself

    given = service.transcribe(shared_clip(ZH), service.options(language="yue", itn=False))
    _check_segments(given)
    assert given.language == "yue"
    assert spy.calls and all(
        c["language"] == "yue" and c["use_itn"] is False and "hotword" not in c for c in spy.calls
    )

    spy.calls.clear()
    detected = service.transcribe(shared_clip(ZH), service.options(itn=True))
    # detection asks SenseVoice with language=auto; its tiny CTC leans to <|ja|>
    assert spy.calls[0]["language"] == "auto"
    assert detected.language == "ja"
    assert detected.language_probability is not None and detected.language_probability > 0.5
    assert all(c["language"] == "ja" and c["use_itn"] is True for c in spy.calls[1:])
    assert all("<|" not in s.text for s in detected.segments)


def test_sensevoice_decodes_again_when_its_timestamps_fail(
    tiny: TinyModels, tmp_path: Path
) -> None:
    service = _service(tmp_path, tiny.sensevoice, tiny.bare_cache, language="zh")
    backend: Any = service.backend()
    original = backend.model.generate
    calls: list[dict[str, Any]] = []

    def generate(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        if kwargs.get("output_timestamp"):  # as FunASR's alignment does on some texts
            raise IndexError("list index out of range")
        return original(*args, **kwargs)

    backend.model.generate = generate
    transcript = service.transcribe(shared_clip(ZH))
    _check_segments(transcript)
    assert [c["output_timestamp"] for c in calls[:2]] == [True, False]


def _record_prompts(service: Tingji) -> list[str]:
    """Record the prompts Fun-ASR-Nano builds from its options (hotwords, language, ITN)."""
    backend: Any = service.backend()
    model = backend.model.model
    prompts: list[str] = []
    original = model.get_prompt

    def get_prompt(*args: Any, **kwargs: Any) -> str:
        prompts.append(original(*args, **kwargs))
        return prompts[-1]

    model.get_prompt = get_prompt
    return prompts


def _nano_service(tmp_path: Path, model: Path, cache: Path, **settings: Any) -> Tingji:
    """A service with the tiny Fun-ASR-Nano loaded."""
    service = _service(tmp_path, model, cache, **settings)
    with _vocab_left_open():
        service.backend()
    return service


def test_fun_asr_nano_options_reach_its_prompt(tiny: TinyModels, tmp_path: Path) -> None:
    service = _nano_service(tmp_path, tiny.nano, tiny.bare_cache)
    backend: Any = service.backend()
    assert backend.family == "nano"
    assert backend.vad_model is None and backend.punc_model is None  # it punctuates itself
    assert backend.languages() == frozenset({"zh", "en", "ja"})
    spy = spy_on(service)
    prompts = _record_prompts(service)

    options = service.options(language="zh", hotwords=HOTWORDS, itn=False)
    transcript = service.transcribe(shared_clip(ZH), options)

    _check_segments(transcript)
    assert transcript.language == "zh"
    assert spy.calls and all(
        c["hotwords"] == list(HOTWORDS) and c["language"] == "中文" and c["itn"] is False
        for c in spy.calls
    )
    assert all("hotword" not in c and "output_timestamp" not in c for c in spy.calls)
    assert len(prompts) == len(spy.calls)
    for prompt in prompts:
        assert "热词列表：[达摩院, 语音识别]" in prompt
        assert prompt.endswith("语音转写成中文，不进行文本规整：")

    spy.calls.clear()
    prompts.clear()
    detected = service.transcribe(shared_clip(ZH), service.options(itn=True))
    # detection asks without a language, and tells it by the script of the text
    assert spy.calls[0]["language"] is None and prompts[0] == "语音转写，不进行文本规整："
    assert detected.language == "zh" and detected.language_probability == 1.0
    assert all(c["language"] == "中文" and c["hotwords"] == [] for c in spy.calls[1:])
    assert all(p == "语音转写成中文：" for p in prompts[1:])


def test_fun_asr_nano_times_its_tokens_by_ctc(tiny: TinyModels, tmp_path: Path) -> None:
    """The CTC branch times each token (aligned in plain torch where torchaudio is absent,
    as here), and the segments take their times from the tokens."""
    service = _nano_service(tmp_path, tiny.nano, tiny.bare_cache, language="zh")
    results: list[dict[str, Any]] = []
    backend: Any = service.backend()
    original = backend.model.generate

    def generate(*args: Any, **kwargs: Any) -> Any:
        found = original(*args, **kwargs)
        results.extend(found)
        return found

    backend.model.generate = generate
    transcript = service.transcribe(shared_clip(ZH))

    _check_segments(transcript)
    assert len(results) == 1  # one window
    text, tokens = results[0]["text"].strip(), results[0]["timestamps"]
    assert "".join(t["token"] for t in tokens) == text
    times = [(t["start_time"], t["end_time"]) for t in tokens]
    assert all(0 <= start < end for start, end in times)
    assert all(a[1] <= b[0] for a, b in zip(times, times[1:], strict=False))
    segments = transcript.segments
    assert "".join(s.text.rstrip("。") for s in segments) == text  # tingji ends sentences
    # the segments span the tokens (not the window), within the audio (CTC frames may end
    # a little past it)
    span = segments[-1].end - segments[0].start
    ends = min(times[-1][1], transcript.duration)
    assert span == pytest.approx(ends - times[0][0], abs=0.002)


def test_fun_asr_nano_without_ctc_gives_a_segment_per_window(
    tiny: TinyModels, tmp_path: Path
) -> None:
    """A checkpoint without the CTC branch (FunASR then drops it) gives no token times: each
    decoded window is one segment."""
    service = _nano_service(tmp_path, tiny.nano, tiny.bare_cache, language="zh")
    backend: Any = service.backend()
    backend.model.model.ctc_decoder = backend.model.model.ctc = None
    spy = spy_on(service)
    transcript = service.transcribe(shared_clip(ZH))
    _check_segments(transcript)
    assert len(spy.calls) == len(transcript.segments) == 1


def test_fun_asr_nano_with_funasr_vad(tiny: TinyModels, tmp_path: Path) -> None:
    """With fsmn-vad in the models dir FunASR cuts each window; no ct-punc for Fun-ASR-Nano."""
    service = _nano_service(tmp_path, tiny.nano, tiny.helper_cache)
    backend: Any = service.backend()
    assert backend.vad_model == tiny.helper_cache / "funasr" / "fsmn-vad"
    assert backend.punc_model is None
    spy = spy_on(service)
    options = service.options(
        language="ja", hotwords=HOTWORDS, itn=True, vad=VadOptions(enabled=False)
    )

    transcript = service.transcribe(shared_clip(ZH), options)

    _check_segments(transcript)
    assert transcript.language == "ja"
    assert spy.calls
    for call in spy.calls:
        assert call["sentence_timestamp"] is True and call["batch_size_s"] > 0
        assert call["language"] == "日文" and call["itn"] is True
        assert call["hotwords"] == list(HOTWORDS) and "return_raw_text" not in call
    assert transcript.segments[0].start > 0.3  # fsmn-vad skipped the leading silence


def test_sensevoice_refuses_translation(tiny: TinyModels, tmp_path: Path) -> None:
    service = _service(tmp_path, tiny.sensevoice, tiny.bare_cache)
    with pytest.raises(OptionError, match="transcribe only"):
        service.transcribe(shared_clip(ZH), service.options(language="zh", task="translate"))


def test_funasr_models_are_offered_and_claimed(tiny: TinyModels, tmp_path: Path) -> None:
    service = _service(tmp_path, tiny.seaco, tiny.bare_cache, allow_model_downloads=True)
    offered = service.offered_models()
    for name in ("paraformer-zh", "iic/SenseVoiceSmall", "FunAudioLLM/Fun-ASR-Nano-2512"):
        assert name in offered
        assert service.check_model(name) == name
        assert find_backend(name).name == "funasr"
    assert find_backend(str(tiny.seaco)).name == "funasr"
    assert find_backend("base").name == "whisper"
    assert find_backend("large-v3").name == "whisper"


def test_only_models_on_this_machine_are_offered_by_default(
    tiny: TinyModels, tmp_path: Path
) -> None:
    """A client cannot start a download of gigabytes: a catalogue model is offered once its
    files are in the cache, or where the operator allows downloads."""
    cache = tmp_path / "models"
    service = _service(tmp_path, "base", cache)
    for name in ("paraformer-zh", "iic/SenseVoiceSmall", "large-v3"):
        assert name not in service.offered_models()
        with pytest.raises(OptionError, match="not offered"):
            service.check_model(name)
    shutil.copytree(tiny.sensevoice, catalog.download_dir("iic/SenseVoiceSmall", cache))
    assert service.offered_models() == ["base", "iic/SenseVoiceSmall"]
    assert service.check_model("iic/SenseVoiceSmall") == "iic/SenseVoiceSmall"


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "model_id"),
    [
        ("paraformer-zh", catalog.KNOWN["paraformer-zh"].modelscope_id),
        ("iic/SenseVoiceSmall", "iic/SenseVoiceSmall"),
        ("iic/no-such-model", "iic/no-such-model"),
    ],
)
def test_a_missing_model_says_how_to_fetch_it(
    tiny: TinyModels, tmp_path: Path, model: str, model_id: str
) -> None:
    service = _service(tmp_path, model, tiny.bare_cache)
    with pytest.raises(ModelError) as caught:
        service.backend()
    message = str(caught.value)
    assert f"modelscope download --model {model_id} --local_dir" in message
    assert str(tiny.bare_cache / "funasr" / model_id) in message
    assert "not reachable" in message


def test_a_model_in_modelscopes_cache_is_found(
    tiny: TinyModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "ms"
    shutil.copytree(tiny.sensevoice, cache / "models" / "iic" / "SenseVoiceSmall")
    monkeypatch.setenv("MODELSCOPE_CACHE", str(cache))
    service = _service(tmp_path, "iic/SenseVoiceSmall", tiny.bare_cache)
    info = service.backend().info
    assert (info.backend, info.name) == ("funasr", "iic/SenseVoiceSmall")


def test_an_incomplete_model_dir_names_what_is_missing(tiny: TinyModels, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny.seaco, broken)
    (broken / "model.pt").unlink()
    with pytest.raises(ModelError, match="model.pt missing"):
        _service(tmp_path, broken, tiny.bare_cache).backend()
    (broken / "configuration.json").write_text(
        json.dumps({"file_path_metas": {"init_param": "model.pt", "config": "config.yaml"}})
    )
    with pytest.raises(ModelError, match="model.pt missing"):
        _service(tmp_path, broken, tiny.bare_cache).backend()


def test_without_the_extra_the_error_names_the_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "funasr", None)  # `import funasr` fails, find_spec: None
    service = _service(tmp_path, "paraformer-zh", tmp_path / "models")
    with pytest.raises(MissingExtraError) as caught:
        service.backend()
    assert catalog.EXTRA_COMMAND in str(caught.value)
    assert "iic/SenseVoiceSmall" not in service.offered_models()
    with pytest.raises(OptionError):
        service.check_model("iic/SenseVoiceSmall")
