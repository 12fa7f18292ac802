"""Writing a transcript as txt, srt, vtt, json or csv."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

from tingji.types import Segment, Transcript

FORMATS = ("txt", "srt", "vtt", "json", "csv")


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_txt(transcript: Transcript) -> str:
    return transcript.text + "\n"


def _cues(segments: list[Segment]) -> list[tuple[float, float, str]]:
    cues = []
    for seg in segments:
        end = seg.end if seg.end > seg.start else seg.start + 0.5
        cues.append((seg.start, end, seg.text.replace("\n", " ").strip()))
    return cues


def to_srt(transcript: Transcript) -> str:
    blocks = [
        f"{n}\n{_timestamp(start, ',')} --> {_timestamp(end, ',')}\n{text}\n"
        for n, (start, end, text) in enumerate(_cues(transcript.segments), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript) -> str:
    blocks = ["WEBVTT\n"]
    blocks += [
        f"{_timestamp(start, '.')} --> {_timestamp(end, '.')}\n{text.replace('-->', '->')}\n"
        for start, end, text in _cues(transcript.segments)
    ]
    return "\n".join(blocks)


def to_json(transcript: Transcript) -> str:
    return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=2) + "\n"


def to_csv(transcript: Transcript) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["start", "end", "text"])
    for seg in transcript.segments:
        writer.writerow([f"{seg.start:.3f}", f"{seg.end:.3f}", seg.text])
    return out.getvalue()


WRITERS: dict[str, Callable[[Transcript], str]] = {
    "txt": to_txt,
    "srt": to_srt,
    "vtt": to_vtt,
    "json": to_json,
    "csv": to_csv,
}


def render(transcript: Transcript, fmt: str) -> str:
    return WRITERS[fmt](transcript)
