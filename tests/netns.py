"""The test session's network: a namespace of its own with only loopback, where it can have one.

Everything the tests start (PostgreSQL, Ray, ``tingji serve``, Chromium) and every connection
they make then stays on this machine by construction, not by care: there is no other interface
to reach. It takes root (``unshare``), as in CI; elsewhere the session keeps the machine's
network and its servers bind 127.0.0.1. ``TINGJI_TEST_NETWORK=host`` keeps the machine's network
on purpose.

What the suite needs from the package index (the diarization weights, fetched once into the
user's cache) is fetched before the session leaves the machine's network.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import sys
import threading

CLONE_NEWNET = 0x40000000
INHERITED = "TINGJI_TEST_NETNS_OF"
"""Set in the environment of the session's processes: they are in its namespace already."""


def isolate() -> str:
    """Move this process into a new network namespace with only loopback up, when it can;
    returns a line that says where the session's network is.

    Call it first, from the main thread, before anything opens a socket: ``unshare`` moves the
    calling thread, and the threads it starts from then on are born in the namespace (a BLAS
    pool started before stays outside; it opens no sockets).
    """
    if os.environ.get(INHERITED):  # a process the session started, which imports the tests
        return f"the session's (process {os.environ[INHERITED]})"
    if os.environ.get("TINGJI_TEST_NETWORK") == "host":
        return "the machine's network (TINGJI_TEST_NETWORK=host)"
    if os.geteuid() != 0:
        return "the machine's network (a loopback-only namespace needs root); servers on 127.0.0.1"
    if shutil.which("ip") is None:
        return "the machine's network (no ip command: apt-get install iproute2)"
    if threading.current_thread() is not threading.main_thread():
        return "the machine's network (not called from the main thread)"
    _fetch_what_the_suite_needs()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return f"the machine's network (unshare: {os.strerror(ctypes.get_errno())})"
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
    os.environ[INHERITED] = str(os.getpid())
    return f"a network namespace with only loopback ({', '.join(interfaces())})"


def interfaces() -> list[str]:
    """The names of the network interfaces this process sees."""
    return [name for _, name in socket.if_nameindex()]


def isolated() -> bool:
    """Whether this process sees no network interface but loopback."""
    return interfaces() == ["lo"]


def _fetch_what_the_suite_needs() -> None:
    """In a child process, which leaves this one as it was (no imports, no threads); offline,
    the diarization tests say what is missing."""
    subprocess.run(
        [sys.executable, "-c", "from tingji.engine.diarize import weights; weights.ensure()"],
        capture_output=True,
        timeout=600,
    )
