"""The official ``openai`` SDK, unchanged, against tingji's OpenAI-compatible endpoint."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from tingji.config import Settings
from tingji.server.app import create_app

from .conftest import shared_clip
from .test_server_api import parse_srt

JFK = "en/faster_whisper/jfk.flac"  # 11 s
SONG = "zh/fireredasr/IT0011W0001.wav"  # 换一首歌, 2.0 s
SHORT = "zh/speechio/e5oipIfM49I__20190201_CCTV_1.wav"  # 1.3 s

VTT_TIME = r"\d\d:\d\d:\d\d\.\d{3}"


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z ]", " ", text.lower()).split())


class Server:
    def __init__(self, http: TestClient, settings: Settings) -> None:
        self.http = http
        self.settings = settings

    def sdk(self, api_key: str = "x") -> openai.OpenAI:
        return openai.OpenAI(
            base_url="http://testserver/v1", api_key=api_key, http_client=self.http, max_retries=0
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("oai") / "data", models_dir=model_cache)
    with TestClient(create_app(settings, ui=False)) as http:
        yield Server(http, settings)


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return server.sdk()


def test_json(client: openai.OpenAI) -> None:
    with shared_clip(JFK).open("rb") as audio:
        result = client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert isinstance(result, openai.types.audio.Transcription)
    assert "ask not what your country can do for you" in _words(result.text)


def test_text(client: openai.OpenAI) -> None:
    with shared_clip(SONG).open("rb") as audio:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="text", language="zh"
        )
    assert isinstance(result, str)
    assert "一首歌" in result
    assert not result.lstrip().startswith("{")


def test_srt(client: openai.OpenAI) -> None:
    with shared_clip(SONG).open("rb") as audio:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="srt", language="zh"
        )
    assert isinstance(result, str)
    cues = parse_srt(result)
    assert "一首歌" in "".join(c[3] for c in cues)
    assert cues[-1][2] <= 2.1


def test_vtt(client: openai.OpenAI) -> None:
    with shared_clip(SHORT).open("rb") as audio:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="vtt", language="zh"
        )
    assert isinstance(result, str)
    lines = result.strip().splitlines()
    assert lines[0] == "WEBVTT"
    cues = [line for line in lines if "-->" in line]
    assert cues
    for cue in cues:
        assert re.fullmatch(rf"{VTT_TIME} --> {VTT_TIME}", cue), cue
    assert lines[-1].strip() and "-->" not in lines[-1]


def test_verbose_json(client: openai.OpenAI) -> None:
    with shared_clip(JFK).open("rb") as audio:
        result = client.audio.transcriptions.create(
            model="whisper-1",
            file=audio,
            response_format="verbose_json",
            timestamp_granularities=["segment"],
        )
    assert isinstance(result, openai.types.audio.TranscriptionVerbose)
    assert result.language == "english"
    assert result.duration == pytest.approx(11.0, abs=0.1)
    assert "ask not what your country" in _words(result.text)
    assert result.segments
    previous_end = 0.0
    for segment in result.segments:
        assert previous_end - 0.01 <= segment.start < segment.end <= result.duration + 0.1
        previous_end = segment.end
    assert " ".join(_words(s.text) for s in result.segments) == _words(result.text)


def test_tingji_extras_are_accepted(client: openai.OpenAI, server: Server) -> None:
    with shared_clip(SHORT).open("rb") as audio:
        result = client.audio.transcriptions.create(
            model="base",
            file=audio,
            language="zh",
            extra_body={"hotwords": "观众,晚上好", "itn": "false"},
        )
    assert "观众" in result.text
    entry = server.http.get("/api/history", params={"q": result.text}).json()["items"][0]
    options = server.http.get(f"/api/history/{entry['id']}").json()["options"]
    assert options["hotwords"] == ["观众", "晚上好"]
    assert options["itn"] is False
    assert options["language"] == "zh"


def test_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids[:2] == ["whisper-1", "base"]
    assert len(ids) == len(set(ids))
    assert all(m.owned_by == "tingji" for m in client.models.list())


def _shape(body: Any, code: str) -> None:
    assert set(body) == {"message", "type", "param", "code"}
    assert body["code"] == code
    assert body["type"] == "invalid_request_error"
    assert body["message"]


def test_bad_audio_raises_bad_request(client: openai.OpenAI, server: Server) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=("x.wav", b"nonsense" * 64))
    assert caught.value.status_code == 400
    _shape(caught.value.body, "bad_audio")
    assert "x.wav" in caught.value.body["message"]
    raw = server.http.post("/v1/audio/transcriptions", files={"file": ("x.wav", b"nonsense")})
    assert raw.status_code == 400
    assert set(raw.json()) == {"error"}
    _shape(raw.json()["error"], "bad_audio")


def test_unsupported_type_raises_415(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=("notes.txt", b"hello"))
    assert caught.value.status_code == 415
    _shape(caught.value.body, "unsupported_format")


def test_unknown_model_raises_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="/etc/passwd", file=("x.wav", b"nonsense"))
    _shape(caught.value.body, "invalid_option")
    assert "not offered" in caught.value.body["message"]


def test_missing_route_raises_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("whisper-1")  # GET /v1/models/{id} is not served
    assert set(caught.value.body) == {"message", "type", "param", "code"}
    assert caught.value.body["code"] == "not_found"


def test_api_keys(tmp_path: Path, model_cache: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", models_dir=model_cache, api_keys=["k1"])
    with TestClient(create_app(settings, ui=False)) as http:
        server = Server(http, settings)
        with pytest.raises(openai.AuthenticationError) as caught:
            server.sdk("wrong").models.list()
        assert caught.value.status_code == 401
        assert set(caught.value.body) == {"message", "type", "param", "code"}
        with pytest.raises(openai.AuthenticationError):
            server.sdk("wrong").audio.transcriptions.create(
                model="whisper-1", file=("x.wav", b"nonsense")
            )
        assert "whisper-1" in [m.id for m in server.sdk("k1").models.list()]
