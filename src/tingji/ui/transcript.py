"""The History tab's transcript view: the entry's segments as a list to read, play and correct.

Click a segment to play the recording from there; the segment being played is highlighted and
the words searched for are marked. A segment's pencil opens it for correction in place (its
text, and who says it); the correction is saved at once (the recognition kept beside it, with a
button to put it back). Each speaker has a button that plays a sample of their voice. What runs
in the browser is ``transcript.js``; it calls :func:`corrector`'s function on the server.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tingji import edits
from tingji.errors import OptionError, TingjiError
from tingji.service import Tingji
from tingji.types import HistoryEntry, Segment
from tingji.ui.common import clock, highlight, message
from tingji.ui.i18n import t

SCRIPT = Path(__file__).with_name("transcript.js")
SAMPLE_SECONDS = 8.0
"""The longest sample of a speaker's voice that the play button plays."""


def script() -> str:
    return SCRIPT.read_text(encoding="utf-8")


def player(audio_url: str | None, lang: str) -> str:
    """The entry's recording as a plain ``<audio>`` that the transcript drives."""
    if not audio_url:
        return f'<div class="tj-player-none">{html.escape(t("hist.no_audio", lang))}</div>'
    return (
        f'<audio id="tj-hist-audio" controls preload="metadata" '
        f'src="{html.escape(audio_url)}"></audio>'
    )


def render(entry: HistoryEntry | None, lang: str, query: str = "") -> str:
    """The transcript of ``entry`` as HTML (every text escaped; search hits in ``<mark>``)."""
    if entry is None:
        return '<div class="tj-transcript tj-empty"></div>'  # the entry line says so
    labels = {
        "data-entry": str(entry.id),
        "data-lang": lang,
        "data-save": t("edit.save", lang),
        "data-cancel": t("edit.cancel", lang),
        "data-speaker": t("edit.speaker", lang),
        "data-text": t("edit.text", lang),
        "data-saving": t("edit.saving", lang),
    }
    attrs = " ".join(f'{k}="{html.escape(v)}"' for k, v in labels.items())
    parts = [f'<div class="tj-transcript" {attrs}>']
    speakers = _speakers(entry.segments)
    if speakers:
        parts.append(_participants(entry.segments, speakers, lang))
        options = "".join(f'<option value="{html.escape(s)}"></option>' for s in speakers)
        parts.append(f'<datalist id="tj-hist-speaker-list">{options}</datalist>')
    changed = edits.edited(entry)
    for i, segment in enumerate(entry.segments):
        original = entry.original[i] if entry.original is not None and changed[i] else None
        parts.append(_segment(i, segment, original, query, lang))
    if not entry.segments:
        parts.append(f'<div class="tj-empty">{html.escape(t("edit.nothing", lang))}</div>')
    parts.append("</div>")
    return "".join(parts)


def corrector(service: Tingji) -> Callable[..., Any]:
    """The function the page calls to correct or restore a segment: it answers the entry's
    transcript rendered again, or a message saying what was wrong (in the page's language).
    Everything it gets is checked here or by the service: a client may send anything."""

    def correct(data: Any) -> dict[str, Any]:
        """``data``: [entry id, segment index, "edit" or "revert", text, speaker, page
        language, search query], as the page sends it."""
        if not isinstance(data, list) or len(data) != 7:
            return {"ok": False, "message": t("err.unexpected", "zh", kind="request")}
        entry_id, index, action, text, speaker, lang, query = data
        language = lang if lang in ("zh", "en") else "zh"
        try:
            number, position = _whole(entry_id), _whole(index)
            if action == "revert":
                entry = service.revert_segment(number, position)
            elif action == "edit":
                entry = _edit(service, number, position, text, speaker, language)
            else:
                raise OptionError("unknown action")
        except TingjiError as exc:
            return {"ok": False, "message": message(exc, language)}
        shown = query[:200] if isinstance(query, str) else ""
        return {"ok": True, "html": render(entry, language, shown)}

    return correct


def _edit(
    service: Tingji, entry_id: int, index: int, text: Any, speaker: Any, lang: str
) -> HistoryEntry:
    """Save what changed of a segment (an unchanged text or speaker is not a correction)."""
    said = text if isinstance(text, str) else None
    who = speaker if isinstance(speaker, str) and speaker.strip() else None
    if said is not None and not said.strip():
        raise OptionError(t("edit.empty", lang))
    if said is not None and len(said) > edits.MAX_SEGMENT_TEXT:
        raise OptionError(t("edit.too_long", lang, limit=edits.MAX_SEGMENT_TEXT))
    if who is not None and (len(who.strip()) > 64 or not who.strip().isprintable()):
        raise OptionError(t("edit.bad_speaker", lang))
    before = service.get_entry(entry_id)
    if 0 <= index < len(before.segments):
        current = before.segments[index]
        if said is not None and " ".join(said.split()) == current.text:
            said = None
        if who is not None and " ".join(who.split()) == current.speaker:
            who = None
        if said is None and who is None:
            return before
    return service.edit_segment(entry_id, index, text=said, speaker=who)


def _whole(value: Any) -> int:
    """A whole number as the page sends it (JSON may make it a float or a string)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise OptionError(f"not a whole number: {type(value).__name__}")
    try:
        return int(value)
    except ValueError as exc:
        raise OptionError("not a whole number") from exc


def _speakers(segments: list[Segment]) -> list[str]:
    return list(dict.fromkeys(s.speaker for s in segments if s.speaker))


def _participants(segments: list[Segment], speakers: list[str], lang: str) -> str:
    """One chip per speaker: the name, how long they talk, a button playing their voice."""
    chips = []
    for name in speakers:
        mine = [s for s in segments if s.speaker == name]
        talk = sum(s.end - s.start for s in mine)
        longest = max(mine, key=lambda s: s.end - s.start)
        end = min(longest.end, longest.start + SAMPLE_SECONDS)
        chips.append(
            f'<span class="tj-person">'
            f'<button class="tj-sample" data-start="{longest.start:.2f}" data-end="{end:.2f}" '
            f'title="{html.escape(t("edit.sample", lang, name=name))}">▶</button>'
            f'<b>{html.escape(name)}</b> <span class="tj-talk">{clock(talk, fraction=False)}'
            f"</span></span>"
        )
    label = html.escape(t("edit.participants", lang))
    return f'<div class="tj-people"><span>{label}</span>{"".join(chips)}</div>'


def _segment(i: int, segment: Segment, original: Segment | None, query: str, lang: str) -> str:
    speaker = (
        f'<span class="tj-seg-spk">{html.escape(segment.speaker)}</span>' if segment.speaker else ""
    )
    classes = "tj-seg tj-edited" if original is not None else "tj-seg"
    out = [
        f'<div class="{classes}" data-i="{i}" data-start="{segment.start:.2f}" '
        f'data-end="{segment.end:.2f}" data-speaker="{html.escape(segment.speaker or "")}" '
        f'title="{html.escape(t("edit.play", lang))}">',
        f'<span class="tj-seg-time">{clock(segment.start, fraction=False)}</span>',
        speaker,
        f'<span class="tj-seg-text">{highlight(segment.text, [query.strip()])}</span>',
        f'<button class="tj-seg-edit" title="{html.escape(t("edit.edit", lang))}">✎</button>',
    ]
    if original is not None:
        was = f"[{original.speaker}] {original.text}" if original.speaker else original.text
        out.append(
            f'<div class="tj-seg-orig"><span class="tj-badge">'
            f"{html.escape(t('edit.edited', lang))}</span> "
            f"{html.escape(t('edit.original', lang))}{html.escape(was)} "
            f'<button class="tj-seg-revert">{html.escape(t("edit.revert", lang))}</button></div>'
        )
    out.append("</div>")
    return "".join(out)
