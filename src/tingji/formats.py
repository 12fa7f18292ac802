"""Writing a transcript as txt, srt, vtt, json, csv or rttm.

When speakers were told apart, every format says who speaks: txt has one paragraph per turn
(``[S1] …``), SRT and VTT cues begin with ``[S1]`` (or the speaker's name), CSV gains a
``speaker`` column, JSON a ``speaker`` per segment and the ``speakers`` turns, and RTTM (the
standard 10-field speaker-turn format of NIST evaluations) lists the turns.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

from tingji.engine.text import join_segments
from tingji.types import Segment, Transcript

FORMATS = ("txt", "srt", "vtt", "json", "csv", "rttm")


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _diarized(transcript: Transcript) -> bool:
    return any(seg.speaker for seg in transcript.segments)


def speaker_runs(segments: list[Segment]) -> list[tuple[str, list[Segment]]]:
    """Consecutive segments of one speaker, together."""
    runs: list[tuple[str, list[Segment]]] = []
    for seg in segments:
        speaker = seg.speaker or ""
        if runs and runs[-1][0] == speaker:
            runs[-1][1].append(seg)
        else:
            runs.append((speaker, [seg]))
    return runs


def to_txt(transcript: Transcript) -> str:
    if not _diarized(transcript):
        return transcript.text + "\n"
    paragraphs = [
        f"[{speaker}] " + join_segments([s.text for s in run], transcript.language)
        for speaker, run in speaker_runs(transcript.segments)
    ]
    return "\n\n".join(paragraphs) + "\n"


def _cues(segments: list[Segment]) -> list[tuple[float, float, str]]:
    cues = []
    for seg in segments:
        end = seg.end if seg.end > seg.start else seg.start + 0.5
        text = seg.text.replace("\n", " ").strip()
        if seg.speaker:
            text = f"[{seg.speaker}] {text}"
        cues.append((seg.start, end, text))
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
    if _diarized(transcript):
        writer.writerow(["start", "end", "speaker", "text"])
        for seg in transcript.segments:
            writer.writerow([f"{seg.start:.3f}", f"{seg.end:.3f}", seg.speaker or "", seg.text])
        return out.getvalue()
    writer.writerow(["start", "end", "text"])
    for seg in transcript.segments:
        writer.writerow([f"{seg.start:.3f}", f"{seg.end:.3f}", seg.text])
    return out.getvalue()


def _rttm_field(text: str, fallback: str) -> str:
    """One RTTM field: no white space inside (it separates the fields)."""
    cleaned = "_".join(text.split())
    return cleaned or fallback


def to_rttm(transcript: Transcript) -> str:
    """``SPEAKER <file> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>`` per turn."""
    stem = (transcript.source or "audio").replace("\\", "/").rsplit("/", 1)[-1]
    uri = _rttm_field(stem.rsplit(".", 1)[0] if "." in stem else stem, "audio")
    lines = [
        f"SPEAKER {uri} 1 {turn.start:.3f} {max(0.0, turn.end - turn.start):.3f} <NA> <NA> "
        f"{_rttm_field(turn.speaker, 'speaker')} <NA> <NA>"
        for turn in sorted(transcript.speakers, key=lambda t: (t.start, t.speaker))
    ]
    return "".join(line + "\n" for line in lines)


WRITERS: dict[str, Callable[[Transcript], str]] = {
    "txt": to_txt,
    "srt": to_srt,
    "vtt": to_vtt,
    "json": to_json,
    "csv": to_csv,
    "rttm": to_rttm,
}


def render(transcript: Transcript, fmt: str) -> str:
    return WRITERS[fmt](transcript)
