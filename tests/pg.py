"""A temporary PostgreSQL cluster for the tests, from Debian's server binaries
(``/usr/lib/postgresql/<version>/bin``; ``.ci/run`` installs the ``postgresql`` package).

One cluster per test session, on 127.0.0.1 at a free port (in the session's loopback-only
network namespace where it has one: :mod:`tests.netns`), in a temporary directory, run as
``nobody`` when the tests run as root (PostgreSQL refuses to run as root); each test gets a
database of its own. Where the binaries or psycopg are missing, the tests that need it are
skipped, saying why.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PASSWORD = "pw-never-shown-7f3a"
"""In every URL the tests use (trust auth ignores it): output must never show it."""


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin directory with initdb and pg_ctl."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    for initdb in reversed(found):
        if (initdb.parent / "pg_ctl").is_file():
            return initdb.parent
    return None


@dataclass
class Cluster:
    port: int
    data: Path | None = None
    """Its data directory (``postmaster.pid`` there names the server's process)."""
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://tingji:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._numbers)}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run(command: list[str], user: str | None) -> None:
    done = subprocess.run(command, user=user, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed: {done.stderr or done.stdout}")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    binaries = server_binaries()
    if binaries is None:
        pytest.skip(
            "PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin/initdb); "
            "apt-get install postgresql"
        )
    pytest.importorskip("psycopg_pool", reason="psycopg is not installed: pip install -e '.[dev]'")
    user = "nobody" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="tingji-pg-"))
    if user is not None:
        shutil.chown(root, user)
    data = root / "data"
    port = _free_port()
    try:
        _run(
            [str(binaries / "initdb"), "-D", str(data), "-U", "tingji", "--auth=trust"]
            + ["-E", "UTF8", "--locale=C", "--no-sync"],
            user,
        )
        settings = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=400 -c shared_buffers=32MB"
        )
        _run(
            [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w"]
            + ["-t", "60", "-o", settings, "start"],
            user,
        )
        yield Cluster(port, data)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                user=user,
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(root, ignore_errors=True)
