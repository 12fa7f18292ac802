"""The web UI in a real browser: Debian's chromium driven by Playwright, against a live server.

The server runs ``tingji serve`` on a loopback port with a temporary data directory and the
session's model cache; every test saves a screenshot in its own ``tmp_path``.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import shared_clip

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (pip install playwright)"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install -y chromium fonts-noto-cjk)",
)
expect = playwright_api.expect
Page = playwright_api.Page

BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
TABS_ZH = ["单文件识别", "批量处理", "实时录音", "识别历史", "热词", "系统"]
TABS_EN = ["Single file", "Batch", "Live", "History", "Hotwords", "System"]
MANDARIN = "zh/funasr/asr_example_zh.wav"
BATCH = [
    "zh/speechio/e5oipIfM49I__20190201_CCTV_1.wav",
    "zh/fireredasr/TEST_NET_Y0000000000_-KTKHdZ2fb8_S00000.wav",
    "zh/fireredasr/IT0011W0001.wav",
]
RECOGNITION_TIMEOUT_MS = 180_000


class Server:
    """``tingji serve`` in a subprocess, stopped when the fixture ends."""

    def __init__(
        self, data_dir: Path, models_dir: Path, *args: str, host: str = "127.0.0.1", **env: str
    ) -> None:
        self.port = _free_port()
        self.data_dir = data_dir
        self.url = f"{'https' if '--https' in args else 'http'}://127.0.0.1:{self.port}/"
        self.log = data_dir / "server.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        environment = {
            **os.environ,
            "TINGJI_DATA_DIR": str(data_dir),
            "TINGJI_MODELS_DIR": str(models_dir),
            "GRADIO_ANALYTICS_ENABLED": "False",
            "HF_HUB_OFFLINE": "1",
            "TINGJI_BEAM_SIZE": "1",  # greedy decoding keeps the browser tests quick
            **env,
        }
        command = [sys.executable, "-m", "tingji.cli", "serve", "--host", host, *args]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait()

    def _wait(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tingji serve exited:\n{self.tail()}")
            try:
                if httpx.get(self.url + "healthz", timeout=2, verify=False).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"tingji serve did not answer /healthz in {timeout:.0f} s:\n{self.tail()}"
        )

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    live = Server(tmp_path_factory.mktemp("ui-data"), model_cache)
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(driver: Any) -> Iterator[Any]:
    chromium = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def open_page(browser: Any, server: Server) -> Iterator[Any]:
    """``open_page(query="", viewport=DESKTOP)``: the UI loaded in a fresh browser context.

    Every request the page makes must stay on the loopback server (the UI works offline).
    """
    contexts: list[Any] = []
    outside: list[str] = []

    def open_(query: str = "", viewport: dict[str, int] = DESKTOP, url: str = "") -> Page:
        context = browser.new_context(viewport=viewport, locale="zh-CN", accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.on("request", lambda r: outside.append(r.url) if _outside(r.url) else None)
        page.goto((url or server.url) + query)
        page.wait_for_selector("#tj-tabs")
        expect(page.locator("#tj-lang")).to_be_visible()
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not outside, f"the page reached beyond the server: {outside}"


def _outside(url: str) -> bool:
    return not url.startswith(("http://127.0.0.1", "data:", "blob:", "about:"))


def select_tab(page: Page, name: str) -> None:
    """Click a tab by its label, through Gradio's overflow menu where the bar is too narrow."""
    tab = page.get_by_role("tab", name=name, exact=True)
    try:  # the page may still be relabelling its tabs into its language
        expect(tab.first).to_be_visible(timeout=10_000)
    except AssertionError:
        visible = False
    else:
        visible = True
    if visible:
        tab.first.click()
    else:
        page.locator("#tj-tabs .overflow-menu > button").click()
        page.locator("#tj-tabs .overflow-dropdown button", has_text=name).click()
    expect(page.get_by_role("tab", name=name, exact=True)).to_have_attribute(
        "aria-selected", "true"
    )


def shot(page: Page, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _meeting(server: Server, path: Path) -> tuple[Path, dict[str, Any]]:
    """A two-speaker meeting (A, B, A) written to ``path``, recognised with its speakers told
    apart: the file and the server's answer."""
    import numpy as np

    from tingji.audio import load

    from .conftest import A1, A2, B, write_wav

    gap = np.zeros(11200, np.float32)
    parts = [load(shared_clip(A1)), gap, load(shared_clip(B)), gap, load(shared_clip(A2))]
    write_wav(path, np.concatenate(parts))
    with path.open("rb") as audio:
        answer = httpx.post(
            server.url + "api/transcriptions",
            files={"file": (path.name, audio, "audio/wav")},
            data={"language": "zh", "diarize": "true"},
            timeout=RECOGNITION_TIMEOUT_MS / 1000,
        )
    assert answer.status_code == 200, answer.text
    return path, answer.json()


# -- the tests -------------------------------------------------------------------------------
def test_single_file_shows_the_text(open_page: Any, tmp_path: Path) -> None:
    clip = shared_clip(MANDARIN)
    page = open_page()
    page.locator("#tj-single-file input[type=file]").set_input_files(str(clip))
    expect(page.locator("#tj-single-file").get_by_role("cell", name=clip.name)).to_be_visible()
    page.get_by_label("热词", exact=True).fill("达摩院")
    page.locator("#tj-single-run").click()
    expect(page.locator("#tj-single-status .tj-ok")).to_be_visible(timeout=RECOGNITION_TIMEOUT_MS)
    expect(page.locator("#tj-single-text mark")).to_contain_text("达摩院")
    expect(page.locator("#tj-single-details")).to_contain_text("whisper")
    downloads = page.locator("#tj-single-downloads")
    for fmt in ("txt", "srt", "vtt", "json"):
        expect(downloads).to_contain_text(f".{fmt}")
    shot(page, tmp_path, "single")


PROGRESS_WORDS = {
    # language: (viewport, audio seconds done, elapsed, time left)
    "zh": (DESKTOP, r"识别中 \d+ / 136 秒", "已用", "剩余约"),
    "en": (PHONE, r"Recognising \d+ / 136 s", "elapsed", "left"),
}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_single_file_shows_real_progress(open_page: Any, tmp_path: Path, lang: str) -> None:
    """A 136 s recording: one progress bar, moving through audio seconds with the elapsed time
    and the time left, then done (Chinese on a desktop, English on a phone)."""
    viewport, done_words, elapsed_word, left_word = PROGRESS_WORDS[lang]
    clip = shared_clip("long/zh_dev_concat.wav")
    page = open_page(f"?lang={lang}", viewport=viewport)
    page.locator("#tj-single-file input[type=file]").set_input_files(str(clip))
    expect(page.locator("#tj-single-file").get_by_role("cell", name=clip.name)).to_be_visible()
    page.evaluate(
        """() => {
        window.tjSeen = [];
        const watch = () => {
          const bar = document.querySelector('#tj-single-status .tj-progress');
          const share = bar && bar.innerText.match(/(\\d+) %/);
          if (share) window.tjSeen.push([+share[1], bar.innerText]);
        };
        window.tjWatch = setInterval(watch, 100);
    }"""
    )
    page.locator("#tj-single-run").click()
    expect(page.locator("#tj-single-status")).to_contain_text(left_word, timeout=60_000)
    shot(page, tmp_path, "single-progress")
    expect(page.locator("#tj-single-status .tj-ok")).to_be_visible(timeout=RECOGNITION_TIMEOUT_MS)
    seen = page.evaluate("() => { clearInterval(window.tjWatch); return window.tjSeen; }")
    shares = [share for share, _ in seen]
    texts = [text for _, text in seen]
    assert any(0 < share < 100 for share in shares), shares
    assert shares == sorted(shares), shares  # it never goes back
    moving = [x for x in texts if re.search(done_words, x)]
    assert moving, texts
    assert any(elapsed_word in x and left_word in x for x in moving), texts
    assert "0.0%" not in " ".join(texts)
    # one bar: not Gradio's own overlay beside it
    expect(page.locator("#tj-single-text .progress-text")).to_have_count(0)
    shot(page, tmp_path, "single-progress-done")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_model_choice_tells_the_truth(
    browser: Any, tmp_path: Path, model_cache: Path, lang: str
) -> None:
    """Models here are marked ready; where downloads are allowed the others say what they
    download; one that cannot be fetched (no network) is refused once, in the page's words
    (Chinese on a desktop, English on a phone)."""
    from tingji.ui.i18n import t

    live = Server(
        tmp_path / "data", model_cache, TINGJI_ALLOW_MODEL_DOWNLOADS="true", HF_HUB_OFFLINE="1"
    )
    viewport, locale = (DESKTOP, "zh-CN") if lang == "zh" else (PHONE, "en-US")
    context = browser.new_context(viewport=viewport, locale=locale)
    try:
        page = context.new_page()
        page.goto(f"{live.url}?lang={lang}")
        page.wait_for_selector("#tj-tabs")
        expect(page.locator("#tj-tabs")).to_contain_text(t("opt.model.hint", lang)[:24])
        picker = page.get_by_label(t("opt.model", lang), exact=True).first
        ready = t("opt.model.ready", lang, name="base")
        download = t("opt.model.download", lang, name="large-v3", size="3 GB")
        expect(picker).to_have_value(ready)
        picker.click()
        expect(page.get_by_role("option", name=ready)).to_be_visible()
        expect(page.get_by_role("option", name=download)).to_be_visible()
        page.get_by_role("option", name=download).click()
        clip = shared_clip(MANDARIN)
        page.locator("#tj-single-file input[type=file]").set_input_files(str(clip))
        expect(page.locator("#tj-single-file").get_by_role("cell", name=clip.name)).to_be_visible()
        page.locator("#tj-single-run").click()
        error = page.locator("#tj-single-status .tj-error")
        refusal = t("err.model_offline", lang, name="large-v3")
        said = refusal[: refusal.index("(" if lang == "en" else "，")]
        expect(error).to_contain_text(said, timeout=60_000)
        expect(error).not_to_contain_text("--model")  # not the CLI's advice
        expect(page.locator(".toast-body")).to_have_count(0)  # said once, not in a toast too
        shot(page, tmp_path, f"model-offline-{lang}")
    finally:
        context.close()
        live.stop()


def test_single_file_tells_speakers_apart(open_page: Any, tmp_path: Path) -> None:
    import numpy as np

    from tingji.audio import load

    from .conftest import A1, A2, B, write_wav

    gap = np.zeros(11200, np.float32)
    talk = np.concatenate([load(shared_clip(c)) for c in (A1,)] + [gap, load(shared_clip(B))])
    talk = np.concatenate([talk, gap, load(shared_clip(A2))])
    path = write_wav(tmp_path / "two-people.wav", talk)
    page = open_page()
    page.locator("#tj-single-file input[type=file]").set_input_files(str(path))
    expect(page.locator("#tj-single-file").get_by_role("cell", name=path.name)).to_be_visible()
    page.get_by_label("区分说话人（谁说了什么）").check()
    page.locator("#tj-single-run").click()
    expect(page.locator("#tj-single-status .tj-ok")).to_be_visible(timeout=RECOGNITION_TIMEOUT_MS)
    text = page.locator("#tj-single-text")
    expect(text).to_contain_text("[S1]")
    expect(text).to_contain_text("[S2]")
    expect(page.locator("#tj-single-segments")).to_contain_text("[S2] ")
    downloads = page.locator("#tj-single-downloads")
    for fmt in ("srt", "csv", "rttm"):
        expect(downloads).to_contain_text(f".{fmt}")
    shot(page, tmp_path, "single-speakers")


def test_a_broken_file_gives_a_readable_error(open_page: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"this is not audio at all")
    page = open_page()
    page.locator("#tj-single-file input[type=file]").set_input_files(str(broken))
    expect(page.locator("#tj-single-file").get_by_role("cell", name=broken.name)).to_be_visible()
    page.locator("#tj-single-run").click()
    error = page.locator("#tj-single-status .tj-error")
    expect(error).to_contain_text("broken.wav:")
    expect(error).not_to_contain_text("Traceback")
    shot(page, tmp_path, "broken")


def test_hotword_list_is_offered_in_the_recognition_tabs(open_page: Any, tmp_path: Path) -> None:
    page = open_page()
    select_tab(page, "热词")
    page.locator("#tj-hw-name").get_by_role("textbox").fill("会议术语")
    page.locator("#tj-hw-terms").get_by_role("textbox").fill("达摩院\n语音识别")
    page.locator("#tj-hw-save").click()
    expect(page.locator("#tj-hw-status .tj-ok")).to_contain_text("会议术语")
    shot(page, tmp_path, "hotwords")
    select_tab(page, "单文件识别")
    page.get_by_label("热词表").first.click()
    expect(page.get_by_role("option", name="会议术语")).to_be_visible()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_delete_asks_and_exports_take_one_click(
    open_page: Any, server: Server, tmp_path: Path, lang: str
) -> None:
    """Chinese on a desktop, English on a phone."""
    from tingji.ui.i18n import t

    page = open_page(f"?lang={lang}", viewport=DESKTOP if lang == "zh" else PHONE)
    name, voice = ("临时表", "临时声纹") if lang == "zh" else ("Scratch list", "Scratch voice")
    select_tab(page, t("tab.hotwords", lang))
    expect(page.locator("#tj-hw-hint")).to_contain_text(t("hw.hint", lang)[:12])
    page.locator("#tj-hw-name").get_by_role("textbox").fill(name)
    page.locator("#tj-hw-terms").get_by_role("textbox").fill("达摩院")
    page.locator("#tj-hw-save").click()
    expect(page.locator("#tj-hw-status .tj-ok")).to_contain_text(
        t("hw.saved", lang, name=name, count=1)
    )
    # deleting a hotword list asks first; "keep it" keeps it
    page.locator("#tj-hw-del").click()
    expect(page.locator("#tj-hw-confirm")).to_be_visible()
    expect(page.locator("#tj-hw-confirm")).to_contain_text(t("hw.confirm", lang, name=name))
    page.locator("#tj-hw-confirm-no").click()
    expect(page.locator("#tj-hw-confirm")).to_be_hidden()
    page.locator("#tj-hw-del").click()
    page.locator("#tj-hw-confirm-yes").click()
    expect(page.locator("#tj-hw-status .tj-ok")).to_contain_text(t("hw.deleted", lang, name=name))
    expect(page.locator("#tj-hw-confirm")).to_be_hidden()
    # the history's CSV downloads on the first click
    select_tab(page, t("tab.history", lang))
    with page.expect_download(timeout=20_000) as waiting:
        page.locator("#tj-hist-export").click()
    assert waiting.value.suggested_filename == "tingji-history.csv"
    assert waiting.value.path().read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    # a voice profile's delete asks too; the clip's player has no share button
    page.locator("#tj-voices").get_by_text(t("voice.title", lang)).click()
    page.locator("#tj-voices-clip input[type=file]").set_input_files(str(shared_clip(MANDARIN)))
    clip_box = page.locator("#tj-voices-clip")
    expect(clip_box.get_by_role("button", name=re.compile("download|下载", re.I))).to_be_visible()
    expect(clip_box.get_by_role("button", name=re.compile("share|分享", re.I))).to_have_count(0)
    page.locator("#tj-voices-name").get_by_role("textbox").fill(voice)
    page.locator("#tj-voices-add").click()
    expect(page.locator("#tj-voices-status .tj-ok")).to_contain_text(voice)
    page.locator("#tj-voices-del").click()
    expect(page.locator("#tj-voices-confirm")).to_contain_text(t("voice.confirm", lang, name=voice))
    page.locator("#tj-voices-confirm-yes").click()
    expect(page.locator("#tj-voices-status .tj-ok")).to_contain_text(
        t("voice.deleted", lang, name=voice)
    )
    assert httpx.get(server.url + "api/voices", timeout=10).json() == []
    shot(page, tmp_path, f"consistency-{lang}")


def test_batch_of_three_reaches_100_percent(open_page: Any, tmp_path: Path) -> None:
    clips = [shared_clip(c) for c in BATCH]
    page = open_page()
    select_tab(page, "批量处理")
    page.locator("#tj-batch-files input[type=file]").set_input_files([str(c) for c in clips])
    for clip in clips:
        expect(page.locator("#tj-batch-files").get_by_role("cell", name=clip.name)).to_be_visible()
    page.locator("#tj-batch-run").click()
    progress = page.locator("#tj-batch-progress .tj-progress")
    expect(progress).to_have_attribute("data-percent", "100", timeout=RECOGNITION_TIMEOUT_MS)
    expect(page.locator("#tj-batch-progress")).to_contain_text("3 / 3")
    expect(page.locator("#tj-batch-table")).to_contain_text("完成")
    shot(page, tmp_path, "batch")
    with page.expect_download() as download:
        page.locator("#tj-batch-csv").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert {r["file"] for r in rows} == {c.name for c in clips}
    assert {r["status"] for r in rows} == {"done"}
    assert any(r["text"] for r in rows)


def test_a_batch_job_is_deleted_only_when_confirmed(
    open_page: Any, server: Server, tmp_path: Path
) -> None:
    clip = shared_clip(BATCH[0])
    page = open_page()
    select_tab(page, "批量处理")
    page.locator("#tj-batch-files input[type=file]").set_input_files([str(clip)])
    page.locator("#tj-batch-run").click()
    progress = page.locator("#tj-batch-progress .tj-progress")
    expect(progress).to_have_attribute("data-percent", "100", timeout=RECOGNITION_TIMEOUT_MS)
    job = httpx.get(server.url + "api/jobs", timeout=30).json()[0]
    confirm = page.locator("#tj-batch-confirm")
    page.locator("#tj-batch-delete").click()
    expect(confirm).to_contain_text("删除这个批量任务")
    page.locator("#tj-batch-confirm-no").click()
    expect(confirm).to_be_hidden()
    assert httpx.get(server.url + f"api/jobs/{job['id']}", timeout=30).status_code == 200
    page.locator("#tj-batch-delete").click()
    page.locator("#tj-batch-confirm-yes").click()
    expect(page.locator("#tj-batch-status")).to_contain_text("任务已删除")
    expect(confirm).to_be_hidden()
    assert httpx.get(server.url + f"api/jobs/{job['id']}", timeout=30).status_code == 404


def test_history_find_and_delete(open_page: Any, server: Server, tmp_path: Path) -> None:
    found = httpx.get(server.url + "api/history", params={"q": "达摩院"}, timeout=10).json()
    if not found["total"]:  # run on its own: make the entry through the API first
        clip = shared_clip(MANDARIN)
        with clip.open("rb") as audio:
            answer = httpx.post(
                server.url + "api/transcriptions",
                files={"file": (clip.name, audio, "audio/wav")},
                timeout=RECOGNITION_TIMEOUT_MS / 1000,
            )
        assert answer.status_code == 200, answer.text
    # other tests' recordings may say 达摩 too (how another CPU family hears the long file)
    before = httpx.get(server.url + "api/history", params={"q": "达摩"}, timeout=10).json()
    page = open_page()
    select_tab(page, "识别历史")
    page.locator("#tj-hist-query").get_by_role("textbox").fill("达摩")
    page.locator("#tj-hist-search").click()
    table = page.locator("#tj-hist-table")
    expect(table).to_contain_text("asr_example_zh.wav")
    table.get_by_role("gridcell", name="asr_example_zh.wav").first.click()
    expect(page.locator("#tj-hist-entry")).to_contain_text("asr_example_zh.wav")
    expect(page.locator("#tj-hist-delete")).to_be_enabled()
    page.locator("#tj-hist-delete").click()
    expect(page.locator("#tj-hist-confirm")).to_be_visible()
    shot(page, tmp_path, "history-confirm")
    page.locator("#tj-hist-confirm-yes").click()
    expect(page.locator("#tj-hist-status .tj-ok")).to_contain_text("asr_example_zh.wav")
    expect(page.locator("#tj-hist-pager")).to_contain_text(f"共 {before['total'] - 1} 条")
    expect(table).not_to_contain_text("asr_example_zh.wav")
    shot(page, tmp_path, "history-deleted")
    left = httpx.get(server.url + "api/history", params={"q": "达摩"}, timeout=10).json()
    assert left["total"] == before["total"] - 1
    assert "asr_example_zh.wav" not in [item["name"] for item in left["items"]]


def test_history_renames_a_speaker_and_exports_minutes(
    open_page: Any, server: Server, tmp_path: Path
) -> None:
    import docx

    path, body = _meeting(server, tmp_path / "例会.wav")
    first = body["segments"][0]["speaker"]
    page = open_page()
    select_tab(page, "识别历史")
    page.locator("#tj-hist-query").get_by_role("textbox").fill("例会")
    page.locator("#tj-hist-search").click()
    table = page.locator("#tj-hist-table")
    table.get_by_role("gridcell", name=path.name).first.click()
    expect(page.locator("#tj-hist-transcript .tj-seg-spk").first).to_have_text(first)
    page.get_by_text("说话人改名").click()
    # the first speaker is chosen already
    expect(page.locator("#tj-hist-speaker input")).to_have_value(first)
    page.locator("#tj-hist-speaker-name").get_by_role("textbox").fill("王经理")
    page.locator("#tj-hist-rename").click()
    expect(page.locator("#tj-hist-status .tj-ok")).to_contain_text("王经理")
    expect(page.locator("#tj-hist-transcript .tj-seg-spk").first).to_have_text("王经理")
    downloads = page.locator("#tj-hist-downloads")
    expect(downloads).to_contain_text(".docx")
    shot(page, tmp_path, "history-speakers")
    with page.expect_download() as waiting:
        downloads.locator('a[href$=".docx"]').first.click()
    document = docx.Document(waiting.value.path())
    texts = [p.text for p in document.paragraphs]
    assert texts[0] == "例会"
    assert any(t.startswith("[00:00:00] 王经理：") for t in texts), texts
    found = httpx.get(server.url + "api/history", params={"q": "王经理"}, timeout=10).json()
    assert found["total"] >= 1
    # the renamed speaker's voice, kept for later recordings
    page.locator("#tj-hist-speaker-name").get_by_role("textbox").fill("王经理")
    page.locator("#tj-hist-enrol").click()
    expect(page.locator("#tj-hist-status .tj-ok")).to_contain_text("已保存声纹：王经理")
    voices = httpx.get(server.url + "api/voices", timeout=10).json()
    assert [v["name"] for v in voices] == ["王经理"]
    assert httpx.delete(server.url + "api/voices/王经理", timeout=10).status_code == 200


def test_history_transcript_plays_marks_and_corrects(
    open_page: Any, server: Server, tmp_path: Path
) -> None:
    """The transcript view: a click plays from that segment (highlighted while it plays), a
    speaker's sample plays and stops, search hits are marked, a correction (text and speaker)
    is saved beside the recognition, searched, and in the docx; it can be put back."""
    import docx

    path, body = _meeting(server, tmp_path / "周例会.wav")
    entry_id, recognised = body["id"], body["segments"]
    assert len(recognised) >= 3
    word = re.sub(r"[^\u4e00-\u9fff]", "", recognised[-1]["text"])[:3]  # a word said last
    page = open_page()
    select_tab(page, "识别历史")
    page.locator("#tj-hist-query").get_by_role("textbox").fill(word)
    page.locator("#tj-hist-search").click()
    page.locator("#tj-hist-table").get_by_role("gridcell", name=path.name).first.click()
    view = page.locator("#tj-hist-transcript")
    segments = view.locator(".tj-seg")
    expect(segments).to_have_count(len(recognised))
    expect(segments.last.locator("mark")).to_have_text(word)  # the search hit, marked
    audio = page.locator("#tj-hist-audio")
    expect(audio).to_have_count(1)
    page.wait_for_function(
        "() => document.getElementById('tj-hist-audio').readyState >= 1", timeout=30_000
    )
    # click a segment: the recording plays from its start, and it is the highlighted one
    target = segments.nth(1)
    start = float(target.get_attribute("data-start") or "0")
    page.evaluate("() => { document.getElementById('tj-hist-audio').muted = true; }")
    target.locator(".tj-seg-text").click()
    page.wait_for_function(
        "() => { const a = document.getElementById('tj-hist-audio');"
        " return !a.paused && a.currentTime > 0; }",
        timeout=15_000,
    )
    at = audio.evaluate("a => a.currentTime")
    assert start - 0.05 <= at < start + 1.5, (start, at)
    expect(target).to_have_class(re.compile(r"\btj-playing\b"), timeout=10_000)
    expect(view.locator(".tj-playing")).to_have_count(1)
    # a speaker's sample plays their longest stretch (up to 8 s) and stops at its end
    sample = view.locator(".tj-sample").first
    sample_end = float(sample.get_attribute("data-end") or "0")
    sample.click()
    page.wait_for_function("() => document.getElementById('tj-hist-audio').paused", timeout=20_000)
    stopped = audio.evaluate("a => a.currentTime")
    assert sample_end - 0.1 <= stopped <= sample_end + 0.6, (sample_end, stopped)
    # correct the first segment: its text and who says it
    first = segments.first
    first.locator(".tj-seg-edit").click()
    editor = first.locator(".tj-seg-editor")
    editor.locator("textarea").fill("")
    editor.locator(".tj-edit-save").click()
    expect(editor.locator(".tj-edit-error")).to_have_text("文字不能为空。")
    editor.locator("input").fill("王经理")  # (its list of speakers closes when focus leaves)
    editor.locator("textarea").fill("会议现在开始，先说预算")
    shot(page, tmp_path, "transcript-editing")
    editor.locator(".tj-edit-save").click()
    expect(first.locator(".tj-seg-text")).to_have_text("会议现在开始，先说预算")
    expect(first.locator(".tj-seg-spk")).to_have_text("王经理")
    expect(first.locator(".tj-seg-orig")).to_contain_text(recognised[0]["text"])
    expect(first.locator(".tj-badge")).to_have_text("已修改")
    expect(segments.nth(1).locator(".tj-seg-orig")).to_have_count(0)
    shot(page, tmp_path, "transcript-corrected")
    saved = httpx.get(server.url + f"api/history/{entry_id}", timeout=10).json()
    assert saved["segments"][0]["text"] == "会议现在开始，先说预算"
    assert saved["segments"][0]["speaker"] == "王经理"
    assert saved["segments"][1:] == recognised[1:]
    assert saved["original_segments"] == recognised
    found = httpx.get(server.url + "api/history", params={"q": "先说预算"}, timeout=10).json()
    assert [item["id"] for item in found["items"]] == [entry_id]
    # the downloads follow the correction
    downloads = page.locator("#tj-hist-downloads")
    with page.expect_download() as waiting:
        downloads.locator('a[href$=".docx"]').first.click()
    texts = [p.text for p in docx.Document(waiting.value.path()).paragraphs]
    assert any(t.startswith("[00:00:00] 王经理：会议现在开始，先说预算") for t in texts), texts
    # put it back
    first.locator(".tj-seg-revert").click()
    expect(first.locator(".tj-seg-text")).to_have_text(recognised[0]["text"])
    expect(first.locator(".tj-seg-orig")).to_have_count(0)
    back = httpx.get(server.url + f"api/history/{entry_id}", timeout=10).json()
    assert back["segments"] == recognised and back["original_segments"] is None


def test_voice_profiles_are_enrolled_from_a_clip_used_and_deleted(
    open_page: Any, server: Server, tmp_path: Path
) -> None:
    from .conftest import A2

    page = open_page()
    select_tab(page, "识别历史")
    page.locator("#tj-voices").get_by_text("声纹库").click()
    page.locator("#tj-voices-clip input[type=file]").set_input_files(str(shared_clip(A2)))
    page.locator("#tj-voices-add").click()
    expect(page.locator("#tj-voices-status .tj-error")).to_have_text("请填写名字。")
    page.locator("#tj-voices-name").get_by_role("textbox").fill("张老师")
    page.locator("#tj-voices-add").click()
    expect(page.locator("#tj-voices-status .tj-ok")).to_have_text("已保存声纹：张老师")
    expect(page.locator("#tj-voices-table")).to_contain_text("张老师")
    voices = httpx.get(server.url + "api/voices", timeout=10).json()
    assert [v["name"] for v in voices] == ["张老师"]
    # another recording of that speaker (A, then B) is labelled with the name; B stays S…
    _, body = _meeting(server, tmp_path / "声纹.wav")
    said = [s["speaker"] for s in body["segments"]]
    assert said[0] == "张老师", said
    assert any(name.startswith("S") for name in said), said
    shot(page, tmp_path, "voices")
    expect(page.locator("#tj-voices-pick input")).to_have_value("张老师")
    page.locator("#tj-voices-del").click()
    page.locator("#tj-voices-confirm-yes").click()
    expect(page.locator("#tj-voices-status .tj-ok")).to_have_text("已删除声纹：张老师")
    expect(page.locator("#tj-voices-table")).not_to_contain_text("张老师")
    assert httpx.get(server.url + "api/voices", timeout=10).json() == []


def test_api_docs_work_offline(browser: Any, server: Server, tmp_path: Path) -> None:
    """/docs draws the API from files the server has: nothing comes from a CDN."""
    context = browser.new_context(viewport=DESKTOP)
    outside: list[str] = []
    try:
        page = context.new_page()
        page.on("request", lambda r: outside.append(r.url) if _outside(r.url) else None)
        page.goto(server.url + "docs")
        expect(
            page.locator(".opblock-summary-path", has_text="/api/transcriptions").first
        ).to_be_visible(timeout=30_000)
        expect(page.locator(".opblock").first).to_be_visible()
        shot(page, tmp_path, "docs")
    finally:
        context.close()
    assert not outside, outside


def test_the_language_is_kept_and_every_text_follows_it(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    """Gradio's own texts follow the page's language, not the browser's locale; texts drawn
    once follow a switch; the choice survives a reload and a new visit."""
    for locale in ("en-US", "zh-CN"):
        context = browser.new_context(viewport=DESKTOP, locale=locale)
        try:
            page = context.new_page()
            page.goto(server.url)
            page.wait_for_selector("#tj-tabs")
            drop = page.locator("#tj-single-file")
            expect(page.get_by_role("tab").first).to_have_text(TABS_ZH[0])
            expect(drop).to_contain_text("拖放")
            expect(drop).not_to_contain_text("Drop File Here")
            page.locator("#tj-lang").get_by_text("English").click()
            expect(page.get_by_role("tab")).to_have_text(TABS_EN)
            select_tab(page, "Batch")
            expect(page.locator("#tj-batch-progress")).to_contain_text("Not started.")
            select_tab(page, "Live")
            expect(page.locator("#tj-live-out")).to_contain_text("Press Start")
            assert page.url.endswith("?lang=en")
            page.reload()
            page.wait_for_selector("#tj-tabs")
            expect(page.get_by_role("tab")).to_have_text(TABS_EN)
            expect(drop).to_contain_text("Drop File Here")
            shot(page, tmp_path, f"kept-english-{locale}")
            again = context.new_page()  # a new visit, no ?lang=: the saved choice
            again.goto(server.url)
            again.wait_for_selector("#tj-tabs")
            expect(again.get_by_role("tab")).to_have_text(TABS_EN)
            assert again.url.endswith("?lang=en")
            expect(again.locator("#tj-single-file")).to_contain_text("Drop File Here")
            again.locator("#tj-lang").get_by_text("中文").click()
            expect(again.get_by_role("tab")).to_have_text(TABS_ZH)
            select_tab(again, "实时录音")
            expect(again.locator("#tj-live-out")).to_contain_text("点击“开始”")
            select_tab(again, "批量处理")
            expect(again.locator("#tj-batch-progress")).to_contain_text("尚未开始。")
            again.reload()
            again.wait_for_selector("#tj-tabs")
            expect(again.get_by_role("tab").first).to_have_text(TABS_ZH[0])
            expect(again.locator("#tj-single-file")).to_contain_text("拖放")
            select_tab(again, "系统")
            expect(again.locator("body")).not_to_contain_text("no CUDA GPU found")
        finally:
            context.close()


def test_english_by_switch_and_by_query(open_page: Any, tmp_path: Path) -> None:
    page = open_page()
    tabs = page.get_by_role("tab")
    expect(tabs.first).to_have_text(TABS_ZH[0])
    page.locator("#tj-lang").get_by_text("English").click()
    expect(tabs.first).to_have_text(TABS_EN[0])
    expect(page.locator("#tj-single-run")).to_have_text("Transcribe")
    shot(page, tmp_path, "english-switch")

    page = open_page("?lang=en")
    expect(page.get_by_role("tab")).to_have_text(TABS_EN)
    expect(page.locator("#tj-lang input[value=en]")).to_be_checked()
    select_tab(page, "History")
    expect(page.locator("#tj-hist-search")).to_have_text("Search")
    shot(page, tmp_path, "english-query")


def test_a_switch_relabels_gradios_own_texts_at_once(open_page: Any, tmp_path: Path) -> None:
    """Gradio's own texts (the upload area, the recorder's button, the clear button) change
    language with the switch, without a reload and with the page kept as it is (a file
    uploaded stays); what Gradio draws after a switch is in the new language too."""
    from tingji.ui.i18n import t

    page = open_page("?lang=zh")
    page.evaluate("window.tjNotReloaded = true")
    single = page.locator("#tj-single-file")
    recorder = page.locator(".tj-mic-recorder")
    page.get_by_text(t("single.record", "zh"), exact=True).click()
    expect(single).to_contain_text("将文件拖放到此处")
    expect(single).to_contain_text("点击上传")
    expect(recorder.get_by_role("button", name="录制", exact=True)).to_be_visible()

    page.locator("#tj-lang").get_by_text("English").click()
    expect(page.get_by_role("tab").first).to_have_text(TABS_EN[0])
    expect(single).to_contain_text("Drop File Here")
    expect(single).to_contain_text("- or -")
    expect(single).to_contain_text("Click to Upload")
    expect(single).not_to_contain_text("拖放")
    expect(recorder.get_by_role("button", name="Record", exact=True)).to_be_visible()
    shot(page, tmp_path, "switched-to-english")

    clip = shared_clip(MANDARIN)
    single.locator("input[type=file]").set_input_files(clip)
    uploaded = single.get_by_role("cell", name=clip.name, exact=True)
    expect(uploaded).to_be_visible()
    expect(single.get_by_role("button", name="Clear", exact=True)).to_be_visible()
    page.locator("#tj-lang").get_by_text("中文").click()
    expect(page.get_by_role("tab").first).to_have_text(TABS_ZH[0])
    expect(single.get_by_role("button", name="清除", exact=True)).to_be_visible()
    expect(uploaded).to_be_visible()  # the file is kept
    expect(recorder.get_by_role("button", name="录制", exact=True)).to_be_visible()
    expect(recorder).not_to_contain_text("Record")

    single.get_by_role("button", name="清除", exact=True).click()  # Gradio draws it anew
    expect(single).to_contain_text("将文件拖放到此处")
    page.locator("#tj-lang").get_by_text("English").click()
    expect(single).to_contain_text("Drop File Here")
    expect(single).not_to_contain_text("拖放")
    shot(page, tmp_path, "switched-back-and-forth")
    assert page.evaluate("window.tjNotReloaded") is True, "the switch reloaded the page"
    assert page.url.endswith("?lang=en")


def test_without_gradios_i18n_module_a_switch_reloads_only_a_page_with_nothing_to_lose(
    browser: Any, server: Server
) -> None:
    """Should a Gradio build lack the module lang.js changes Gradio's language with, a switch
    reloads the page in the new language while it holds nothing of the user's; once it does
    (a file uploaded), Gradio's texts wait for the next load and the file stays."""

    def without_the_module(route: Any) -> None:
        page = route.fetch()
        text = page.text()
        told = re.sub(r'const GRADIO_I18N = "[^"]*";', "const GRADIO_I18N = null;", text)
        assert told != text, "lang.js names no Gradio i18n module"
        route.fulfill(response=page, body=told)

    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    try:
        context.route(lambda url: url.startswith(server.url + "?"), without_the_module)
        page = context.new_page()
        page.goto(server.url + "?lang=zh")
        page.wait_for_selector("#tj-tabs")
        single = page.locator("#tj-single-file")
        expect(single).to_contain_text("将文件拖放到此处")
        page.evaluate("window.tjNotReloaded = true")
        page.locator("#tj-lang").get_by_text("English").click()
        expect(single).to_contain_text("Drop File Here")
        expect(page.get_by_role("tab").first).to_have_text(TABS_EN[0])
        assert page.evaluate("window.tjNotReloaded") is None, "an empty page was not reloaded"
        assert page.url.endswith("?lang=en")

        page.evaluate("window.tjNotReloaded = true")
        clip = shared_clip(MANDARIN)
        single.locator("input[type=file]").set_input_files(clip)
        uploaded = single.get_by_role("cell", name=clip.name, exact=True)
        expect(uploaded).to_be_visible()
        page.locator("#tj-lang").get_by_text("中文").click()
        expect(page.get_by_role("tab").first).to_have_text(TABS_ZH[0])
        page.wait_for_timeout(1000)  # (a reload would have begun)
        expect(uploaded).to_be_visible()
        assert page.evaluate("window.tjNotReloaded") is True, "the file was lost to a reload"
        page.reload()
        page.wait_for_selector("#tj-tabs")
        expect(single).to_contain_text("将文件拖放到此处")
    finally:
        context.close()


def test_release_memory_shows_before_and_after(open_page: Any, tmp_path: Path) -> None:
    page = open_page()
    select_tab(page, "系统")
    expect(page.locator("#tj-sys-info")).to_contain_text("CPU")
    page.locator("#tj-sys-release").click()
    released = page.locator("#tj-sys-released")
    expect(released).to_contain_text("释放前")
    expect(released).to_contain_text("释放后")
    expect(released).to_contain_text("MB")
    shot(page, tmp_path, "system-released")


MAIN_ACTIONS = [
    "tj-single-run",
    "tj-batch-run",
    "tj-live-start",
    "tj-hist-search",
    "tj-hw-save",
    "tj-sys-refresh",
]
"""Each tab's main button, in the order of the tabs."""


def test_every_tab_fits_desktop_and_phone(open_page: Any, tmp_path: Path) -> None:
    """Screenshots of each tab at 1366×768 and 390×844, in both languages: nothing wider than
    the screen, every tab on the bar (none in an overflow menu), each tab's main button on
    the first screen, and table headers never cut between the characters of a word."""
    for lang, tabs in (("zh", TABS_ZH), ("en", TABS_EN)):
        for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page = open_page(f"?lang={lang}", viewport=viewport)
            bar = page.locator("#tj-tabs [role=tablist] button[role=tab]")
            expect(bar).to_have_text(tabs)
            for number, (tab, action) in enumerate(zip(tabs, MAIN_ACTIONS, strict=True)):
                select_tab(page, tab)
                page.wait_for_timeout(300)
                overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
                shot(page, tmp_path, f"{lang}-{label}-{number}")
                assert overflow <= 0, f"{tab} is {overflow}px wider than the {label} screen"
                box = page.locator(f"#{action}").bounding_box()
                assert box and box["y"] + box["height"] <= viewport["height"], (tab, label, box)
                for header in page.locator("th:visible").all():
                    text = header.inner_text().strip()
                    if len(text) >= 2 and not any(c.isspace() for c in text):  # one word
                        lines = header.evaluate(
                            "h => { const w = document.createTreeWalker(h, NodeFilter.SHOW_TEXT);"
                            " let most = 0; while (w.nextNode()) { const t = w.currentNode;"
                            " if (t.textContent.trim().length < 2) continue;"
                            " const r = document.createRange(); r.selectNodeContents(t);"
                            " const tops = new Set([...r.getClientRects()]"
                            ".map(x => Math.round(x.top)));"
                            " most = Math.max(most, tops.size); } return most; }"
                        )
                        assert lines <= 1, (tab, label, text, lines)


def test_login_when_a_ui_password_is_set(browser: Any, tmp_path: Path, model_cache: Path) -> None:
    guarded = Server(tmp_path / "data", model_cache, TINGJI_UI_PASSWORD="s3cret-pass")
    try:
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.goto(guarded.url)
        password = page.locator("input[type=password]")
        expect(password).to_be_visible(timeout=30_000)
        expect(page.locator("#tj-tabs")).to_have_count(0)
        shot(page, tmp_path, "login")
        page.locator("input[type=text]").first.fill("admin")
        password.fill("wrong")
        password.press("Enter")
        # wait for the refusal to arrive before trying again, or the two answers race
        # in the page's language (Chinese by default), whatever the browser's locale
        expect(page.get_by_text("凭据不正确")).to_be_visible(timeout=30_000)
        expect(page.locator("#tj-tabs")).to_have_count(0)
        page.locator("input[type=text]").first.fill("admin")
        password.fill("s3cret-pass")
        password.press("Enter")
        expect(page.locator("#tj-tabs")).to_be_visible(timeout=30_000)
        shot(page, tmp_path, "logged-in")
        context.close()
    finally:
        guarded.stop()


LIVE_CLIP = "zh/mossttsd/zh_spk2_moon.wav"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_live_tab_streams_the_microphone(
    driver: Any, tmp_path: Path, model_cache: Path, lang: str
) -> None:
    """Chromium's fake microphone plays a shared clip; partial text appears while it plays,
    then a final sentence with its times, and Stop saves the session to history. The server
    has an API key, so the page's socket gets in with the ticket the signed-in page was given.
    A Chinese browser on a desktop, an English one on a phone.
    """
    from tingji.ui.i18n import t

    viewport, locale = (DESKTOP, "zh-CN") if lang == "zh" else (PHONE, "en-US")
    live_name = t("live.name", lang, time="")
    clip = shared_clip(LIVE_CLIP)
    key = "live-key-123"
    guarded = Server(tmp_path / "data", model_cache, TINGJI_API_KEYS=f'["{key}"]')
    fake_mic = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={clip}",
    ]
    try:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS + fake_mic
        )
        try:
            page = browser.new_context(viewport=viewport, locale=locale).new_page()
            page.set_default_timeout(30_000)
            page.goto(guarded.url)
            page.locator("input[type=text]").first.fill("admin")
            page.locator("input[type=password]").fill(key)
            page.locator("input[type=password]").press("Enter")
            page.wait_for_selector("#tj-tabs")
            page.goto(f"{guarded.url}?lang={lang}")
            page.wait_for_selector("#tj-tabs")
            select_tab(page, t("tab.live", lang))
            expect(page.locator("#tj-live-out")).to_contain_text(t("live.start", lang))
            page.locator("#tj-live-start").click()
            out = page.locator("#tj-live-out")
            expect(out.locator(".tj-live-note")).to_have_attribute("data-state", "listening")
            expect(out.locator(".tj-partial")).not_to_be_empty(timeout=RECOGNITION_TIMEOUT_MS)
            shot(page, tmp_path, f"live-partial-{lang}")
            expect(out.locator(".tj-final").first).to_be_visible(timeout=RECOGNITION_TIMEOUT_MS)
            first = out.locator(".tj-final").first.inner_text()
            assert "直播" in first, first
            assert re.match(r"\d\d:\d\d–\d\d:\d\d ", first), first
            page.locator("#tj-live-stop").click()
            expect(out.locator(".tj-live-note")).to_have_attribute(
                "data-state", "done", timeout=RECOGNITION_TIMEOUT_MS
            )
            expect(out.locator(".tj-live-note")).to_contain_text(t("live.saved", lang))
            shot(page, tmp_path, f"live-stopped-{lang}")
            # the History tab plays what the microphone heard
            select_tab(page, t("tab.history", lang))
            page.locator("#tj-hist-search").click()
            page.locator("#tj-hist-table").get_by_role(
                "gridcell", name=re.compile("^" + re.escape(live_name))
            ).first.click()
            expect(page.locator("#tj-hist-player")).not_to_contain_text(t("hist.no_audio", lang))
            page.wait_for_function(
                "() => { const a = document.getElementById('tj-hist-audio');"
                " return a && a.readyState >= 1 && a.duration > 1; }",
                timeout=30_000,
            )
            shot(page, tmp_path, f"live-in-history-{lang}")
        finally:
            browser.close()
        history = httpx.get(
            guarded.url + "api/history", headers={"X-API-Key": key}, timeout=30
        ).json()
        names = [item["name"] for item in history["items"]]
        assert any(name.startswith(live_name) for name in names), names
    finally:
        guarded.stop()
