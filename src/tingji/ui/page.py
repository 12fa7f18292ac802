"""What every tab is built with: the service, the translator, the page language, scratch space."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from tingji.service import Tingji
from tingji.ui.common import Scratch
from tingji.ui.i18n import Translator
from tingji.ui.uploads import UiFiles


@dataclass
class Page:
    service: Tingji
    tr: Translator
    lang: gr.State
    """The page language, ``zh`` or ``en``; an input of every handler that writes text."""
    scratch: Scratch
    files: UiFiles
    """The UI's private folder: what a client uploaded, the only files a handler opens."""
    hotword_pickers: list[gr.Dropdown] = field(default_factory=list)
    """Hotword-list dropdowns of the recognition tabs, refreshed when a list changes."""
    model_pickers: list[gr.Dropdown] = field(default_factory=list)
    """Model dropdowns of the recognition tabs, set when the System tab loads a model."""
    on_load: list[tuple[Any, list[Any], list[Any]]] = field(default_factory=list)
    """(handler, inputs, outputs) run when the page opens."""
