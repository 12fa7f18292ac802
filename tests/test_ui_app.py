"""The web UI without a browser: mounting, login rule, texts, and the pure helpers of the tabs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tingji.config import Settings
from tingji.server.app import create_app
from tingji.types import JobFile, JobStatus
from tingji.ui.app import _title, login_check
from tingji.ui.batch import percent, progress_html
from tingji.ui.common import clock, highlight, status_line
from tingji.ui.early import gradio_i18n, script
from tingji.ui.history import day_start
from tingji.ui.i18n import TEXTS, lang_of, t


def test_mounted_at_root_next_to_the_api(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert "gradio" in page.text.lower()
        assert client.get("/healthz").json()["status"] == "ok"
        assert client.get("/docs").status_code == 200
        assert client.get("/api/system").status_code == 200
        assert client.get("/v1/models").status_code == 200


def test_ui_login_when_a_password_is_set(tmp_path: Path, model_cache: Path) -> None:
    settings = Settings(data_dir=tmp_path, models_dir=model_cache, ui_password="pw")
    with TestClient(create_app(settings)) as client:
        assert client.get("/config").status_code == 401
        # the transcript's correction function too: nothing without the login
        call = {"data": [1, 0, "edit", "x", "", "zh", ""], "fn_name": "correct"}
        answer = client.post(
            "/gradio_api/component_server/", json={**call, "component_id": 1, "session_hash": "s"}
        )
        assert answer.status_code == 401
        answer = client.post("/login", data={"username": "admin", "password": "pw"})
        assert answer.status_code == 200, answer.text
        assert client.get("/config").status_code == 200


def test_login_rule() -> None:
    assert login_check(Settings()) is None
    by_password = login_check(Settings(ui_password="secret", api_keys=["key"]))
    assert by_password is not None
    assert by_password("admin", "secret")
    assert not by_password("admin", "key")
    assert not by_password("root", "secret")
    by_key = login_check(Settings(api_keys=["k1", "k2"], ui_username="me"))
    assert by_key is not None
    assert by_key("me", "k2")
    assert not by_key("admin", "k2")


def test_every_text_in_both_languages() -> None:
    for key, (zh, en) in TEXTS.items():
        assert zh.strip() and en.strip(), key
        assert zh.count("{") == en.count("{"), key
    assert t("tab.single") == "单文件识别"
    assert t("tab.single", "en") == "Single file"
    assert lang_of("en-US") == "en"
    assert lang_of(None) == lang_of("fr") == lang_of("zh") == "zh"


def test_the_page_script_is_told_where_gradios_i18n_module_is(tmp_path: Path) -> None:
    """lang.js switches Gradio's own texts through the module that exports changeLocale: found
    in the installed Gradio by its exports, whatever the build named it; none elsewhere."""
    found = gradio_i18n()
    assert found is not None and found.startswith("assets/") and found.endswith(".js")
    assert f'const GRADIO_I18N = "{found}";' in script()
    (tmp_path / "Settings-x1.js").write_text('import{changeLocale as re}from"./core-x2.js";')
    (tmp_path / "core-x2.js").write_text("function bt(e){}export{bt as changeLocale,pt as zz};")
    assert gradio_i18n(str(tmp_path)) is None  # no process_langs (its catalogues)
    (tmp_path / "core-x2.js").write_text("export{bt as changeLocale,pt as process_langs};")
    assert gradio_i18n(str(tmp_path)) == "assets/core-x2.js"


def test_highlight_marks_terms_and_escapes() -> None:
    assert highlight("欢迎来到达摩院<b>", ["达摩院"]) == "欢迎来到<mark>达摩院</mark>&lt;b&gt;"
    assert highlight("ask DAMO", ["damo"]) == "ask <mark>DAMO</mark>"
    assert highlight("plain", []) == "plain"
    assert "&lt;script&gt;" in status_line("<script>", "error")


def test_clock_and_dates() -> None:
    assert clock(62.34) == "01:02.3"
    assert clock(3723, fraction=False) == "1:02:03"
    assert clock(None) == "–"
    start = day_start("2025-03-01")
    end = day_start("2025-03-01", next_day=True)
    assert start is not None and end is not None and end - start == pytest.approx(86400, abs=3600)
    assert day_start("") is None


def _job(status: str, files: list[tuple[str, float | None, float]]) -> JobStatus:
    return JobStatus(
        id="j",
        created_at=time.time(),
        status=status,  # type: ignore[arg-type]
        files=[
            JobFile(i, i, f"f{i}.wav", 1, s, duration=d, done_seconds=done)  # type: ignore[arg-type]
            for i, (s, d, done) in enumerate(files)
        ],
        current_file="f1.wav",
        elapsed=12.0,
        eta=30.0,
    )


def test_batch_progress() -> None:
    running = _job("running", [("done", 10.0, 10.0), ("running", 30.0, 15.0)])
    assert percent(running) == pytest.approx(62.5)
    html = progress_html(running, "zh")
    assert 'data-percent="62"' in html and "f1.wav" in html and "剩余" in html
    assert percent(_job("done", [("done", 1.0, 1.0), ("failed", None, 0.0)])) == 100.0
    assert percent(_job("cancelled", [("done", 1.0, 1.0), ("cancelled", 2.0, 0.5)])) == 50.0
    assert 'data-percent="0"' in progress_html(None, "en")


def test_the_transcripts_correction_function_takes_only_what_it_expects(tmp_path: Path) -> None:
    """What the page calls to correct a segment can be called by any logged-in client with
    anything: it answers a message, never an exception, and changes nothing then."""
    from tingji.service import Tingji
    from tingji.types import ModelInfo, Segment, Transcript
    from tingji.ui.transcript import corrector, render

    service = Tingji(Settings(data_dir=tmp_path / "data"))
    model = ModelInfo("whisper", "base", "-", "cpu", "int8")
    segments = [Segment(0, 0.0, 1.0, "你好<b>", speaker="S1"), Segment(1, 1.0, 2.0, "再见")]
    entry_id = service.history.add_transcription(
        Transcript("你好<b>再见", segments, "zh", 0.9, 2.0, 0.1, model), name="a.wav", options={}
    )
    correct = corrector(service)
    for data in (
        None,
        "x",
        [entry_id, 0, "edit", "a", "S1", "zh"],  # one short
        [str(entry_id), "0", "drop", "", "", "zh", ""],
        [entry_id, 0.5, "edit", "a", "", "zh", ""],
        [True, 0, "edit", "a", "", "zh", ""],
        [{"id": 1}, 0, "edit", "a", "", "zh", ""],
        [entry_id, 9, "edit", "a", "", "zh", ""],
        [entry_id, -1, "edit", "a", "", "zh", ""],
        [10**30, 0, "edit", "a", "", "zh", ""],
        [entry_id, 0, "edit", "   ", "", "zh", ""],
        [entry_id, 0, "edit", "a" * 2001, "", "en", ""],
        [entry_id, 0, "edit", "a", "x\u0007", "zh", ""],
        [entry_id, 0, "revert", None, None, "zh", ""],  # nothing to put back: unchanged
    ):
        answer = correct(data)
        assert set(answer) in ({"ok", "message"}, {"ok", "html"}), (data, answer)
        entry = service.get_entry(entry_id)
        assert entry.segments == segments and entry.original is None, data
    assert correct([entry_id, 0, "edit", " ", "", "zh", ""])["message"] == "文字不能为空。"
    answer = correct([entry_id, 1, "edit", "明天见", None, "en", "明天"])
    assert answer["ok"] and "<mark>明天</mark>见" in answer["html"]
    assert "你好&lt;b&gt;" in answer["html"] and "你好<b>" not in answer["html"]  # escaped
    assert service.get_entry(entry_id).text == "你好<b>明天见"
    assert "Nothing was recognised" not in render(service.get_entry(entry_id), "en")
    service.close()


def test_the_page_says_where_audio_goes(settings: Settings) -> None:
    """One box: nothing leaves the machine. A shared database or a cluster: the audio goes to
    those machines, which the page must not deny."""
    alone = _title("zh", settings)
    assert "音频不离开这台机器" in alone
    shared = settings.model_copy(update={"database_url": "postgresql://db.lan/tingji"})
    assert "音频不离开这台机器" not in _title("zh", shared)
    assert "any cloud service" in _title("en", shared)
    cluster = settings.model_copy(update={"ray_address": "head.lan:6379"})
    assert "your own servers" in _title("en", cluster)
