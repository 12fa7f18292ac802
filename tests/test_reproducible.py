"""A file's text is a function of the audio, the options and the model: the same whether it is
recognised alone, beside other files (their utterances batched with its own), in any order,
or through the API beside other clients."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tingji.server.app import create_app
from tingji.service import Tingji

from .conftest import manifest, shared_clip


@pytest.fixture(scope="module")
def clips() -> list[tuple[Path, str]]:
    """The shared Mandarin clips and two English ones, with their languages."""
    entries = [e for e in manifest() if e["text"] and not e["path"].startswith("long/")]
    chosen = [e for e in entries if e["lang"] == "zh"] + [e for e in entries if e["lang"] == "en"][
        :2
    ]
    return [(shared_clip(e["path"]), e["lang"]) for e in chosen]


def text(service: Tingji, clip: Path, language: str) -> str:
    return service.transcribe(str(clip), service.options(language=language)).text


@pytest.fixture(scope="module")
def alone(service: Tingji, clips: list[tuple[Path, str]]) -> list[str]:
    return [text(service, clip, language) for clip, language in clips]


def together(service: Tingji, clips: list[tuple[Path, str]], workers: int = 4) -> list[str]:
    """All clips at once from ``workers`` threads: their utterances share decode batches."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda c: text(service, *c), clips))


@pytest.mark.slow
def test_beside_other_files_the_text_is_the_same(
    service: Tingji, clips: list[tuple[Path, str]], alone: list[str]
) -> None:
    assert together(service, clips) == alone


@pytest.mark.slow
def test_in_reverse_order_the_text_is_the_same(
    service: Tingji, clips: list[tuple[Path, str]], alone: list[str]
) -> None:
    assert together(service, clips[::-1])[::-1] == alone


@pytest.mark.slow
def test_through_the_api_beside_three_other_clients(
    service: Tingji, clips: list[tuple[Path, str]], alone: list[str]
) -> None:
    def post(clip: tuple[Path, str]) -> str:
        path, language = clip
        response = client.post(
            "/api/transcriptions",
            files={"file": (path.name, path.read_bytes(), "audio/wav")},
            data={"language": language},
        )
        assert response.status_code == 200, response.text
        return str(response.json()["text"])

    client = TestClient(create_app(service.settings, service, ui=False))  # no lifespan: it
    with ThreadPoolExecutor(4) as pool:  # would close the session's service
        texts = list(pool.map(post, clips))
    assert texts == alone


def test_the_demo_clip_reads_as_plain_faster_whisper_reads_it(service: Tingji) -> None:
    """The sentence a new user hears first: plain faster-whisper gets every word of it on each
    CPU kernel family, and so must tingji."""
    clip = shared_clip("zh/funasr/asr_example_zh.wav")
    assert "达摩院推出的语音识别模型" in text(service, clip, "zh")
