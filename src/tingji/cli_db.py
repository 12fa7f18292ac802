"""``tingji db``: apply the database's migrations, or copy a history into PostgreSQL."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tingji.config import Settings, mask_url
from tingji.errors import DatabaseError, OptionError

if TYPE_CHECKING:
    from tingji.jobs.storage import Storage

HELP = """\
The database of history, jobs, hotword lists and voices (数据库): SQLite in DATA_DIR/history.db
by default, or PostgreSQL with TINGJI_DATABASE_URL=postgresql://USER:PASSWORD@HOST/DB, which
several `tingji serve` share (one history, one job queue).

Examples:
  tingji db migrate                                         bring the schema up to date
  tingji db copy --to postgresql://tingji:PASSWORD@db.lan/tingji
                                          move this machine's history to PostgreSQL (迁移历史)
"""


def add_parser(sub: Any) -> None:
    db = sub.add_parser(
        "db",
        help="migrate the database, or copy the history to PostgreSQL (数据库)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = db.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    migrate = actions.add_parser(
        "migrate",
        help="apply the migrations the database lacks (servers apply them at start too)",
        description="Apply the schema migrations the database lacks, and say which.",
    )
    migrate.add_argument(
        "--database-url",
        metavar="URL",
        help="postgresql://... or a SQLite file (default TINGJI_DATABASE_URL, else "
        "DATA_DIR/history.db)",
    )
    copy = actions.add_parser(
        "copy",
        help="copy history, jobs, hotword lists, voices and stored audio into PostgreSQL",
        description="Copy history, jobs and their files, hotword lists, voices and corrections "
        "(ids kept), and the stored audio they refer to, into an empty PostgreSQL database. "
        "Stop the servers that use the source first. A target that holds anything is refused.",
    )
    copy.add_argument("--to", required=True, metavar="URL", help="postgresql://USER:PASSWORD@...")
    copy.add_argument(
        "--from",
        dest="source",
        metavar="SOURCE",
        help="a SQLite file (its audio beside it, in audio/) or a postgresql:// URL "
        "(default: the configured database)",
    )


def run_db(args: argparse.Namespace, settings: Settings) -> int:
    if args.db_action == "migrate":
        storage = _open(args.database_url or _configured(settings))
        try:
            count = len(storage._query("SELECT id FROM migrations"))
        finally:
            storage.close()
        if storage.migrated:
            print(f"{storage.location}: applied {', '.join(storage.migrated)}")
        print(f"{storage.location}: up to date ({count} migrations)")
        return 0
    from tingji.jobs.copy import copy_database
    from tingji.jobs.postgres import is_postgres_url

    if not is_postgres_url(args.to):
        raise OptionError("--to must be a postgresql://USER:PASSWORD@HOST/DB URL")
    source_name = args.source or _configured(settings)
    if is_postgres_url(source_name):
        audio_dir = None
    else:
        if not Path(source_name).is_file():
            raise DatabaseError(f"no history database at {source_name}")
        audio_dir = Path(source_name).parent / "audio"
    source = _open(source_name)
    try:
        target = _open(args.to)
        try:
            print(f"copying {source.location} into {target.location}", flush=True)
            copied = copy_database(source, target, audio_dir=audio_dir, progress=_progress)
        finally:
            target.close()
    finally:
        source.close()
    print("copied " + ", ".join(f"{n} {what}" for what, n in copied.items()))
    return 0


def _configured(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return str(settings.database)


def _open(name: str) -> Storage:
    from tingji.jobs.postgres import is_postgres_url
    from tingji.jobs.storage import Storage

    if not is_postgres_url(name) and "://" in name:
        raise OptionError(f"not a database: {mask_url(name)} (a postgresql:// URL or a file)")
    return Storage(name)


def _progress(what: str, done: int, total: int) -> None:
    if done == total or done % 5000 < 500:
        print(f"  {what}: {done}/{total}", file=sys.stderr, flush=True)
