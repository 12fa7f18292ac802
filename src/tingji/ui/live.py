"""Tab 3, 实时录音 / Live: speak into the browser's microphone and watch the text appear.

The page streams the microphone over the live WebSocket (``/ws/asr``, FunASR's 2pass protocol;
see :mod:`tingji.server.routes.streaming`) with the script in ``live.js``: partial text is shown
lighter and replaced as it changes, finished sentences are added with their times, and the
session is saved to history when it stops. Python's part is small: it turns the options panel
into the stream's configuration and hands the page a short-lived ticket for the socket.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import gradio as gr

from tingji.ui.common import (
    build_options,
    hotword_inputs,
    language_input,
    message,
    status_line,
)
from tingji.ui.i18n import T, Translator, both, t
from tingji.ui.page import Page

SCRIPT = Path(__file__).with_name("live.js")
LABELS = (
    "connecting",
    "listening",
    "finishing",
    "saved",
    "nothing",
    "lost",
    "no_mic",
    "insecure",
    "error",
    "empty",
)


MIC_CSS = """
.tj-no-mic-only { display: none !important; }
html.tj-no-mic .tj-no-mic-only { display: block !important; }
html.tj-no-mic .block.tj-no-mic-only {
  border-left: 4px solid #ef4444 !important; background: rgba(239, 68, 68, .10) !important;
  padding: 6px 10px !important; border-radius: 6px;
}
html.tj-no-mic .tj-mic-recorder { display: none !important; }
"""
"""Where the page has no microphone (``live.js`` marks ``<html>`` with ``tj-no-mic``), the
notices show and the recorder hides. In the head, as Gradio scopes the page CSS under its own
container, where a rule cannot see ``<html>``."""


def head() -> str:
    """The ``<script>`` and ``<style>`` that the page needs for this tab (in the page's head)."""
    script = SCRIPT.read_text(encoding="utf-8")
    return f"<script>\n{script}\n</script>\n<style>{MIC_CSS}</style>"


def mic_notice(tr: Translator) -> gr.Markdown:
    """A line that shows only where the page cannot use the microphone (plain http beyond
    localhost, where browsers hide ``navigator.mediaDevices``), saying why and what to do."""
    return tr(gr.Markdown, value=T("live.insecure"), elem_classes=["tj-no-mic-only"])


def build(page: Page) -> None:
    tr = page.tr
    service = page.service
    defaults = service.options()
    with tr(gr.Tab, label=T("tab.live"), id="live"), gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            tr(gr.Markdown, value=T("live.hint"))
            mic_notice(tr)
            with gr.Row():
                start = tr(
                    gr.Button, value=T("live.start"), variant="primary", elem_id="tj-live-start"
                )
                stop = tr(gr.Button, value=T("live.stop"), variant="stop", elem_id="tj-live-stop")
            with tr(gr.Accordion, label=T("opt.title"), open=False):
                language = language_input(tr, defaults.language)
                hotwords, hotword_list = hotword_inputs(service, tr)
                itn = tr(gr.Checkbox, label=T("opt.itn"), value=defaults.itn)
            note = gr.HTML(elem_id="tj-live-error")
            config = gr.Textbox(visible=False, elem_id="tj-live-config")
        with gr.Column(scale=3, min_width=300):
            gr.HTML(
                f'<div id="tj-live-out"><div class="tj-text tj-live-text">'
                f'<div class="tj-live-empty" {both("live.empty")}>{t("live.empty")}</div>'
                "</div></div>",
                elem_id="tj-live-panel",
            )
    page.hotword_pickers.append(hotword_list)

    def configure(
        language_code: str | None, terms: str | None, listed: str | None, itn_on: bool, lang: str
    ) -> tuple[str, str]:
        try:
            options, _ = build_options(
                service, language_code, terms, listed, itn_on, defaults.script, None
            )
        except Exception as exc:  # shown in the page, never as a traceback
            return "", status_line(message(exc, lang), "error")
        stream = {
            "ticket": service.live_ticket(),
            "wav_name": t("live.name", lang, time=time.strftime("%Y-%m-%d %H%M%S")),
            "hotwords": "\n".join(options.hotwords),
            "itn": options.itn,
            "language": options.language,
            "labels": {key: t(f"live.{key}", lang) for key in LABELS},
        }
        return json.dumps(stream, ensure_ascii=False), ""

    started = start.click(
        configure,
        inputs=[language, hotwords, hotword_list, itn, page.lang],
        outputs=[config, note],
        show_progress="hidden",
    )
    started.then(None, inputs=[config], js="(cfg) => { if (cfg) window.tjLive.start(cfg); }")
    stop.click(None, js="() => { window.tjLive.stop(); }")
