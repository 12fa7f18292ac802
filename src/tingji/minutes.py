"""Minutes a secretary can hand out: a history entry as Markdown or as a Word document.

Title (the recording's name), date, duration and participants, then one paragraph per turn:
``[00:01:12] 王经理：…`` (consecutive segments of one speaker merged; the text as last edited).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import PurePosixPath

from tingji.engine.text import join_segments
from tingji.formats import speaker_runs
from tingji.types import HistoryEntry

LABELS = {
    "zh": {
        "date": "日期",
        "duration": "时长",
        "participants": "参与者",
        "none": "（未区分说话人）",
    },
    "en": {
        "date": "Date",
        "duration": "Duration",
        "participants": "Participants",
        "none": "(speakers not told apart)",
    },
}


@dataclass(frozen=True)
class Paragraph:
    start: float
    speaker: str
    text: str


def _clock(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def paragraphs(entry: HistoryEntry) -> list[Paragraph]:
    return [
        Paragraph(run[0].start, speaker, join_segments([s.text for s in run], entry.language))
        for speaker, run in speaker_runs(entry.segments)
    ]


def participants(entry: HistoryEntry) -> list[str]:
    return list(dict.fromkeys(s.speaker for s in entry.segments if s.speaker))


def _title(entry: HistoryEntry) -> str:
    return PurePosixPath(entry.name.replace("\\", "/")).stem or entry.name


def _labels(entry: HistoryEntry) -> dict[str, str]:
    return LABELS["zh" if entry.language in ("zh", "yue") else "en"]


def _colon(entry: HistoryEntry) -> str:
    return "：" if entry.language in ("zh", "yue", "ja") else ": "


def _date(entry: HistoryEntry) -> str:
    return dt.datetime.fromtimestamp(entry.created_at).strftime("%Y-%m-%d %H:%M")


def to_markdown(entry: HistoryEntry) -> str:
    labels, colon = _labels(entry), _colon(entry)
    people = participants(entry)
    lines = [
        f"# {_md(_title(entry))}",
        "",
        f"- {labels['date']}{colon}{_date(entry)}",
        f"- {labels['duration']}{colon}{_clock(entry.duration)}",
        f"- {labels['participants']}{colon}{_md('、'.join(people)) if people else labels['none']}",
        "",
    ]
    for p in paragraphs(entry):
        who = f"**{_md(p.speaker)}**{colon}" if p.speaker else ""
        lines += [f"[{_clock(p.start)}] {who}{_md(p.text)}", ""]
    return "\n".join(lines)


_MD_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_{}[]<>#|"})


def _md(text: str) -> str:
    """Text that Markdown shows as written (no markup, no HTML from a transcript)."""
    return text.translate(_MD_SPECIAL)


def to_docx(entry: HistoryEntry) -> bytes:
    from docx import Document  # python-docx, imported only here

    labels, colon = _labels(entry), _colon(entry)
    people = participants(entry)
    document = Document()
    document.add_heading(_title(entry), level=1)
    document.add_paragraph(f"{labels['date']}{colon}{_date(entry)}")
    document.add_paragraph(f"{labels['duration']}{colon}{_clock(entry.duration)}")
    document.add_paragraph(
        f"{labels['participants']}{colon}{'、'.join(people) if people else labels['none']}"
    )
    for p in paragraphs(entry):
        paragraph = document.add_paragraph()
        paragraph.add_run(f"[{_clock(p.start)}] ")
        if p.speaker:
            paragraph.add_run(f"{p.speaker}{colon}").bold = True
        paragraph.add_run(_printable(p.text))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _printable(text: str) -> str:
    """XML 1.0 has no place for most control characters: they are dropped."""
    return "".join(ch for ch in text if ch in "\t\n" or ord(ch) >= 32)
