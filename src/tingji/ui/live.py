"""Tab 3, 实时录音 / Live: record with the browser's microphone, then recognise the clip.

Live text while speaking comes with the streaming issue; until then a finished recording is
recognised (and saved to history) as soon as the recording stops.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from tingji.ui.common import build_options, highlight, message, option_inputs, status_line, text_box
from tingji.ui.i18n import T, t
from tingji.ui.page import Page
from tingji.ui.single import Partial, recognise_stream, segment_rows, segments_table, text_panel


def build(page: Page) -> None:
    tr = page.tr
    with tr(gr.Tab, label=T("tab.live"), id="live"), gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            tr(gr.Markdown, value=T("live.hint"))
            mic = tr(
                gr.Audio,
                label=T("live.mic"),
                sources=["microphone"],
                type="filepath",
                format="wav",
                elem_id="tj-live-mic",
            )
            with tr(gr.Accordion, label=T("opt.title"), open=False):
                opts = option_inputs(page.service, tr)
            run = tr(gr.Button, value=T("live.run"), variant="primary", elem_id="tj-live-run")
        with gr.Column(scale=3, min_width=300):
            status, text = text_panel(page, "tj-live", "live.text")
            segments = segments_table(page)
    page.hotword_pickers.append(opts.hotword_list)
    page.model_pickers.append(opts.model)

    def recognise(path: str | None, *values: Any) -> Iterator[tuple[Any, ...]]:
        *option_values, lang = values
        if not path:
            yield status_line(t("single.no_input", lang), "error"), gr.skip(), gr.skip()
            return
        name = t("live.name", lang, time=time.strftime("%Y-%m-%d %H%M%S")) + ".wav"
        try:
            options, model = build_options(page.service, *option_values)
            for event in recognise_stream(page, path, name, options, model):
                if isinstance(event, Partial):
                    note = t("single.working", lang, done=event.position, total=event.duration or 0)
                    body = text_box(highlight(event.text, options.hotwords))
                    yield status_line(note), body, segment_rows(event.segments)
                    continue
                transcript = event.transcript
                yield (
                    status_line(t("single.done", lang, name=name), "ok"),
                    text_box(highlight(transcript.text, options.hotwords)),
                    segment_rows(transcript.segments),
                )
        except Exception as exc:  # shown in the page, never as a traceback
            note = message(exc, lang, name)
            gr.Warning(note)
            yield status_line(note, "error"), text_box(""), []

    inputs = [mic, *opts.all(), page.lang]
    outputs = [status, text, segments]
    mic.stop_recording(recognise, inputs=inputs, outputs=outputs, show_progress_on=[status])
    run.click(recognise, inputs=inputs, outputs=outputs, show_progress_on=[status])
