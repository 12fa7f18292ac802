"""The suite's servers run where only loopback is (:mod:`tests.netns`)."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import pytest

from . import NETWORK, netns
from .pg import Cluster


def _where_only_loopback() -> None:
    if not netns.isolated():
        pytest.skip(f"the session's network is {NETWORK}")


def test_nothing_off_the_machine_can_be_reached() -> None:
    _where_only_loopback()
    with socket.socket() as probe, pytest.raises(OSError) as refused:
        probe.settimeout(5)
        probe.connect(("192.0.2.1", 80))  # TEST-NET-1: any address not on loopback
    assert refused.value.errno == errno.ENETUNREACH


def test_postgresql_runs_in_the_loopback_namespace(pg_cluster: Cluster) -> None:
    _where_only_loopback()
    assert pg_cluster.data is not None
    pid = int((Path(pg_cluster.data) / "postmaster.pid").read_text().split()[0])
    assert os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")
    with socket.create_connection(("127.0.0.1", pg_cluster.port), timeout=5):
        pass
