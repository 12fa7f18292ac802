"""Tab 2, 批量处理 / Batch: many files as one job, with live progress, cancel and downloads."""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from tingji.errors import NotFoundError, TingjiError
from tingji.jobs.audio_store import StoredAudio
from tingji.types import JobStatus
from tingji.ui.common import (
    build_options,
    clock,
    confirm_panel,
    message,
    option_inputs,
    progress_bar,
    status_line,
    store,
)
from tingji.ui.i18n import T, both, t
from tingji.ui.page import Page
from tingji.ui.single import FILE_TYPES

POLL_S = 0.5
FINISHED = ("done", "failed", "cancelled")
EXCERPT = 120


def percent(job: JobStatus) -> float:
    """How much of the job is done, 0–100 (by audio time when every length is known).

    A cancelled job shows what was recognised before it stopped.
    """
    if job.status == "done" or not job.files:
        return 100.0
    if job.status == "cancelled":
        return 100.0 * sum(f.status == "done" for f in job.files) / len(job.files)
    total = job.audio_total
    if total:
        return min(100.0 * job.audio_done / total, 100.0)
    return 100.0 * job.finished_files / len(job.files)


def progress_html(job: JobStatus | None, lang: str) -> str:
    if job is None:
        return progress_bar(0.0, [f"<span {both('batch.idle')}>{t('batch.idle', lang)}</span>"])
    share = percent(job)
    parts = [f"<b>{share:.0f} %</b>"]
    parts.append(t("batch.files_done", lang, done=job.finished_files, total=len(job.files)))
    if job.status == "running" and job.current_file:
        parts.append(t("batch.current", lang, name=html.escape(job.current_file)))
    elif job.status == "queued":
        parts.append(t("batch.queued", lang))
    elif job.status in FINISHED:
        parts.append("<b>" + t(_FINAL[job.status], lang) + "</b>")
    parts.append(t("batch.elapsed", lang, elapsed=clock(job.elapsed, fraction=False)))
    if job.status not in FINISHED and job.eta is not None:
        parts.append(t("batch.left", lang, left=clock(job.eta, fraction=False)))
    return progress_bar(share, parts)


_FINAL = {"done": "batch.finished", "cancelled": "batch.cancelled", "failed": "batch.failed"}


class Results:
    """The results table of a job; finished entries' texts are read once."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.texts: dict[int, str] = {}

    def rows(self, job: JobStatus, lang: str) -> list[list[str]]:
        rows = []
        for f in job.files:
            if f.status == "done" and f.transcription_id is not None:
                detail = self._text(f.transcription_id)
            else:
                detail = f.error or ""
            duration = f.duration if f.status == "done" else None
            rows.append([f.name, t(f"status.{f.status}", lang), clock(duration), detail])
        return rows

    def _text(self, entry_id: int) -> str:
        if entry_id not in self.texts:
            try:
                text = self.page.service.get_entry(entry_id).text
            except TingjiError:
                text = ""
            self.texts[entry_id] = text if len(text) <= EXCERPT else text[:EXCERPT] + "…"
        return self.texts[entry_id]


def build(page: Page) -> None:
    tr = page.tr
    service = page.service
    with tr(gr.Tab, label=T("tab.batch"), id="batch"), gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            files = tr(
                gr.File,
                label=T("batch.files"),
                file_count="multiple",
                file_types=FILE_TYPES,
                type="filepath",
                elem_id="tj-batch-files",
                height=170,
            )
            with tr(gr.Accordion, label=T("opt.title"), open=True):
                opts = option_inputs(service, tr, speakers=True)
            with gr.Row(elem_id="tj-batch-actions"):
                run = tr(gr.Button, value=T("batch.run"), variant="primary", elem_id="tj-batch-run")
                cancel = tr(
                    gr.Button, value=T("batch.cancel"), variant="stop", elem_id="tj-batch-cancel"
                )
                delete = tr(gr.Button, value=T("batch.delete"), elem_id="tj-batch-delete")
            confirm = confirm_panel(tr, "tj-batch-confirm", T("batch.delete.confirm"))
        with gr.Column(scale=3, min_width=300):
            job_id = gr.State("")
            status = gr.Markdown(elem_id="tj-batch-status")
            bar = gr.HTML(progress_html(None, "zh"), elem_id="tj-batch-progress")
            table = tr(
                gr.Dataframe,
                label=T("batch.results"),
                headers=T("col.file", "col.status", "col.duration", "col.result"),
                value=[],
                datatype=["str", "str", "str", "str"],
                column_widths=["30%", "12%", "12%", "46%"],
                interactive=False,
                wrap=True,
                max_height=420,
                elem_id="tj-batch-table",
            )
            with gr.Row():
                csv_file = tr(
                    gr.DownloadButton,
                    label=T("batch.csv"),
                    visible="hidden",
                    elem_id="tj-batch-csv",
                    size="md",
                )
                zip_file = tr(
                    gr.DownloadButton,
                    label=T("batch.zip"),
                    visible="hidden",
                    elem_id="tj-batch-zip",
                    size="md",
                )
    page.hotword_pickers.append(opts.hotword_list)
    page.model_pickers.append(opts.model)

    def start(paths: list[str] | None, *values: Any) -> Iterator[tuple[Any, ...]]:
        *option_values, lang = values
        hidden = gr.update(visible="hidden")
        if not paths:
            yield status_line(t("batch.no_files", lang), "error"), gr.skip(), [], "", hidden, hidden
            return

        def failed(text: str) -> tuple[Any, ...]:  # said once, in the status line
            return status_line(text, "error"), gr.skip(), [], "", hidden, hidden

        refused: list[str] = []
        stored: list[StoredAudio] = []
        try:
            options, model = build_options(service, *option_values)
            for path in paths:
                try:
                    stored.append(store(service, page.files, path))
                except TingjiError as exc:  # that file is refused; the others go on
                    refused.append(message(exc, lang))
            refused = list(dict.fromkeys(refused))  # one line for many files refused alike
            if not stored:
                yield failed("；".join(refused))
                return
            job = service.create_job(stored, options, model)
        except Exception as exc:  # shown in the page, never as a traceback
            for s in stored:
                service.discard_upload(s)
            yield failed(message(exc, lang))
            return
        note = status_line("；".join(refused), "error") if refused else ""
        results = Results(page)
        while True:
            try:
                state = service.job(job)
            except NotFoundError:  # deleted, here or elsewhere
                yield status_line(t("batch.deleted", lang)), gr.skip(), [], "", hidden, hidden
                return
            finished = state.status in FINISHED
            rows = results.rows(state, lang)
            if not finished:
                yield note, progress_html(state, lang), rows, job, hidden, hidden
                time.sleep(POLL_S)
                continue
            folder = page.scratch.new_dir()
            csv_path = folder / f"tingji-{job}.csv"
            csv_path.write_text(service.job_csv(job), encoding="utf-8-sig")
            zip_path = folder / f"tingji-{job}.zip"
            zip_path.write_bytes(service.job_zip(job))
            yield (
                note,
                progress_html(state, lang),
                rows,
                job,
                gr.update(value=str(csv_path), visible=True),
                gr.update(value=str(zip_path), visible=True),
            )
            return

    def stop(job: str, lang: str) -> str:
        if not job:
            return ""
        try:
            service.cancel_job(job)
        except TingjiError as exc:
            return status_line(message(exc, lang), "error")
        return status_line(t("batch.cancelled", lang))

    run.click(
        start,
        inputs=[files, *opts.all(), page.lang],
        outputs=[status, bar, table, job_id, csv_file, zip_file],
        show_progress="hidden",
        concurrency_limit=None,  # it only polls; the job runner does the work, one at a time
    )

    def ask(job: str) -> Any:
        return gr.update(visible=bool(job))

    def remove(job: str, lang: str) -> tuple[Any, ...]:
        """Delete the job on show (after the user confirmed)."""
        hidden = gr.update(visible="hidden")
        closed = gr.update(visible=False)
        if not job:
            return closed, *(gr.skip(),) * 6
        try:
            service.delete_job(job)
        except TingjiError as exc:
            return closed, status_line(message(exc, lang), "error"), *(gr.skip(),) * 5
        done = status_line(t("batch.deleted", lang))
        return closed, done, progress_html(None, lang), [], "", hidden, hidden

    cancel.click(stop, inputs=[job_id, page.lang], outputs=[status], show_progress="hidden")
    delete.click(ask, inputs=[job_id], outputs=[confirm.box], show_progress="hidden")
    confirm.no.click(
        lambda: gr.update(visible=False), outputs=[confirm.box], show_progress="hidden"
    )
    confirm.yes.click(
        remove,
        inputs=[job_id, page.lang],
        outputs=[confirm.box, status, bar, table, job_id, csv_file, zip_file],
        show_progress="hidden",
    )
