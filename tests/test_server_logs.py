"""What ``tingji.http`` logs: a line per API request and per failure, never assets or keys."""

from __future__ import annotations

import io
import logging
import re
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tingji.config import Settings
from tingji.server import logs
from tingji.server.app import create_app
from tingji.service import Tingji

from .conftest import FakeBackend

KEY = "sekrit-key-0123456789"
LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) (/\S*) (\d{3}) (\d+) ms(?:: (.+))?$")


def _wav(seconds: float = 2.0) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    samples = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.tobytes())
    return out.getvalue()


def _service(settings: Settings, backend: Any = None) -> Tingji:
    service = Tingji(settings)
    fake = backend or FakeBackend(["好"])
    service.backend = lambda model=None: fake  # type: ignore[method-assign]
    return service


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, _service(settings), ui=False)) as test_client:
        yield test_client


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tingji.http"]


def _server_log(caplog: pytest.LogCaptureFixture) -> str:
    """Every record but those of the test client's own httpx, which logs what it asked for."""
    records = [r for r in caplog.records if not r.name.startswith("httpx")]
    return "\n".join(logging.Formatter().format(r) for r in records)


def test_ui_assets_polling_and_health_probes_log_nothing(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(create_app(settings, _service(settings), ui=True)) as client:
        page = client.get("/")
        assert page.status_code == 200
        named = re.findall(r'(?:src|href)="\.?(/(?:assets|static)/[^"?#]+)"', page.text)
        assert named, "the page names no assets"
        urls = [
            *named,
            "/config",
            "/gradio_api/info",
            "/theme.css",
            "/manifest.json",
            "/favicon.ico",
            "/assets/no-such-file.js",  # a 404 among the assets is no news either
            "/docs/assets/swagger-ui.css",
            "/healthz",
        ]
        caplog.clear()
        with caplog.at_level(logging.INFO):
            for url in urls:
                assert client.get(url).status_code < 500, url
    assert _lines(caplog) == []
    logged = _server_log(caplog)
    for url in urls:
        assert url not in logged


def test_a_successful_api_request_is_one_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        assert client.get("/api/history").status_code == 200
    [record] = _lines(caplog)
    assert record.levelno == logging.INFO
    match = LINE.match(record.getMessage())
    assert match, record.getMessage()
    assert match.group(1, 2, 3) == ("GET", "/api/history", "200")


def test_a_recognition_line_names_the_audio_and_the_model(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        answer = client.post(
            "/api/transcriptions",
            files={"file": ("tone.wav", _wav(2.0), "audio/wav")},
            data={"vad": "false"},
        )
    assert answer.status_code == 200, answer.text
    [record] = _lines(caplog)
    message = record.getMessage()
    assert message.startswith("POST /api/transcriptions 200 "), message
    assert message.endswith("ms: 2.0 s of audio, fake on cpu"), message


def test_client_errors_are_one_warning_with_the_reason(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        bad = client.post(
            "/api/transcriptions",
            files={"file": ("录音.wav", b"RIFF\x00\x00garbage" * 200, "audio/wav")},
        )
        missing = client.get("/api/history/987654")
    assert bad.status_code == 400 and missing.status_code == 404
    first, second = _lines(caplog)
    for record, answer in ((first, bad), (second, missing)):
        assert record.levelno == logging.WARNING
        assert record.exc_info is None  # no traceback for a client's mistake
        match = LINE.match(record.getMessage())
        assert match, record.getMessage()
        assert int(match.group(3)) == answer.status_code
        assert match.group(5) == answer.json()["error"]["message"]
    assert first.getMessage().startswith("POST /api/transcriptions 400 ")
    assert second.getMessage().startswith("GET /api/history/987654 404 ")


def test_an_unexpected_error_is_logged_once_with_its_traceback(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(FakeBackend):
        def decode(self, audio: Any, options: Any) -> Any:
            raise RuntimeError("the decoder fell over")

    app = create_app(settings, _service(settings, Broken([])), ui=False)
    with TestClient(app) as client, caplog.at_level(logging.INFO):
        answer = client.post(
            "/api/transcriptions",
            files={"file": ("tone.wav", _wav(1.0), "audio/wav")},
            data={"vad": "false"},
        )
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1, [r.getMessage() for r in tracebacks]
    [record] = _lines(caplog)
    assert record is tracebacks[0] and record.levelno == logging.ERROR
    assert record.getMessage().startswith("POST /api/transcriptions 500 ")
    assert "RuntimeError: the decoder fell over" in record.getMessage()


def test_keys_never_reach_the_log(
    tmp_path: Path, model_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data", models_dir=model_cache, api_keys=[KEY])
    app = create_app(settings, _service(settings), ui=False)
    wrong = "wrong-key-9876543210"
    with TestClient(app) as client, caplog.at_level(logging.DEBUG):
        assert client.get(f"/api/history?api_key={KEY}").status_code == 200
        assert client.get(f"/api/history?limit=5&api%5Fkey={KEY}").status_code == 200
        headers = {"Authorization": f"Bearer {KEY}"}
        assert client.get("/api/history", headers=headers).status_code == 200
        assert client.get(f"/api/history?api_key={wrong}&q=x").status_code == 401
        refused = client.post(f"/api/transcriptions?token={wrong}", files={"file": ("a", b"x")})
        assert refused.status_code == 401
    lines = [r.getMessage() for r in _lines(caplog)]
    assert [line.split(" ")[1:3] for line in lines] == [
        ["/api/history?api_key=***", "200"],
        ["/api/history?limit=5&api_key=***", "200"],
        ["/api/history", "200"],
        ["/api/history?api_key=***&q=x", "401"],
        ["/api/transcriptions?token=***", "401"],
    ]
    assert "API key is required" in lines[3]
    server = _server_log(caplog)
    assert "GET /api/history?api_key=***&q=x 401" in server
    assert KEY not in server and wrong not in server


def test_access_log_all_logs_assets_too(
    tmp_path: Path, model_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data", models_dir=model_cache, access_log="all")
    with TestClient(create_app(settings, _service(settings), ui=True)) as client:
        page = client.get("/")
        [asset] = re.findall(r'src="\.?(/assets/[^"?#]+\.js)"', page.text)[:1]
        with caplog.at_level(logging.INFO):
            assert client.get(asset).status_code == 200
            assert client.get("/healthz").status_code == 200
    lines = [r.getMessage() for r in _lines(caplog)]
    assert [line.split(" ")[:3] for line in lines] == [
        ["GET", asset, "200"],
        ["GET", "/healthz", "200"],
    ]


def test_access_log_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINGJI_ACCESS_LOG", "all")
    monkeypatch.setenv("TINGJI_LOG_LEVEL", "warning")
    settings = Settings()
    assert (settings.access_log, settings.log_level) == ("all", "warning")


def test_line_format() -> None:
    assert logs.line("POST", "/api/transcriptions", 200, 1834.4) == (
        "POST /api/transcriptions 200 1834 ms"
    )
    assert logs.line("GET", "/api/x\nGET /forged", 404, 2.6, "no\nsuch  entry") == (
        "GET /api/x\\x0aGET /forged 404 3 ms: no such entry"
    )
    assert logs.line("GET", "/x", None, 0.2) == "GET /x - 0 ms"


def test_safe_query_hides_secrets_however_spelt() -> None:
    assert logs.safe_query("a=1&api_key=k&TOKEN=t&ticket=&q=%E4%BC%9A") == (
        "a=1&api_key=***&TOKEN=***&ticket=***&q=%E4%BC%9A"
    )
    assert logs.safe_query("api%5Fkey=k&%74oken=t") == "api_key=***&token=***"


@pytest.mark.parametrize(
    ("path", "status", "mode", "expected"),
    [
        ("/api/history", 200, "api", True),
        ("/v1/models", 404, "api", True),
        ("/", 200, "api", False),
        ("/login", 401, "api", True),
        ("/assets/index.js", 404, "api", False),
        ("/gradio_api/queue/join", 500, "api", True),
        ("/healthz", 200, "api", False),
        ("/healthz", 200, "all", True),
    ],
)
def test_which_requests_get_a_line(path: str, status: int, mode: str, expected: bool) -> None:
    assert logs.wanted(path, status, mode) is expected  # type: ignore[arg-type]


def test_reason_of_each_kind_of_error_body() -> None:
    tingji = b'{"error": {"code": "not_found", "message": "no entry 7"}}'
    assert logs.reason(tingji, "application/json", 404) == "no entry 7"
    assert logs.reason(b'{"detail": "Not authenticated"}', "application/json", 401) == (
        "Not authenticated"
    )
    assert logs.reason(b"<html>...</html>", "text/html; charset=utf-8", 401) == "Unauthorized"
    assert logs.reason(b"bad ?api_key=abc here", "text/plain", 400) == "bad ?api_key=*** here"
