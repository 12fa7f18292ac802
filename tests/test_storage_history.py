"""History keeps what a recognition left out and who spoke when, and a database from before
those columns opens."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tingji.jobs.migrations import MIGRATIONS, statements
from tingji.jobs.storage import Storage
from tingji.types import ModelInfo, Omission, Segment, SpeakerTurn, Transcript


def _transcript(text: str, omitted: list[Omission]) -> Transcript:
    model = ModelInfo("whisper", "base", "-", "cpu", "int8")
    return Transcript(
        text, [Segment(0, 0.0, 1.0, text)], "zh", 0.9, 9.0, 0.1, model, omitted=omitted
    )


def test_omitted_stretches_are_kept_with_the_entry(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "history.db")
    gap = Omission(3.5, 6.25, "repetition")
    entry_id = storage.add_transcription(_transcript("你好", [gap]), name="a.wav", options={})
    entry = storage.get_transcription(entry_id)
    assert entry is not None and entry.omitted == [gap]
    plain = storage.add_transcription(_transcript("再见", []), name="b.wav", options={})
    again = storage.get_transcription(plain)
    assert again is not None and again.omitted == []


def test_a_database_from_before_the_column_opens_with_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE migrations "
        "(id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    for number, (name, sql) in enumerate(MIGRATIONS[:2], start=1):
        for statement in statements(sql):
            db.execute(statement)
        db.execute("INSERT INTO migrations VALUES (?, ?, ?)", (number, name, time.time()))
    db.execute(
        "INSERT INTO transcriptions (created_at, name, language, duration, processing_time, "
        "model, device, text, segments) VALUES (?, 'old.wav', 'zh', 2.0, 0.5, 'base', 'cpu', "
        "'旧的', '[]')",
        (time.time(),),
    )
    db.commit()
    db.close()
    storage = Storage(path)
    entries, total = storage.search()
    assert total == 1 and entries[0].text == "旧的" and entries[0].omitted == []
    assert entries[0].speakers == []


def test_speakers_are_kept_with_the_entry(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "history.db")
    model = ModelInfo("whisper", "base", "-", "cpu", "int8")
    turns = [SpeakerTurn(0.0, 1.2, "S1"), SpeakerTurn(1.0, 2.5, "S2")]
    segments = [
        Segment(0, 0.0, 1.0, "你好", speaker="S1"),
        Segment(1, 1.2, 2.5, "好", speaker="S2"),
    ]
    transcript = Transcript("你好好", segments, "zh", 0.9, 2.5, 0.1, model, speakers=turns)
    entry = storage.get_transcription(storage.add_transcription(transcript, name="a", options={}))
    assert entry is not None and entry.speakers == turns
    assert [s.speaker for s in entry.segments] == ["S1", "S2"]
