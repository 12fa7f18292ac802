"""Tab 5, 热词 / Hotwords: named lists stored in the database, chosen in the recognition tabs."""

from __future__ import annotations

from typing import Any

import gradio as gr

from tingji.engine.hotwords import parse_hotwords
from tingji.errors import TingjiError
from tingji.ui.common import confirm_panel, hotword_list_choices, message, status_line
from tingji.ui.i18n import Lazy, T, t
from tingji.ui.page import Page


def saved_choices(page: Page, lang: str) -> list[tuple[str, str]]:
    return [(t("hw.new", lang), "")] + [(n, n) for n in page.service.history.hotword_lists()]


def build(page: Page) -> None:
    tr = page.tr
    lists = page.service.history
    with tr(gr.Tab, label=T("tab.hotwords"), id="hotwords"), gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=260):
            saved = tr(
                gr.Dropdown,
                label=T("hw.lists"),
                choices=Lazy(lambda lang: saved_choices(page, lang)),
                value="",
                elem_id="tj-hw-lists",
            )
            tr(gr.Markdown, value=T("hw.hint"), elem_classes=["tj-hint"], elem_id="tj-hw-hint")
            status = gr.Markdown(elem_id="tj-hw-status")
        with gr.Column(scale=2, min_width=300):
            name = tr(gr.Textbox, label=T("hw.name"), max_length=80, elem_id="tj-hw-name")
            terms = tr(
                gr.Textbox, label=T("hw.terms"), lines=10, max_lines=30, elem_id="tj-hw-terms"
            )
            with gr.Row():
                save = tr(gr.Button, value=T("hw.save"), variant="primary", elem_id="tj-hw-save")
                delete = tr(gr.Button, value=T("hw.delete"), variant="stop", elem_id="tj-hw-del")
            confirm = confirm_panel(tr, "tj-hw-confirm")
    pickers = page.hotword_pickers

    def refreshed(lang: str, chosen: str, values: tuple[Any, ...], gone: str = "") -> list[Any]:
        """The saved-lists dropdown and every picker, with current choices."""
        picks = hotword_list_choices(page.service, lang)
        return [gr.update(choices=saved_choices(page, lang), value=chosen)] + [
            gr.update(choices=picks, value="" if gone and v == gone else v) for v in values
        ]

    def load(choice: str) -> tuple[str, str]:
        if not choice:
            return "", ""
        return choice, "\n".join(lists.hotword_lists().get(choice, []))

    def store(list_name: str, text: str, lang: str, *values: Any) -> list[Any]:
        list_name = (list_name or "").strip()
        words = parse_hotwords(text or "")
        if not list_name:
            return [status_line(t("hw.need_name", lang), "error"), *_unchanged(values)]
        if not words:
            return [status_line(t("hw.need_terms", lang), "error"), *_unchanged(values)]
        try:
            lists.save_hotword_list(list_name, words)
        except TingjiError as exc:
            return [status_line(message(exc, lang), "error"), *_unchanged(values)]
        note = status_line(t("hw.saved", lang, name=list_name, count=len(words)), "ok")
        return [note, *refreshed(lang, list_name, values)]

    def ask(list_name: str, lang: str) -> tuple[Any, ...]:
        list_name = (list_name or "").strip()
        if list_name not in lists.hotword_lists():
            return (
                gr.update(visible=False),
                "",
                status_line(t("hw.missing", lang, name=list_name), "error"),
            )
        return gr.update(visible=True), t("hw.confirm", lang, name=list_name), ""

    def drop(list_name: str, lang: str, *values: Any) -> list[Any]:
        list_name = (list_name or "").strip()
        hidden = gr.update(visible=False)
        if not lists.delete_hotword_list(list_name):
            note = status_line(t("hw.missing", lang, name=list_name), "error")
            return [note, hidden, gr.skip(), gr.skip(), *_unchanged(values)]
        note = status_line(t("hw.deleted", lang, name=list_name), "ok")
        return [note, hidden, "", "", *refreshed(lang, "", values, gone=list_name)]

    saved.input(load, inputs=saved, outputs=[name, terms])
    save.click(
        store,
        inputs=[name, terms, page.lang, *pickers],
        outputs=[status, saved, *pickers],
    )
    delete.click(ask, inputs=[name, page.lang], outputs=[confirm.box, confirm.text, status])
    confirm.no.click(lambda: gr.update(visible=False), outputs=[confirm.box])
    confirm.yes.click(
        drop,
        inputs=[name, page.lang, *pickers],
        outputs=[status, confirm.box, name, terms, saved, *pickers],
    )


def _unchanged(values: tuple[Any, ...]) -> list[Any]:
    return [gr.skip()] * (len(values) + 1)
