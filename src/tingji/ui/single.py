"""Tab 1, 单文件识别 / Single file: one upload (or recording) in, text, segments and files out."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from tingji.errors import TingjiError
from tingji.formats import render, to_txt
from tingji.jobs.audio_store import EXTENSIONS
from tingji.service import Saved
from tingji.types import Segment, TranscribeOptions, Transcript
from tingji.ui.common import (
    build_options,
    clock,
    highlight,
    kv_table,
    message,
    option_inputs,
    progress_bar,
    safe_stem,
    status_line,
    store,
    text_box,
)
from tingji.ui.i18n import T, language_name, t
from tingji.ui.live import mic_notice
from tingji.ui.page import Page

DOWNLOAD_FORMATS = ("txt", "srt", "vtt", "json")
SPEAKER_FORMATS = ("csv", "rttm")
"""Also offered when speakers were told apart."""
FILE_TYPES = sorted(f".{ext}" for ext in EXTENSIONS)

COPY_JS = """(...args) => {
  const box = document.querySelector('#%s .tj-text');
  const text = box ? box.innerText : '';
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text);
  } else {
    const area = document.createElement('textarea');
    area.value = text; document.body.appendChild(area); area.select();
    document.execCommand('copy'); area.remove();
  }
  return args;
}"""


def segment_rows(segments: list[Segment]) -> list[list[str]]:
    return [[clock(s.start), clock(s.end), _said(s)] for s in segments]


def _said(segment: Segment) -> str:
    return f"[{segment.speaker}] {segment.text}" if segment.speaker else segment.text


def transcript_text(transcript: Transcript) -> str:
    """The whole text; a paragraph per speaker's turn when speakers were told apart."""
    if not any(s.speaker for s in transcript.segments):
        return transcript.text
    return to_txt(transcript).strip()


def details_table(transcript: Transcript, name: str, lang: str) -> str:
    rows = [
        ("det.file", name),
        ("det.language", language_name(transcript.language, lang)),
        ("det.duration", clock(transcript.duration)),
        ("det.processing", f"{transcript.processing_time:.1f} s"),
        ("det.speed", t("det.speed.value", lang, speed=transcript.speed)),
        ("det.device", f"{transcript.model.device} ({transcript.model.compute_type})"),
        ("det.model", transcript.model.name),
    ]
    if transcript.replacements:
        fixes = "，".join(f"{r.original} → {r.replacement}" for r in transcript.replacements)
        rows.append(("det.replacements", fixes))
    pairs = [(t(key, lang), value) for key, value in rows]
    if transcript.omitted:
        spans = "，".join(f"{clock(o.start)}–{clock(o.end)}" for o in transcript.omitted)
        pairs.append((t("det.omitted", lang), t("det.omitted.value", lang, spans=spans)))
    return kv_table(pairs)


def text_panel(page: Page, elem: str, label: str = "single.text") -> tuple[gr.Markdown, gr.HTML]:
    """A status line with a copy button, above the recognised text (hotwords marked)."""
    with gr.Row(equal_height=False):
        status = gr.Markdown(elem_id=f"{elem}-status")
        copy = page.tr(
            gr.Button,
            value=T("single.copy"),
            size="sm",
            scale=0,
            min_width=90,
            elem_id=f"{elem}-copy",
        )
    text = page.tr(
        gr.HTML,
        value=text_box(""),
        label=T(label),
        show_label=True,
        container=True,
        elem_id=f"{elem}-text",
        min_height=120,
    )
    copy.click(None, js=COPY_JS % f"{elem}-text")
    return status, text


def segments_table(
    page: Page, label: str = "single.segments", elem_id: str | None = None
) -> gr.Dataframe:
    return page.tr(
        gr.Dataframe,
        label=T(label),
        elem_id=elem_id,
        headers=T("col.start", "col.end", "col.text"),
        value=[],
        datatype=["str", "str", "str"],
        column_widths=["16%", "16%", "68%"],
        interactive=False,
        wrap=True,
        max_height=360,
    )


TICK_S = 0.5
"""How often the page's progress line is brought up to date while a file is recognised."""


@dataclass
class Partial:
    """Recognition so far: the segments, seconds done and the audio length, what it is doing
    (``waiting`` for a worker, ``speakers`` being told apart, or ``recognising``) and for how
    long it has been at it."""

    segments: list[Segment]
    position: float
    duration: float | None
    language: str | None
    stage: str = "recognising"
    stage_progress: float = 0.0
    elapsed: float = 0.0
    recognising_for: float = 0.0
    after_speakers: bool = False
    """Speakers were told apart first (a tenth of the bar)."""

    @property
    def text(self) -> str:
        joiner = "" if (self.language or "zh") in CJK else " "
        return joiner.join(s.text.strip() for s in self.segments)

    @property
    def share(self) -> float:
        """Done, 0–100: the speaker stage as a tenth of the work, then the audio decoded."""
        if self.stage == "waiting":
            return 0.0
        if self.stage == "speakers":
            return 10.0 * self.stage_progress
        if not self.duration:
            return 0.0
        done = min(self.position / self.duration, 1.0)
        return (10.0 + 90.0 * done) if self.after_speakers else 100.0 * done

    @property
    def left(self) -> float | None:
        """Seconds still to go, from the pace so far (None until there is a pace)."""
        if self.stage != "recognising" or not self.duration or self.position <= 0:
            return None
        return self.recognising_for * (self.duration - self.position) / self.position

    def html(self, lang: str) -> str:
        parts = [f"<b>{self.share:.0f} %</b>"]
        if self.stage == "waiting":
            parts.append(t("single.waiting", lang))
        elif self.stage == "speakers":
            parts.append(t("single.speakers", lang))
        else:
            parts.append(t("single.working", lang, done=self.position, total=self.duration or 0))
        parts.append(t("batch.elapsed", lang, elapsed=clock(self.elapsed, fraction=False)))
        if self.left is not None:
            parts.append(t("batch.left", lang, left=clock(self.left, fraction=False)))
        return progress_bar(self.share, parts)


CJK = frozenset({"zh", "yue", "ja"})


def recognise_stream(
    page: Page, path: str, name: str, options: TranscribeOptions, model: str
) -> Iterator[Partial | Saved]:
    """Store the file, recognise it in the service's pool and save it to history.

    Yields a :class:`Partial` per segment and every :data:`TICK_S` (how far it is), then the
    :class:`Saved` result; a :class:`TingjiError` propagates (with the upload discarded).
    """
    service = page.service
    stored = store(service, page.files, path, name)
    events: queue.Queue[Partial | Saved | BaseException] = queue.Queue()
    segments: list[Segment] = []
    began = time.monotonic()
    runs: list[Any] = []  # the recognition, once it has a worker
    recognising_since: list[float] = []

    def now(run: Any | None) -> Partial:
        if run is None:
            return Partial(
                list(segments), 0.0, None, None, "waiting", 0.0, time.monotonic() - began
            )
        if run.stage == "recognising" and not recognising_since:
            recognising_since.append(time.monotonic())
        since = time.monotonic() - recognising_since[0] if recognising_since else 0.0
        return Partial(
            list(segments),
            run.position,
            run.duration,
            run.language,
            run.stage,
            run.stage_progress,
            time.monotonic() - began,
            since,
            after_speakers=options.diarize,
        )

    def on_segment(segment: Segment, run: Any) -> None:
        segments.append(segment)
        events.put(now(run))

    def work() -> None:
        try:
            events.put(
                service.recognise_and_save(
                    stored, options, model=model, on_segment=on_segment, on_start=runs.append
                )
            )
        except BaseException as exc:  # handed to the page, which shows it
            events.put(exc)

    threading.Thread(target=work, name="tingji-ui-recognise", daemon=True).start()
    while True:
        try:
            event = events.get(timeout=TICK_S)
        except queue.Empty:
            yield now(runs[0] if runs else None)
            continue
        if isinstance(event, BaseException):
            if isinstance(event, TingjiError):
                service.discard_upload(stored)
            raise event
        yield event
        if isinstance(event, Saved):
            return


def write_downloads(page: Page, transcript: Transcript, name: str) -> list[str]:
    folder = page.scratch.new_dir()
    stem = safe_stem(name)
    paths = []
    diarized = any(s.speaker for s in transcript.segments)
    for fmt in DOWNLOAD_FORMATS + (SPEAKER_FORMATS if diarized else ()):
        target = folder / f"{stem}.{fmt}"
        target.write_text(render(transcript, fmt), encoding="utf-8")
        paths.append(str(target))
    return paths


def build(page: Page) -> None:
    tr = page.tr
    with tr(gr.Tab, label=T("tab.single"), id="single"), gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            upload = tr(
                gr.File,
                label=T("single.file"),
                file_types=FILE_TYPES,
                type="filepath",
                elem_id="tj-single-file",
                height=180,
            )
            with tr(gr.Accordion, label=T("single.record"), open=False):
                mic_notice(tr)
                recording = gr.Audio(
                    sources=["microphone"],
                    type="filepath",
                    buttons=["download"],  # Gradio's share button fails outside its Spaces
                    show_label=False,
                    format="wav",
                    elem_classes=["tj-mic-recorder"],
                )
            with tr(gr.Accordion, label=T("opt.title"), open=True):
                opts = option_inputs(page.service, tr, speakers=True)
            run = tr(gr.Button, value=T("single.run"), variant="primary", elem_id="tj-single-run")
        with gr.Column(scale=3, min_width=300):
            status, text = text_panel(page, "tj-single")
            segments = segments_table(page, elem_id="tj-single-segments")
            with gr.Row(equal_height=False):
                details = gr.HTML(elem_id="tj-single-details", visible="hidden")
                downloads = tr(
                    gr.File,
                    label=T("single.downloads"),
                    file_count="multiple",
                    interactive=False,
                    visible="hidden",
                    elem_id="tj-single-downloads",
                )
    page.hotword_pickers.append(opts.hotword_list)
    page.model_pickers.append(opts.model)

    def recognise(
        file: str | None,
        recorded: str | None,
        language: str,
        hotwords: str,
        hotword_list: str,
        itn: bool,
        script: str,
        model: str,
        diarize: bool,
        speakers: str,
        lang: str,
    ) -> Iterator[tuple[Any, ...]]:
        path = file or recorded
        if not path:
            yield status_line(t("single.no_input", lang), "error"), gr.skip(), [], *_hidden()
            return
        name = (
            path.replace("\\", "/").rsplit("/", 1)[-1]
            if file
            else t("live.name", lang, time=time.strftime("%Y-%m-%d %H%M%S")) + ".wav"
        )
        yield progress_bar(0.0, [t("single.saving", lang)]), gr.skip(), gr.skip(), *_hidden()
        try:
            options, model_name = build_options(
                page.service,
                language,
                hotwords,
                hotword_list,
                itn,
                script,
                model,
                diarize,
                speakers,
            )
            for event in recognise_stream(page, path, name, options, model_name):
                if isinstance(event, Partial):
                    body = text_box(highlight(event.text, options.hotwords))
                    rows = segment_rows(event.segments)
                    yield event.html(lang), body, rows, *_hidden()
                    continue
                transcript = event.transcript
                yield (
                    status_line(t("single.done", lang, name=name), "ok"),
                    text_box(highlight(transcript_text(transcript), options.hotwords)),
                    segment_rows(transcript.segments),
                    gr.update(value=details_table(transcript, name, lang), visible=True),
                    gr.update(value=write_downloads(page, transcript, name), visible=True),
                )
        except Exception as exc:  # shown in the page, never as a traceback
            text = message(exc, lang, name)  # said once, in the status line
            yield status_line(text, "error"), text_box(""), [], *_hidden()

    run.click(
        recognise,
        inputs=[upload, recording, *opts.all(), page.lang],
        outputs=[status, text, segments, details, downloads],
        show_progress="hidden",  # the status line is the progress bar: one, not Gradio's two
    )


def _hidden() -> tuple[dict[str, Any], dict[str, Any]]:
    """Details and downloads of a previous run, hidden while a new one runs or after an error."""
    return gr.update(value=None, visible="hidden"), gr.update(value=None, visible="hidden")
