"""The microphone beyond localhost, in a real browser: over https it streams, over plain http
the page says why it cannot.

Chromium resolves ``tingji.test`` to 127.0.0.1 (``--host-resolver-rules``), so the page has an
origin that is not localhost while every packet stays on loopback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import shared_clip
from .test_ui import (
    BROWSER_ARGS,
    CHROMIUM,
    DESKTOP,
    LIVE_CLIP,
    RECOGNITION_TIMEOUT_MS,
    Server,
    expect,
    playwright_api,
    select_tab,
    shot,
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install -y chromium fonts-noto-cjk)",
)
NAME = "tingji.test"
RESOLVE = f"--host-resolver-rules=MAP {NAME} 127.0.0.1"
INSECURE_ZH = "浏览器只允许 https 或 localhost 页面使用麦克风"
INSECURE_EN = "browsers allow it only on https or localhost pages"


@pytest.fixture(scope="module")
def driver() -> Any:
    with playwright_api.sync_playwright() as playwright:
        yield playwright


def _watch(page: Any) -> list[str]:
    """Uncaught script errors and console errors of ``page``, as they happen."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def test_live_tab_over_https_on_the_lan(driver: Any, tmp_path: Path, model_cache: Path) -> None:
    """``tingji serve --https --host 0.0.0.0``: a made certificate, and an access token that the
    browser brings once as ``?token=``. Opened as https://tingji.test (not localhost), the
    fake microphone streams and the clip's text comes back, then the session is in history."""
    clip = shared_clip(LIVE_CLIP)
    server = Server(tmp_path / "data", model_cache, "--https", host="0.0.0.0")
    token = (server.data_dir / "access-token").read_text().strip()
    certfile = server.data_dir / "tls" / "cert.pem"
    fake_mic = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={clip}",
    ]
    try:
        assert f"https://127.0.0.1:{server.port}/?token={token}" in server.tail(80)
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*BROWSER_ARGS, RESOLVE, *fake_mic]
        )
        try:
            context = browser.new_context(viewport=DESKTOP, ignore_https_errors=True)
            page = context.new_page()
            page.set_default_timeout(30_000)
            errors = _watch(page)
            page.goto(f"https://{NAME}:{server.port}/?token={token}")
            page.wait_for_selector("#tj-tabs")
            assert page.url == f"https://{NAME}:{server.port}/"  # the token left the address
            assert page.evaluate("window.isSecureContext") is True
            select_tab(page, "实时录音")
            expect(page.locator(".block.tj-no-mic-only").first).to_be_hidden()
            page.locator("#tj-live-start").click()
            out = page.locator("#tj-live-out")
            expect(out.locator(".tj-live-note")).to_have_attribute("data-state", "listening")
            expect(out.locator(".tj-final").first).to_be_visible(timeout=RECOGNITION_TIMEOUT_MS)
            first = out.locator(".tj-final").first.inner_text()
            assert "直播" in first, first
            page.locator("#tj-live-stop").click()
            expect(out.locator(".tj-live-note")).to_have_attribute(
                "data-state", "done", timeout=RECOGNITION_TIMEOUT_MS
            )
            shot(page, tmp_path, "live-https")
            assert not [e for e in errors if "getUserMedia" in e], errors
        finally:
            browser.close()
        history = httpx.get(
            server.url + "api/history",
            headers={"Authorization": f"Bearer {token}"},
            verify=_trusting(certfile),
            timeout=30,
        ).json()
        names = [item["name"] for item in history["items"]]
        assert any(name.startswith("实时录音") for name in names), names
    finally:
        server.stop()


def test_plain_http_beyond_localhost_explains_the_microphone(
    driver: Any, tmp_path: Path, model_cache: Path
) -> None:
    """http://tingji.test: browsers hide the microphone; the Live tab and the recorder say why
    and what to do, in the page's language, instead of a script error."""
    server = Server(tmp_path / "data", model_cache)
    try:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*BROWSER_ARGS, RESOLVE]
        )
        try:
            page = browser.new_context(viewport=DESKTOP).new_page()
            page.set_default_timeout(30_000)
            errors = _watch(page)
            page.goto(f"http://{NAME}:{server.port}/")
            page.wait_for_selector("#tj-tabs")
            assert page.evaluate("window.isSecureContext") is False
            assert page.evaluate("navigator.mediaDevices === undefined") is True

            select_tab(page, "实时录音")
            live = page.locator("#tj-tabs [role=tabpanel]:visible")
            expect(live.locator(".block.tj-no-mic-only")).to_be_visible()
            expect(live.locator(".block.tj-no-mic-only")).to_contain_text(INSECURE_ZH)
            page.locator("#tj-live-start").click()
            note = page.locator("#tj-live-out .tj-live-note")
            expect(note).to_have_attribute("data-state", "error")
            expect(note).to_contain_text(INSECURE_ZH)
            expect(note).to_contain_text("tingji serve --https")
            assert "getUserMedia" not in note.inner_text()
            assert "undefined" not in note.inner_text()
            shot(page, tmp_path, "live-http")

            select_tab(page, "单文件识别")
            page.get_by_text("或者录一段").click()
            single = page.locator("#tj-tabs [role=tabpanel]:visible")
            expect(single.locator(".block.tj-no-mic-only")).to_be_visible()
            expect(single.locator(".block.tj-no-mic-only")).to_contain_text(INSECURE_ZH)
            expect(single.locator(".block.tj-mic-recorder")).to_be_hidden()
            shot(page, tmp_path, "single-http")

            page.goto(f"http://{NAME}:{server.port}/?lang=en")
            expect(page.get_by_role("tab", name="Live", exact=True)).to_be_visible()
            select_tab(page, "Live")
            expect(
                page.locator("#tj-tabs [role=tabpanel]:visible .block.tj-no-mic-only")
            ).to_contain_text(INSECURE_EN)
            page.locator("#tj-live-start").click()
            expect(page.locator("#tj-live-out .tj-live-note")).to_contain_text(INSECURE_EN)
            assert not [e for e in errors if "getUserMedia" in e or "mediaDevices" in e], errors
        finally:
            browser.close()
    finally:
        server.stop()


def _trusting(certfile: Path) -> Any:
    import ssl

    return ssl.create_default_context(cafile=str(certfile))
