"""Pieces shared by the tabs: the options panel, errors as messages, formatting, scratch files."""

from __future__ import annotations

import html
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gradio as gr

from tingji.engine.hotwords import parse_hotwords
from tingji.engine.pipeline import check_speaker_options
from tingji.errors import ModelError, NotFoundError, OptionError, TingjiError
from tingji.jobs.audio_store import StoredAudio
from tingji.service import Tingji
from tingji.types import TranscribeOptions
from tingji.ui.i18n import Lazy, T, Translator, language_choices, t
from tingji.ui.uploads import NotUploadedError, UiFiles

log = logging.getLogger("tingji.ui")

SCRIPTS = ("simplified", "traditional", "original")


def message(exc: BaseException, lang: str, name: str | None = None) -> str:
    """One readable line for an error (which file, what went wrong), never a traceback."""
    if isinstance(exc, NotUploadedError):  # the same whatever was named, and whether it exists
        return t("err.not_uploaded", lang)
    if isinstance(exc, ModelError) and exc.unavailable:  # not the CLI's advice: the page's
        return t("err.model_offline", lang, name=exc.unavailable)
    if isinstance(exc, OptionError) and exc.model:
        return t("err.model_unknown", lang, name=exc.model)
    if isinstance(exc, TingjiError):
        text = str(exc)
        if name and not exc.source:
            text = t("err.file", lang, name=name, error=text)
        return text
    log.exception("unexpected error in the web UI")
    return t("err.unexpected", lang, kind=type(exc).__name__)


def status_line(text: str, kind: str = "info") -> str:
    """A status note for a Markdown component: ``info``, ``ok`` or ``error`` (colour-coded)."""
    return f'<div class="tj-status tj-{kind}">{html.escape(text)}</div>'


def progress_bar(share: float, parts: list[str]) -> str:
    """A progress bar (``share`` 0–100) with a line of facts under it (``parts``: HTML)."""
    meta = "".join(f"<span>{p}</span>" for p in parts)
    return (
        f'<div class="tj-progress" data-percent="{share:.0f}">'
        f'<div class="tj-bar"><div style="width:{share:.1f}%"></div></div>'
        f'<div class="tj-meta">{meta}</div></div>'
    )


def kv_table(rows: list[tuple[str, str]], elem: str = "tj-kv") -> str:
    """Label/value rows as an HTML table (values are plain text)."""
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="{elem}">{body}</table>'


def grid_table(header: list[str], rows: list[list[str]]) -> str:
    """A small HTML table with a header row (cells are plain text)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f'<table class="tj-grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# -- options ---------------------------------------------------------------------------------
@dataclass
class OptionInputs:
    """The recognition options offered in the single-file, batch and live tabs."""

    language: gr.Dropdown
    hotwords: gr.Textbox
    hotword_list: gr.Dropdown
    itn: gr.Checkbox
    script: gr.Radio
    model: gr.Dropdown
    diarize: gr.Checkbox | None = None
    speakers: gr.Dropdown | None = None

    def all(self) -> list[Any]:
        values = [self.language, self.hotwords, self.hotword_list, self.itn, self.script]
        values.append(self.model)
        if self.diarize is not None and self.speakers is not None:
            values += [self.diarize, self.speakers]
        return values


def speaker_choices(lang: str) -> list[tuple[str, str]]:
    return [(t("opt.speakers.auto", lang), "")] + [(str(n), str(n)) for n in range(2, 11)]


def hotword_list_choices(service: Tingji, lang: str) -> list[tuple[str, str]]:
    return [(t("opt.no_list", lang), "")] + [(n, n) for n in service.history.hotword_lists()]


def script_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(f"opt.{s}", lang), s) for s in SCRIPTS]


def option_inputs(
    service: Tingji, tr: Translator, *, hotwords: bool = True, speakers: bool = False
) -> OptionInputs:
    """The options panel (inside the caller's layout); defaults come from the settings.
    ``speakers``: offer telling speakers apart (files, not live)."""
    defaults = service.options()
    language = language_input(tr, defaults.language)
    hotword_text, hotword_list = hotword_inputs(service, tr, visible=hotwords)
    script = tr(
        gr.Radio, label=T("opt.script"), choices=Lazy(script_choices), value=defaults.script
    )
    itn = tr(gr.Checkbox, label=T("opt.itn"), value=defaults.itn)
    model = model_picker(service, tr)
    tr(gr.Markdown, value=T("opt.model.hint"), elem_classes=["tj-hint"])
    options = OptionInputs(language, hotword_text, hotword_list, itn, script, model)
    if speakers:
        with gr.Row(equal_height=True):
            options.diarize = tr(
                gr.Checkbox, label=T("opt.diarize"), value=False, elem_classes=["tj-diarize"]
            )
            options.speakers = tr(
                gr.Dropdown,
                label=T("opt.speakers"),
                choices=Lazy(speaker_choices),
                value="",
                elem_classes=["tj-speakers"],
                min_width=120,
            )
    return options


DOWNLOAD_SIZES = {
    "tiny": "75 MB",
    "tiny.en": "75 MB",
    "base.en": "145 MB",
    "small": "480 MB",
    "small.en": "480 MB",
    "medium": "1.5 GB",
    "medium.en": "1.5 GB",
    "large-v1": "3 GB",
    "large-v2": "3 GB",
    "large-v3": "3 GB",
    "large": "3 GB",
    "large-v3-turbo": "1.6 GB",
    "turbo": "1.6 GB",
    "distil-large-v2": "1.5 GB",
    "distil-large-v3": "1.5 GB",
    "distil-large-v3.5": "1.5 GB",
    "distil-medium.en": "0.8 GB",
    "distil-small.en": "0.3 GB",
    "paraformer-zh": "0.9 GB",
    "iic/SenseVoiceSmall": "0.9 GB",
    "FunAudioLLM/Fun-ASR-Nano-2512": "2 GB",
}
"""Roughly what choosing a model that is not here downloads (its files on the model hub)."""


def model_choices(service: Tingji, lang: str) -> list[tuple[str, str]]:
    """(label, name) for the model pickers: the models here first, marked ready; then, where
    the operator allows downloads, the others with what they would download."""
    here = service.models_on_disk()
    offered = service.offered_models()
    ready = [(t("opt.model.ready", lang, name=m), m) for m in offered if m in here]
    fetch = [
        (t("opt.model.download", lang, name=m, size=DOWNLOAD_SIZES.get(m, "?")), m)
        for m in offered
        if m not in here
    ]
    return ready + fetch


def model_picker(service: Tingji, tr: Translator, label: str = "opt.model") -> gr.Dropdown:
    return tr(
        gr.Dropdown,
        label=T(label),
        choices=Lazy(lambda lang: model_choices(service, lang)),
        value=service.settings.model,
    )


def language_input(tr: Translator, default: str | None) -> gr.Dropdown:
    """The language picker ("" = detect)."""
    return tr(
        gr.Dropdown,
        label=T("opt.language"),
        choices=Lazy(language_choices),
        value=default or "",
        allow_custom_value=True,
        filterable=True,
    )


def hotword_inputs(
    service: Tingji, tr: Translator, *, visible: bool = True
) -> tuple[gr.Textbox, gr.Dropdown]:
    """Hotwords typed in, and a saved hotword list to add to them."""
    text = tr(
        gr.Textbox,
        label=T("opt.hotwords"),
        placeholder=T("opt.hotwords.placeholder"),
        lines=2,
        max_lines=6,
        visible=visible,
    )
    listed = tr(
        gr.Dropdown,
        label=T("opt.hotword_list"),
        choices=Lazy(lambda lang: hotword_list_choices(service, lang)),
        value="",
        visible=visible,
    )
    return text, listed


def build_options(
    service: Tingji,
    language: str | None,
    hotwords: str | None,
    hotword_list: str | None,
    itn: bool,
    script: str,
    model: str | None,
    diarize: bool = False,
    speakers: str | None = None,
) -> tuple[TranscribeOptions, str]:
    """The service's options and checked model name from the panel's values."""
    terms = parse_hotwords(hotwords or "")
    if hotword_list:
        lists = service.history.hotword_lists()
        if hotword_list not in lists:
            raise NotFoundError(f"no hotword list named '{hotword_list}'")
        terms = list(dict.fromkeys([*lists[hotword_list], *terms]))
    code = (language or "").strip().lower()
    base = service.options()
    options = replace(
        base,
        language=None if code in ("", "auto") else code,
        hotwords=tuple(terms),
        itn=bool(itn),
        script=script if script in SCRIPTS else base.script,  # type: ignore[arg-type]
        diarize=bool(diarize),
        speakers=int(speakers) if diarize and speakers and speakers.isdigit() else None,
    )
    check_speaker_options(options)
    return options, service.check_model(model)


def store(
    service: Tingji, files: UiFiles, path: str | Path, name: str | None = None
) -> StoredAudio:
    """Copy a file this page uploaded into the audio store (the client's name kept for display).

    Any other path, the server's own files among them, is refused before it is opened.
    """
    with files.open_upload(path) as stream:
        return service.save_upload(stream, name or Path(path).name)


@dataclass
class Confirm:
    """A hidden panel that asks before something is deleted: its question, yes and no."""

    box: gr.Column
    text: gr.Markdown
    yes: gr.Button
    no: gr.Button


def confirm_panel(tr: Translator, elem_id: str, question: T | None = None) -> Confirm:
    """The panel (inside the caller's layout); ``question`` fixed, or set when it opens.
    Its buttons are ``#<elem_id>-yes`` and ``#<elem_id>-no``."""
    with gr.Column(visible=False, elem_id=elem_id, elem_classes="tj-confirm") as box:
        text = tr(gr.Markdown, value=question) if question is not None else gr.Markdown()
        with gr.Row():
            yes = tr(
                gr.Button, value=T("hist.confirm_yes"), variant="stop", elem_id=f"{elem_id}-yes"
            )
            no = tr(gr.Button, value=T("hist.confirm_no"), elem_id=f"{elem_id}-no")
    return Confirm(box, text, yes, no)


# -- formatting ------------------------------------------------------------------------------
def clock(seconds: float | None, *, fraction: bool = True) -> str:
    """``1:02:03.4`` / ``02:03.4`` (or without the tenth)."""
    if seconds is None:
        return "–"
    tenths = round(max(seconds, 0.0) * 10)
    whole, tenth = divmod(tenths, 10)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
    return f"{text}.{tenth}" if fraction else text


def date_time(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def highlight(text: str, terms: list[str] | tuple[str, ...]) -> str:
    """``text`` as HTML with each hotword in a ``<mark>``."""
    words = sorted({w for w in terms if w.strip()}, key=len, reverse=True)
    if not words or not text:
        return html.escape(text)
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    out: list[str] = []
    last = 0
    for found in pattern.finditer(text):
        out.append(html.escape(text[last : found.start()]))
        out.append(f"<mark>{html.escape(found.group())}</mark>")
        last = found.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def text_box(inner_html: str, elem: str = "tj-text") -> str:
    return f'<div class="{elem}">{inner_html}</div>'


# -- scratch files for downloads -------------------------------------------------------------
class Scratch:
    """Files the page offers (downloads, the History player's audio), in the UI's private
    folder that Gradio serves (:class:`~tingji.ui.uploads.UiFiles`); old ones are pruned."""

    def __init__(self, root: Path, max_age_s: float = 6 * 3600) -> None:
        self.root = root
        self.max_age_s = max_age_s

    def new_dir(self) -> Path:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        cutoff = time.time() - self.max_age_s
        for old in self.root.iterdir():
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        target = self.root / uuid.uuid4().hex
        target.mkdir(mode=0o700)
        return target

    def offer(self, source: Path) -> str:
        """A file of the data dir (which Gradio never serves) as a link or copy in here."""
        target = self.new_dir() / source.name
        try:
            os.link(source, target)
        except OSError:  # another file system, or one without hard links
            shutil.copyfile(source, target)
        return str(target)


def safe_stem(name: str) -> str:
    stem = Path(name.replace("\\", "/")).stem
    stem = re.sub(r"[^\w.\-\u3400-\u9fff]+", "_", stem).strip("._")
    return stem[:80] or "audio"
