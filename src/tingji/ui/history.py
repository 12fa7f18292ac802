"""Tab 4, 识别历史 / History: search, filter, page, open an entry (rename its speakers, download
it with minutes), delete it, export CSV."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from urllib.parse import quote

import gradio as gr

from tingji import minutes
from tingji.errors import OptionError, TingjiError
from tingji.exports import entry_transcript
from tingji.formats import render
from tingji.ui import transcript, voices
from tingji.ui.common import clock, confirm_panel, date_time, message, safe_stem, status_line
from tingji.ui.i18n import Lazy, T, language_choices, language_name, t
from tingji.ui.page import Page

PAGE_SIZE = 10
DOWNLOAD_AT_ONCE = """() => {
  // the export's file is offered by a link: follow it, so that one click downloads
  let tries = 0;
  const follow = () => {
    const link = document.querySelector("#tj-hist-export-file a[href*='tingji-history']");
    if (link && link.dataset.tjFollowed !== link.href) {
      link.dataset.tjFollowed = link.href;
      link.click();
    } else if (tries++ < 40) setTimeout(follow, 100);
  };
  follow();
}"""
EXCERPT = 60


def day_start(value: str | None, *, next_day: bool = False) -> float | None:
    """A ``YYYY-MM-DD`` date picked in the page as local midnight (of the next day for "until")."""
    if not value or not value.strip():
        return None
    try:
        day = dt.datetime.fromisoformat(value.strip()[:10])
    except ValueError as exc:
        raise OptionError(f"'{value}' is not a date like 2025-03-01") from exc
    if next_day:
        day += dt.timedelta(days=1)
    return day.timestamp()


def history_languages(lang: str) -> list[tuple[str, str]]:
    return language_choices(lang, auto_key="hist.all")


def build(page: Page) -> None:
    tr = page.tr
    service = page.service
    with tr(gr.Tab, label=T("tab.history"), id="history") as tab:
        page_no = gr.State(1)
        selected = gr.State(0)
        with gr.Row(equal_height=True):
            query = tr(
                gr.Textbox,
                label=T("hist.query"),
                placeholder=T("hist.query.placeholder"),
                scale=2,
                min_width=220,
                elem_id="tj-hist-query",
            )
            language = tr(
                gr.Dropdown,
                label=T("hist.language"),
                choices=Lazy(history_languages),
                value="",
                allow_custom_value=True,
                scale=1,
                min_width=130,
            )
            since = tr(
                gr.DateTime,
                label=T("hist.since"),
                include_time=False,
                type="string",
                scale=1,
                min_width=210,
            )
            until = tr(
                gr.DateTime,
                label=T("hist.until"),
                include_time=False,
                type="string",
                scale=1,
                min_width=210,
            )
        with gr.Row():
            search = tr(
                gr.Button, value=T("hist.search"), variant="primary", elem_id="tj-hist-search"
            )
            export = tr(gr.Button, value=T("hist.export"), elem_id="tj-hist-export")
        status = gr.Markdown(elem_id="tj-hist-status")
        export_file = gr.File(
            visible="hidden",
            interactive=False,
            show_label=False,
            height=60,
            elem_id="tj-hist-export-file",
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                table = tr(
                    gr.Dataframe,
                    label=T("hist.entries"),
                    headers=T("col.id", "col.time", "col.file", "col.text"),
                    value=[],
                    datatype=["str"] * 4,
                    column_widths=["9%", "21%", "26%", "44%"],
                    interactive=False,
                    wrap=True,
                    max_height=480,
                    elem_id="tj-hist-table",
                )
                with gr.Row(equal_height=True):
                    prev = tr(gr.Button, value=T("hist.prev"), size="sm", min_width=80)
                    pager = gr.Markdown(elem_id="tj-hist-pager")
                    nxt = tr(gr.Button, value=T("hist.next"), size="sm", min_width=80)
                show_voices, voice_outputs = voices.build(page)
            with gr.Column(scale=2, min_width=300):
                entry_info = tr(gr.Markdown, value=T("hist.none"), elem_id="tj-hist-entry")
                player = gr.HTML(elem_id="tj-hist-player")
                tr(gr.Markdown, value=T("hist.transcript_hint"), elem_classes=["tj-hint"])
                transcript_view = gr.HTML(
                    value=transcript.render(None, "zh"),
                    js_on_load=transcript.script(),
                    server_functions=[transcript.corrector(service)],
                    elem_id="tj-hist-transcript",
                    max_height=560,
                )
                with tr(gr.Accordion, label=T("hist.speakers"), open=False, visible=True):
                    with gr.Row(equal_height=True):
                        speaker = tr(
                            gr.Dropdown,
                            label=T("hist.speaker"),
                            choices=[],
                            elem_id="tj-hist-speaker",
                            min_width=100,
                        )
                        new_name = tr(
                            gr.Textbox, label=T("hist.new_name"), elem_id="tj-hist-speaker-name"
                        )
                    with gr.Row(equal_height=True):
                        rename = tr(gr.Button, value=T("hist.rename"), elem_id="tj-hist-rename")
                        enrol = tr(gr.Button, value=T("hist.enrol"), elem_id="tj-hist-enrol")
                downloads = tr(
                    gr.File,
                    label=T("hist.downloads"),
                    file_count="multiple",
                    interactive=False,
                    visible="hidden",
                    elem_id="tj-hist-downloads",
                )
                delete = tr(
                    gr.Button,
                    value=T("hist.delete"),
                    variant="stop",
                    interactive=False,
                    elem_id="tj-hist-delete",
                )
                confirm = confirm_panel(tr, "tj-hist-confirm")
    filters = [query, language, since, until]

    def run_search(fields: list[Any], number: int, lang: str) -> tuple[Any, ...]:
        """One page of entries for the filter values ``fields`` (query, language, from, to)."""
        text, code, start, end = fields
        try:
            found, total = service.history.search(
                text or "",
                language=(code or "").strip() or None,
                since=day_start(start),
                until=day_start(end, next_day=True),
                offset=(max(number, 1) - 1) * PAGE_SIZE,
                limit=PAGE_SIZE,
            )
        except TingjiError as exc:
            return [], "", number, status_line(message(exc, lang), "error")
        pages = max(1, math.ceil(total / PAGE_SIZE))
        if number > pages and total:
            return run_search(fields, pages, lang)
        rows = [
            [
                str(e.id),
                date_time(e.created_at),
                e.name,
                e.text if len(e.text) <= EXCERPT else e.text[:EXCERPT] + "…",
            ]
            for e in found
        ]
        info = t("hist.page", lang, page=number, pages=pages, total=total)
        return rows, info, number, ""

    search_outputs = [table, pager, page_no, status]

    def first_page(*values: Any) -> tuple[Any, ...]:
        *fields, lang = values
        return run_search(fields, 1, lang)

    def turn(step: int) -> Any:
        def handler(*values: Any) -> tuple[Any, ...]:
            *fields, number, lang = values
            return run_search(fields, max(1, number + step), lang)

        return handler

    def refresh(*values: Any) -> tuple[Any, ...]:
        *fields, number, lang = values
        return run_search(fields, number, lang)

    def open_entry(text: str, lang: str, evt: gr.SelectData) -> tuple[Any, ...]:
        row = evt.row_value or []
        try:
            entry = service.get_entry(int(row[0]))
            audio = service.entry_audio(entry.id)
        except (TingjiError, ValueError, IndexError) as exc:
            problem = status_line(message(exc, lang), "error")
            return 0, problem, "", transcript.render(None, lang), gr.update(), _hide()
        lines = [
            f"### {entry.name}",
            f"{date_time(entry.created_at)} · {language_name(entry.language, lang)} · "
            f"{clock(entry.duration)} · {entry.model} ({entry.device})",
        ]
        if audio is None:
            lines.append(t("hist.no_audio", lang))
        # the data dir itself is never served: the player gets a link in the scratch area
        url = _file_url(page.scratch.offer(audio)) if audio else None
        return (
            entry.id,
            "\n\n".join(lines),
            transcript.player(url, lang),
            transcript.render(entry, lang, text or ""),
            gr.update(interactive=True),
            _hide(),
        )

    def show_again(entry_id: int, text: str, lang: str) -> Any:
        """The open entry's transcript in the page's language (after a switch)."""
        if not entry_id:
            return transcript.render(None, lang)
        try:
            return transcript.render(service.get_entry(entry_id), lang, text or "")
        except TingjiError:
            return transcript.render(None, lang)

    def entry_files(entry_id: int, lang: str) -> tuple[Any, ...]:
        """The entry's speakers to rename, and its downloads (minutes included)."""
        if not entry_id:
            return gr.update(choices=[], value=None), gr.update(value=None, visible="hidden")
        try:
            entry = service.get_entry(entry_id)
        except TingjiError as exc:
            gr.Warning(message(exc, lang), title=t("app.warning", lang))
            return gr.update(), gr.update()
        names = list(dict.fromkeys(s.speaker for s in entry.segments if s.speaker))
        folder = page.scratch.new_dir()
        stem = safe_stem(entry.name)
        transcript = entry_transcript(entry)
        paths = []
        for fmt in ("txt", "srt", "vtt", "json", *(("csv", "rttm") if names else ())):
            target = folder / f"{stem}.{fmt}"
            target.write_text(render(transcript, fmt), encoding="utf-8")
            paths.append(str(target))
        (folder / f"{stem}.md").write_text(minutes.to_markdown(entry), encoding="utf-8")
        (folder / f"{stem}.docx").write_bytes(minutes.to_docx(entry))
        paths += [str(folder / f"{stem}.md"), str(folder / f"{stem}.docx")]
        return (
            gr.update(choices=names, value=names[0] if names else None),
            gr.update(value=paths, visible=True),
        )

    def rename_speaker(entry_id: int, old: str | None, name: str, lang: str) -> tuple[Any, ...]:
        """The entry renamed; its speakers and downloads follow the transcript's change."""
        if not entry_id or not old:
            return gr.update(), gr.update(), ""
        try:
            entry = service.rename_speaker(entry_id, old, name or "")
        except TingjiError as exc:
            return gr.update(), gr.update(), status_line(message(exc, lang), "error")
        note = status_line(t("hist.renamed", lang, old=old, new=" ".join(name.split())), "ok")
        return transcript.render(entry, lang), "", note

    def enrol_voice(entry_id: int, who: str | None, name: str, lang: str) -> str:
        """Keep the chosen speaker's voice under the typed name (or the speaker's own)."""
        if not entry_id or not who:
            return ""
        try:
            voice = service.enrol_from_entry(entry_id, who, name.strip() or who)
        except TingjiError as exc:
            return status_line(message(exc, lang), "error")
        return status_line(t("hist.enrolled", lang, name=voice.name), "ok")

    def ask(entry_id: int, lang: str) -> tuple[Any, ...]:
        if not entry_id:
            return gr.update(), ""
        try:
            name = service.get_entry(entry_id).name
        except TingjiError as exc:
            return gr.update(), status_line(message(exc, lang), "error")
        return gr.update(visible=True), status_line(t("hist.confirm", lang, name=name))

    def remove(entry_id: int, *values: Any) -> tuple[Any, ...]:
        *fields, number, lang = values
        note = ""
        try:
            name = service.get_entry(entry_id).name
            service.delete_entries([entry_id])
            note = status_line(t("hist.deleted", lang, name=name), "ok")
        except TingjiError as exc:
            note = status_line(message(exc, lang), "error")
        rows, info, number, problem = run_search(fields, number, lang)
        return (
            0,
            t("hist.none", lang),
            "",
            transcript.render(None, lang),
            gr.update(interactive=False),
            _hide(),
            rows,
            info,
            number,
            problem or note,
        )

    def export_csv(*values: Any) -> tuple[Any, ...]:
        text, code, start, end, lang = values
        try:
            filters_kw = {
                "language": (code or "").strip() or None,
                "since": day_start(start),
                "until": day_start(end, next_day=True),
            }
            target = page.scratch.new_dir() / "tingji-history.csv"
            with target.open("w", encoding="utf-8-sig", newline="") as out:
                for chunk in service.history_csv(text or "", **filters_kw):
                    out.write(chunk)
        except TingjiError as exc:
            return gr.update(visible="hidden"), status_line(message(exc, lang), "error")
        return gr.update(value=str(target), visible=True), ""

    detail_outputs = [selected, entry_info, player, transcript_view, delete, confirm.box]
    search.click(first_page, inputs=[*filters, page.lang], outputs=search_outputs)
    query.submit(first_page, inputs=[*filters, page.lang], outputs=search_outputs)
    prev.click(turn(-1), inputs=[*filters, page_no, page.lang], outputs=search_outputs)
    nxt.click(turn(+1), inputs=[*filters, page_no, page.lang], outputs=search_outputs)
    tab.select(refresh, inputs=[*filters, page_no, page.lang], outputs=search_outputs)
    table.select(open_entry, inputs=[query, page.lang], outputs=detail_outputs)
    # whenever the transcript shows something new (an entry opened, a correction saved, a
    # rename), its downloads and speakers follow: written once per change, here only
    transcript_view.change(entry_files, inputs=[selected, page.lang], outputs=[speaker, downloads])
    enrol.click(
        enrol_voice, inputs=[selected, speaker, new_name, page.lang], outputs=[status]
    ).then(show_voices, inputs=[page.lang], outputs=voice_outputs)
    rename.click(
        rename_speaker,
        inputs=[selected, speaker, new_name, page.lang],
        outputs=[transcript_view, new_name, status],
    )
    delete.click(ask, inputs=[selected, page.lang], outputs=[confirm.box, confirm.text])
    confirm.no.click(_hide, outputs=[confirm.box])
    confirm.yes.click(
        remove,
        inputs=[selected, *filters, page_no, page.lang],
        outputs=[*detail_outputs, *search_outputs],
    )
    export.click(export_csv, inputs=[*filters, page.lang], outputs=[export_file, status]).then(
        None, js=DOWNLOAD_AT_ONCE
    )
    page.on_load.append((refresh, [*filters, page_no, page.lang], search_outputs))
    page.on_load.append((show_again, [selected, query, page.lang], [transcript_view]))


def _hide() -> dict[str, Any]:
    """Hide the delete confirmation."""
    return gr.update(visible=False)


def _file_url(path: str) -> str:
    """Where the page fetches a file of the scratch area (relative: works under a prefix)."""
    return "gradio_api/file=" + quote(path)
