"""History survives a crash even after something in the server process closed a descriptor of
``history.db`` and another program then opened and closed the database.

That sequence is real: POSIX locks belong to the process, so closing *any* descriptor of the
database file drops SQLite's locks; the next outside reader (an operator's integrity check, a
backup) then thinks it is alone and deletes the ``-wal`` file the server still writes to.
The server here runs in a child process that is killed with SIGKILL, as a crash would.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tingji.jobs.storage import Storage
from tingji.types import ModelInfo, Segment, Transcript

SERVER = r"""
import sys, time
from pathlib import Path
from tingji.jobs.storage import Storage
from tingji.types import ModelInfo, Segment, Transcript

def transcript(text):
    model = ModelInfo("fake", "fake", "-", "cpu", "int8")
    return Transcript(text, [Segment(0, 0.0, 1.0, text)], "zh", 0.9, 1.0, 0.1, model)

storage = Storage(Path(sys.argv[1]))
storage.add_transcription(transcript("第一条"), name="one", options={})
open(sys.argv[1], "rb").close()  # what a request naming history.db made the server do
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "write":
        storage.add_transcription(transcript("第二条"), name="two", options={})
        print("written", flush=True)
    elif line.strip() == "state":
        state = storage.wal_state()
        print(f"state {state.intact} {state.repairs}", flush=True)
"""

OUTSIDE_READER = (
    "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
    "print(db.execute('PRAGMA integrity_check').fetchone()[0]); db.close()"
)


class Child:
    def __init__(self, database: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.read() == "ready"

    def read(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def outside_reader(database: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", OUTSIDE_READER, str(database)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def names(database: Path) -> list[str]:
    db = sqlite3.connect(database)
    try:
        return [row[0] for row in db.execute("SELECT name FROM transcriptions ORDER BY id")]
    finally:
        db.close()


def test_a_write_after_the_log_was_deleted_survives_a_kill(tmp_path: Path) -> None:
    database = tmp_path / "history.db"
    child = Child(database)
    try:
        assert outside_reader(database) == "ok"  # deletes the -wal file under the child
        assert child.ask("write") == "written"
    finally:
        child.kill()
    assert names(database) == ["one", "two"]


def test_a_lost_log_is_reported_and_reopened(tmp_path: Path) -> None:
    database = tmp_path / "history.db"
    wal = tmp_path / "history.db-wal"
    child = Child(database)
    try:
        assert child.ask("state") == "state True 0"
        outside_reader(database)
        assert not wal.exists()
        assert child.ask("state") == "state False 1"  # found, said, and reopened
        assert wal.exists()
        assert child.ask("state") == "state True 1"
        assert child.ask("write") == "written"
    finally:
        child.kill()
    assert names(database) == ["one", "two"]


def test_wal_state_of_an_untouched_database(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "history.db")
    try:
        model = ModelInfo("fake", "fake", "-", "cpu", "int8")
        text = Transcript("好", [Segment(0, 0.0, 1.0, "好")], "zh", 0.9, 1.0, 0.1, model)
        storage.add_transcription(text, name="a", options={})
        state = storage.wal_state()
        assert (state.intact, state.repairs) == (True, 0)
    finally:
        storage.close()


def test_api_system_reports_a_lost_log(tmp_path: Path) -> None:
    """/api/system says when the log was found deleted (and that it was reopened)."""
    from fastapi.testclient import TestClient

    from tingji.config import Settings
    from tingji.server.app import create_app

    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models")
    with TestClient(create_app(settings, ui=False)) as client:
        assert client.get("/api/system").json()["database"] == {
            "journal": "wal",
            "wal_intact": True,
            "wal_repairs": 0,
        }
        open(settings.database, "rb").close()  # this process loses its locks
        outside_reader(settings.database)
        found = client.get("/api/system").json()["database"]
        assert (found["wal_intact"], found["wal_repairs"]) == (False, 1)
        again = client.get("/api/system").json()["database"]
        assert (again["wal_intact"], again["wal_repairs"]) == (True, 1)
