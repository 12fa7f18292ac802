"""History keeps what a recognition left out and who spoke when, and a database from before
those columns opens. On SQLite and on PostgreSQL (``open_storage``)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from tingji.jobs.migrations import MIGRATIONS, statements
from tingji.jobs.storage import Storage
from tingji.types import ModelInfo, Omission, Segment, SpeakerTurn, Transcript


def _transcript(text: str, omitted: list[Omission]) -> Transcript:
    model = ModelInfo("whisper", "base", "-", "cpu", "int8")
    return Transcript(
        text, [Segment(0, 0.0, 1.0, text)], "zh", 0.9, 9.0, 0.1, model, omitted=omitted
    )


def test_omitted_stretches_are_kept_with_the_entry(open_storage: Callable[[], Storage]) -> None:
    storage = open_storage()
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
    for number, migration in enumerate(MIGRATIONS[:2], start=1):
        for statement in statements(migration.sqlite):
            db.execute(statement)
        db.execute("INSERT INTO migrations VALUES (?, ?, ?)", (number, migration.name, time.time()))
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


def test_speakers_are_kept_with_the_entry(open_storage: Callable[[], Storage]) -> None:
    storage = open_storage()
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


def _meeting(storage: Storage) -> int:
    model = ModelInfo("whisper", "base", "-", "cpu", "int8")
    turns = [SpeakerTurn(0.0, 2.0, "S1"), SpeakerTurn(2.0, 5.0, "S2")]
    segments = [
        Segment(0, 0.0, 2.0, "今天讨论预算", speaker="S1"),
        Segment(1, 2.0, 3.5, "我同意", speaker="S2"),
        Segment(2, 3.5, 5.0, "下周再定", speaker="S2"),
    ]
    transcript = Transcript(
        "今天讨论预算我同意下周再定", segments, "zh", 0.9, 5.0, 0.1, model, speakers=turns
    )
    return storage.add_transcription(transcript, name="周会.wav", options={})


def test_a_corrected_segment_is_saved_searched_and_the_recognition_kept(
    open_storage: Callable[[], Storage],
) -> None:
    from tingji import edits

    storage = open_storage()
    entry_id = _meeting(storage)
    entry = storage.update_transcription(
        entry_id, lambda e: edits.edit_segment(e, 1, text="我不同意", speaker="S1")
    )
    assert entry is not None
    assert entry.text == "今天讨论预算我不同意下周再定"
    assert [(s.text, s.speaker) for s in entry.segments] == [
        ("今天讨论预算", "S1"),
        ("我不同意", "S1"),
        ("下周再定", "S2"),
    ]
    assert entry.original is not None and entry.original[1].text == "我同意"
    assert entry.original[1].speaker == "S2" and entry.edited_at is not None
    # S2's speech in that segment is now S1's; S1's turns join up
    assert entry.speakers == [SpeakerTurn(0.0, 3.5, "S1"), SpeakerTurn(3.5, 5.0, "S2")]
    assert edits.edited(entry) == [False, True, False]
    # searched by the correction (long and short queries), not by what it replaced
    assert [e.id for e in storage.search("我不同意")[0]] == [entry_id]
    assert [e.id for e in storage.search("不同")[0]] == [entry_id]
    assert storage.search("预算我同意")[0] == []
    # a second correction keeps the first recognition, not the first correction
    again = storage.update_transcription(entry_id, lambda e: edits.edit_segment(e, 1, text="好"))
    assert again is not None and again.original is not None and again.original[1].text == "我同意"
    # a rename reaches the kept original too (a name is a label, not a correction)
    renamed = storage.update_transcription(entry_id, lambda e: edits.rename_speaker(e, "S2", "李"))
    assert renamed is not None and renamed.original is not None
    assert [s.speaker for s in renamed.original] == ["S1", "李", "李"]
    # put back: as recognised (under its new name), and no longer marked as corrected
    back = storage.update_transcription(entry_id, lambda e: edits.revert_segment(e, 1))
    assert back is not None and back.original is None and back.edited_at is None
    assert back.text == "今天讨论预算我同意下周再定"
    assert back.speakers == [SpeakerTurn(0.0, 2.0, "S1"), SpeakerTurn(2.0, 5.0, "李")]
    reopened = open_storage().get_transcription(entry_id)
    assert reopened == back


def test_corrections_at_the_same_time_are_all_kept(open_storage: Callable[[], Storage]) -> None:
    import threading

    from tingji import edits

    entry_id = _meeting(open_storage())
    stores = [open_storage() for _ in range(3)]  # three connections, as three servers would

    def correct(i: int) -> None:
        for n in range(5):
            stores[i].update_transcription(
                entry_id, lambda e, i=i, n=n: edits.edit_segment(e, i, text=f"第{i}段第{n}次")
            )

    threads = [threading.Thread(target=correct, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entry = open_storage().get_transcription(entry_id)
    assert entry is not None
    assert [s.text for s in entry.segments] == ["第0段第4次", "第1段第4次", "第2段第4次"]
    assert entry.original is not None
    assert [s.text for s in entry.original] == ["今天讨论预算", "我同意", "下周再定"]
