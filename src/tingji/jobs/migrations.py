"""The database schema as an append-only list of migrations, recorded by name in the
``migrations`` table: never edit one that has shipped, add a new one."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[tuple[str, str]] = [
    (
        "history and jobs",
        """
        CREATE TABLE transcriptions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at REAL NOT NULL,
            name TEXT NOT NULL,
            audio_file TEXT,
            language TEXT NOT NULL,
            duration REAL NOT NULL,
            processing_time REAL NOT NULL,
            model TEXT NOT NULL,
            device TEXT NOT NULL,
            text TEXT NOT NULL,
            segments TEXT NOT NULL,
            replacements TEXT NOT NULL DEFAULT '[]',
            options TEXT NOT NULL DEFAULT '{}',
            job_id TEXT
        );
        CREATE INDEX transcriptions_created ON transcriptions(created_at);
        CREATE VIRTUAL TABLE transcriptions_fts USING fts5(
            text, name, content='transcriptions', content_rowid='id', tokenize='trigram'
        );
        CREATE TRIGGER transcriptions_ai AFTER INSERT ON transcriptions BEGIN
            INSERT INTO transcriptions_fts(rowid, text, name) VALUES (new.id, new.text, new.name);
        END;
        CREATE TRIGGER transcriptions_ad AFTER DELETE ON transcriptions BEGIN
            INSERT INTO transcriptions_fts(transcriptions_fts, rowid, text, name)
            VALUES ('delete', old.id, old.text, old.name);
        END;
        CREATE TRIGGER transcriptions_au AFTER UPDATE OF text, name ON transcriptions BEGIN
            INSERT INTO transcriptions_fts(transcriptions_fts, rowid, text, name)
            VALUES ('delete', old.id, old.text, old.name);
            INSERT INTO transcriptions_fts(rowid, text, name) VALUES (new.id, new.text, new.name);
        END;
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            status TEXT NOT NULL,
            options TEXT NOT NULL,
            model TEXT NOT NULL,
            started_at REAL,
            finished_at REAL
        );
        CREATE TABLE job_files (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            audio_file TEXT,
            size INTEGER NOT NULL,
            status TEXT NOT NULL,
            duration REAL,
            processing_time REAL,
            error TEXT,
            transcription_id INTEGER
        );
        CREATE INDEX job_files_job ON job_files(job_id, position);
        CREATE INDEX job_files_status ON job_files(status);
        """,
    ),
    (
        "hotword lists",
        """
        CREATE TABLE hotword_lists (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            terms TEXT NOT NULL,
            updated_at REAL NOT NULL
        );
        """,
    ),
    (
        "omitted stretches",
        """
        ALTER TABLE transcriptions ADD COLUMN omitted TEXT NOT NULL DEFAULT '[]';
        """,
    ),
    (
        "speaker turns",
        """
        ALTER TABLE transcriptions ADD COLUMN speakers TEXT NOT NULL DEFAULT '[]';
        """,
    ),
    (
        "speaker names in search",
        """
        ALTER TABLE transcriptions ADD COLUMN speaker_names TEXT NOT NULL DEFAULT '';
        DROP TRIGGER transcriptions_ai;
        DROP TRIGGER transcriptions_ad;
        DROP TRIGGER transcriptions_au;
        DROP TABLE transcriptions_fts;
        CREATE VIRTUAL TABLE transcriptions_fts USING fts5(
            text, name, speaker_names,
            content='transcriptions', content_rowid='id', tokenize='trigram'
        );
        CREATE TRIGGER transcriptions_ai AFTER INSERT ON transcriptions BEGIN
            INSERT INTO transcriptions_fts(rowid, text, name, speaker_names)
            VALUES (new.id, new.text, new.name, new.speaker_names);
        END;
        CREATE TRIGGER transcriptions_ad AFTER DELETE ON transcriptions BEGIN
            INSERT INTO transcriptions_fts(transcriptions_fts, rowid, text, name, speaker_names)
            VALUES ('delete', old.id, old.text, old.name, old.speaker_names);
        END;
        CREATE TRIGGER transcriptions_au AFTER UPDATE OF text, name, speaker_names
        ON transcriptions BEGIN
            INSERT INTO transcriptions_fts(transcriptions_fts, rowid, text, name, speaker_names)
            VALUES ('delete', old.id, old.text, old.name, old.speaker_names);
            INSERT INTO transcriptions_fts(rowid, text, name, speaker_names)
            VALUES (new.id, new.text, new.name, new.speaker_names);
        END;
        INSERT INTO transcriptions_fts(transcriptions_fts) VALUES ('rebuild');
        """,
    ),
    (
        "voice profiles",
        """
        CREATE TABLE voices (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            embedding BLOB NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL
        );
        """,
    ),
    (
        "transcript edits",
        """
        ALTER TABLE transcriptions ADD COLUMN original TEXT;
        ALTER TABLE transcriptions ADD COLUMN edited_at REAL;
        """,
    ),
]


def statements(sql: str) -> list[str]:
    """Split a migration into statements (triggers keep their inner semicolons)."""
    statements, current = [], ""
    for line in sql.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements
