"""``tingji db migrate`` and ``tingji db copy``: a SQLite history moved into PostgreSQL whole,
searchable, with its audio; never twice; the password never shown."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tingji import edits
from tingji.cli import main
from tingji.config import Settings
from tingji.jobs.migrations import MIGRATIONS
from tingji.jobs.storage import Storage
from tingji.types import ModelInfo, Segment, SpeakerTurn, Transcript

from .pg import PASSWORD, Cluster

MODEL = ModelInfo("whisper", "base", "-", "cpu", "int8")


def _history(data: Path) -> Storage:
    """A SQLite history as a server leaves it: entries (one corrected, with speakers), a job
    with a finished and a queued file, hotword lists, a voice and stored audio."""
    storage = Storage(data / "history.db")
    (data / "audio").mkdir()
    (data / "audio" / "20260101-a.wav").write_bytes(b"RIFF" + bytes(range(256)) * 9000)
    segments = [
        Segment(0, 0, 2, "今天讨论预算", speaker="S1"),
        Segment(1, 2, 4, "我同意", speaker="S2"),
    ]
    meeting = Transcript(
        "今天讨论预算我同意", segments, "zh", 0.9, 4.0, 0.5, MODEL,
        speakers=[SpeakerTurn(0, 2, "S1"), SpeakerTurn(2, 4, "S2")],
    )  # fmt: skip
    first = storage.add_transcription(
        meeting, name="周会.wav", options={"language": "zh"}, audio_file="20260101-a.wav"
    )
    storage.update_transcription(first, lambda e: edits.rename_speaker(e, "S2", "王经理"))
    storage.update_transcription(first, lambda e: edits.edit_segment(e, 1, text="我不同意"))
    for n in range(1200):  # more than a page
        text = f"第{n}条记录"
        storage.add_transcription(
            Transcript(text, [Segment(0, 0, 1, text)], "zh", 0.9, 1.0, 0.1, MODEL),
            name=f"{n}.wav",
            options={},
        )
    storage.create_job(
        "job1", [("a.wav", "20260101-a.wav", 10), ("b.wav", None, 5)], options={}, model="base"
    )  # type: ignore[list-item]
    claimed = storage.next_queued_file(owner="old", lease_s=60, node="box")
    assert claimed is not None
    storage.finish_file("job1", claimed[1].id, meeting, {}, node="box")
    storage.save_hotword_list("会议", ["达摩院", "预算"])
    storage.save_voice("王经理", np.arange(8, dtype=np.float32), "entry 1, S2")
    return storage


def test_copy_moves_a_sqlite_history_into_postgresql_and_on(
    tmp_path: Path, pg_url: str, pg_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    source = _history(data)
    before = source.get_transcription(1)
    job_before = source.get_job("job1")
    source.close()
    assert main(["--data-dir", str(data), "db", "copy", "--to", pg_url]) == 0
    out = capsys.readouterr()
    assert "copied 1202 history entries, 1 jobs, 2 job files, 1 hotword lists, 1 voices" in out.out
    assert "1 audio files" in out.out and "history entries: 1202/1202" in out.err
    assert PASSWORD not in out.out + out.err

    target = Storage(pg_url)
    try:
        assert target.get_transcription(1) == before  # corrections, speakers, names
        job_after = target.get_job("job1")
        assert job_before is not None and job_after is not None
        assert replace(job_after, elapsed=0.0) == replace(job_before, elapsed=0.0)  # running
        assert [e.id for e in target.search("不同意")[0]] == [1]
        assert [e.id for e in target.search("王经理")[0]] == [1]  # a renamed speaker
        assert target.search("第11")[1] == 111  # 第11条, 第110..119条, 第1100..1199条
        assert target.hotword_lists() == {"会议": ["达摩院", "预算"]}
        (voice,) = target.voices()
        np.testing.assert_array_equal(voice.embedding, np.arange(8, dtype=np.float32))
        fetched = tmp_path / "fetched.wav"
        assert target.fetch_audio("20260101-a.wav", fetched)
        assert fetched.read_bytes() == (data / "audio" / "20260101-a.wav").read_bytes()
        text = Transcript("新的", [Segment(0, 0, 1, "新的")], "zh", 0.9, 1.0, 0.1, MODEL)
        assert target.add_transcription(text, name="new.wav", options={}) == 1203
        queued = target.next_queued_file()
        assert queued is not None and queued[1].name == "b.wav"  # the queue goes on
    finally:
        target.close()

    # a second copy is refused, and leaves the target as it is
    assert main(["--data-dir", str(data), "db", "copy", "--to", pg_url]) == 2
    err = capsys.readouterr().err
    assert "already holds 1203 history entries" in err and "copy into an empty database" in err
    assert PASSWORD not in err and "***" in err

    # from one PostgreSQL database into another: the audio comes from the database
    onward = pg_cluster.new_database()
    assert main(["db", "copy", "--from", pg_url, "--to", onward]) == 0
    assert "copied 1203 history entries" in capsys.readouterr().out
    moved = Storage(onward)
    try:
        assert moved.fetch_audio("20260101-a.wav", tmp_path / "again.wav")
        assert (tmp_path / "again.wav").read_bytes() == fetched.read_bytes()
        assert moved.get_transcription(1) == before
    finally:
        moved.close()


def test_migrate_says_what_it_applied(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "migrate", "--database-url", pg_url]) == 0
    out = capsys.readouterr().out
    assert "applied history and jobs, hotword lists" in out and "shared database" in out
    assert f"up to date ({len(MIGRATIONS)} migrations)" in out and PASSWORD not in out
    assert main(["db", "migrate", "--database-url", pg_url]) == 0
    assert "applied" not in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path / "d"), "db", "migrate"]) == 0
    assert "history.db: applied history and jobs" in capsys.readouterr().out


def test_an_unreachable_database_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("psycopg_pool")
    url = f"postgresql://tingji:{PASSWORD}@127.0.0.1:9/tingji"  # nothing listens on port 9
    assert main(["db", "migrate", "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tingji: error: cannot connect to the database postgresql://tingji:***@")
    assert err.count("\n") == 1 and PASSWORD not in err and "Traceback" not in err


def test_the_database_url_is_shown_without_its_password() -> None:
    settings = Settings(database_url=f"postgresql://tingji:{PASSWORD}@db.lan:5432/t")
    assert settings.database_shown == "PostgreSQL postgresql://tingji:***@db.lan:5432/t"
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())
    other = Settings(database_url=f"postgresql://db.lan/t?user=x&password={PASSWORD}")
    assert PASSWORD not in other.database_shown
    with pytest.raises(ValueError, match="postgresql://"):
        Settings(database_url="mysql://x@y/z")


def test_serve_with_an_unreachable_database_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("psycopg_pool")
    monkeypatch.setenv("TINGJI_DATABASE_URL", f"postgresql://tingji:{PASSWORD}@127.0.0.1:9/t")
    monkeypatch.setenv("TINGJI_DATABASE_TIMEOUT_S", "2")
    assert main(["--data-dir", str(tmp_path / "data"), "serve", "--port", "9"]) == 2
    err = capsys.readouterr().err
    assert "tingji: error: cannot connect to the database postgresql://tingji:***@" in err
    assert PASSWORD not in err and "Traceback" not in err


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_sqlite_never_imports_psycopg(tmp_path: Path) -> None:
    done = _python(
        "import sys\n"
        "from tingji.config import Settings\n"
        "from tingji.service import Tingji\n"
        f"service = Tingji(Settings(data_dir={str(tmp_path)!r}))\n"
        "service.history.save_hotword_list('a', ['b'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('psycopg')))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_missing_psycopg_says_how_to_install_it() -> None:
    done = _python(
        "import sys\n"
        "sys.modules['psycopg'] = None\n"
        "from tingji.cli import main\n"
        f"sys.exit(main(['db', 'migrate', '--database-url', 'postgresql://u:{PASSWORD}@h/d']))\n"
    )
    assert done.returncode == 2 and PASSWORD not in done.stderr
    assert done.stderr.strip() == (
        "tingji: error: a postgresql:// database needs psycopg: pip install 'tingji[scale]'  "
        "(or: pip install 'psycopg[binary,pool]')"
    )
