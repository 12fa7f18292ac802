"""Voice profiles, in the History tab: the enrolled voices (which later recordings label by
name), enrolling one from a clip of that person alone, and deleting one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from tingji.errors import TingjiError
from tingji.ui.common import confirm_panel, date_time, message, status_line
from tingji.ui.i18n import T, t
from tingji.ui.page import Page


def build(page: Page) -> tuple[Callable[..., Any], list[Any]]:
    """The panel; returns a handler (and its outputs) that shows the voices anew, for a tab
    that enrols one too."""
    tr = page.tr
    service = page.service
    with tr(gr.Accordion, label=T("voice.title"), open=False, elem_id="tj-voices"):
        tr(gr.Markdown, value=T("voice.hint"), elem_classes=["tj-hint"])
        table = tr(
            gr.Dataframe,
            headers=T("voice.col.name", "voice.col.source", "voice.col.time"),
            value=[],
            datatype=["str"] * 3,
            interactive=False,
            wrap=True,
            max_height=240,
            elem_id="tj-voices-table",
        )
        clip = tr(
            gr.Audio,
            label=T("voice.clip"),
            sources=["upload", "microphone"],
            type="filepath",
            buttons=["download"],  # Gradio's share button fails outside its hosted Spaces
            elem_id="tj-voices-clip",
        )
        with gr.Row(equal_height=True):
            name = tr(gr.Textbox, label=T("voice.name"), max_length=64, elem_id="tj-voices-name")
            enrol = tr(
                gr.Button, value=T("voice.enrol"), variant="primary", elem_id="tj-voices-add"
            )
        with gr.Row(equal_height=True):
            chosen = tr(gr.Dropdown, label=T("voice.pick"), choices=[], elem_id="tj-voices-pick")
            delete = tr(gr.Button, value=T("voice.delete"), variant="stop", elem_id="tj-voices-del")
        confirm = confirm_panel(tr, "tj-voices-confirm")
        status = gr.Markdown(elem_id="tj-voices-status")

    def listed() -> tuple[Any, Any]:
        voices = service.voices()
        rows = [[v.name, v.source, date_time(v.created_at)] for v in voices]
        names = [v.name for v in voices]
        return rows, gr.update(choices=names, value=names[0] if names else None)

    def add(path: str | None, who: str, lang: str) -> tuple[Any, ...]:
        if not path:
            return *listed(), gr.update(), status_line(t("voice.need_clip", lang), "error")
        if not (who or "").strip():
            return *listed(), gr.update(), status_line(t("voice.need_name", lang), "error")
        try:
            with page.files.open_upload(path) as stream:
                voice = service.enrol_voice(who, stream, label=Path(path).name)
        except TingjiError as exc:
            return *listed(), gr.update(), status_line(message(exc, lang), "error")
        note = status_line(t("hist.enrolled", lang, name=voice.name), "ok")
        return *listed(), None, note

    def ask(who: str | None, lang: str) -> tuple[Any, ...]:
        if not who:
            return gr.update(visible=False), ""
        return gr.update(visible=True), t("voice.confirm", lang, name=who)

    def remove(who: str | None, lang: str) -> tuple[Any, ...]:
        hidden = gr.update(visible=False)
        if not who:
            return *listed(), hidden, ""
        try:
            service.delete_voice(who)
        except TingjiError as exc:
            return *listed(), hidden, status_line(message(exc, lang), "error")
        return *listed(), hidden, status_line(t("voice.deleted", lang, name=who), "ok")

    def shown(lang: str) -> tuple[Any, Any]:
        return listed()

    enrol.click(add, inputs=[clip, name, page.lang], outputs=[table, chosen, clip, status])
    delete.click(ask, inputs=[chosen, page.lang], outputs=[confirm.box, confirm.text])
    confirm.no.click(lambda: gr.update(visible=False), outputs=[confirm.box])
    confirm.yes.click(
        remove, inputs=[chosen, page.lang], outputs=[table, chosen, confirm.box, status]
    )
    page.on_load.append((shown, [page.lang], [table, chosen]))
    return shown, [table, chosen]
