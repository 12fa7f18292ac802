"""Corrections of a saved transcript, as pure functions of the entry: a segment's text or
speaker edited (the recognition as it came kept beside, the first time), put back, or a speaker
renamed throughout. The whole text and the speaker turns follow, so that search, every export
and the minutes read the corrected transcript."""

from __future__ import annotations

from dataclasses import replace

from tingji.engine.text import join_segments
from tingji.types import HistoryEntry, Segment, SpeakerTurn

MAX_SEGMENT_TEXT = 2000
"""Characters a corrected segment may hold."""


def edit_segment(
    entry: HistoryEntry, index: int, *, text: str | None = None, speaker: str | None = None
) -> HistoryEntry:
    """``entry`` with segment ``index`` (0-based) saying ``text`` and/or said by ``speaker``."""
    original = entry.original if entry.original is not None else list(entry.segments)
    segments = list(entry.segments)
    old = segments[index]
    new = replace(old, text=old.text if text is None else text)
    turns = entry.speakers
    if speaker is not None and speaker != old.speaker:
        if old.speaker is not None:
            turns = relabel_turns(turns, old.start, old.end, old.speaker, speaker)
        else:
            turns = _merged([*turns, SpeakerTurn(old.start, old.end, speaker)])
        new = replace(new, speaker=speaker)
    segments[index] = new
    return _settled(entry, segments, turns, original)


def revert_segment(entry: HistoryEntry, index: int) -> HistoryEntry:
    """``entry`` with segment ``index`` as it was recognised."""
    if entry.original is None or index >= len(entry.original):
        return entry
    first = entry.original[index]
    return edit_segment(entry, index, text=first.text, speaker=first.speaker)


def rename_speaker(entry: HistoryEntry, old: str, new: str) -> HistoryEntry:
    """``entry`` with speaker ``old`` called ``new`` everywhere (the kept original too: a name
    is a label, not a correction). Renaming onto another speaker's name joins the two."""

    def named(seg: Segment) -> Segment:
        return replace(seg, speaker=new) if seg.speaker == old else seg

    turns = [replace(t, speaker=new) if t.speaker == old else t for t in entry.speakers]
    original = None if entry.original is None else [named(s) for s in entry.original]
    return _settled(entry, [named(s) for s in entry.segments], _merged(turns), original)


def speakers_of(entry: HistoryEntry) -> set[str]:
    return {s.speaker for s in entry.segments if s.speaker} | {t.speaker for t in entry.speakers}


def edited(entry: HistoryEntry) -> list[bool]:
    """For each segment, whether it differs from the recognition."""
    if entry.original is None:
        return [False] * len(entry.segments)
    return [
        (s.text, s.speaker) != (o.text, o.speaker)
        for s, o in zip(entry.segments, entry.original, strict=True)
    ]


def relabel_turns(
    turns: list[SpeakerTurn], start: float, end: float, old: str, new: str
) -> list[SpeakerTurn]:
    """``old``'s speech between ``start`` and ``end`` given to ``new``; other speakers' turns
    there (overlapping speech) are left as they are."""
    out: list[SpeakerTurn] = []
    for turn in turns:
        if turn.speaker != old or turn.end <= start or turn.start >= end:
            out.append(turn)
            continue
        if turn.start < start:
            out.append(replace(turn, end=start))
        out.append(replace(turn, start=max(turn.start, start), end=min(turn.end, end), speaker=new))
        if turn.end > end:
            out.append(replace(turn, start=end))
    return _merged(out)


def _merged(turns: list[SpeakerTurn]) -> list[SpeakerTurn]:
    """Turns in time order, touching or overlapping turns of one speaker joined."""
    out: list[SpeakerTurn] = []
    last: dict[str, int] = {}
    for turn in sorted(turns, key=lambda t: (t.start, t.end)):
        i = last.get(turn.speaker)
        if i is not None and turn.start <= out[i].end + 1e-6:
            out[i] = replace(out[i], end=max(out[i].end, turn.end))
            continue
        last[turn.speaker] = len(out)
        out.append(turn)
    return out


def _settled(
    entry: HistoryEntry,
    segments: list[Segment],
    turns: list[SpeakerTurn],
    original: list[Segment] | None,
) -> HistoryEntry:
    changed = replace(entry, segments=segments, speakers=turns, original=original)
    if original is not None and not any(edited(changed)):
        original = None  # every correction taken back: the entry is as recognised again
    text = entry.text
    if [s.text for s in segments] != [s.text for s in entry.segments]:
        text = join_segments([s.text for s in segments], entry.language)
    return replace(changed, original=original, text=text)
