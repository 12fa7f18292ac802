"""Ray, imported on demand; this process joined to a cluster as its driver; what the cluster has.

Ray's usage statistics are off unless the operator turned them on (``RAY_USAGE_STATS_ENABLED``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from types import ModuleType
from typing import Any

from tingji.errors import ClusterError, MissingExtraError
from tingji.types import ClusterInfo, NodeInfo

log = logging.getLogger("tingji.cluster")

SCALE_EXTRA = "pip install 'tingji[scale]'"
REACH_TIMEOUT_S = 5.0
"""How long a cluster's address may take to answer before it counts as unreachable."""
_lock = threading.Lock()
_address: str | None = None


def require_ray() -> ModuleType:
    """The ``ray`` module, or an error that says how to install it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError(
            f"running on a Ray cluster needs Ray, which is not installed: {SCALE_EXTRA}"
        ) from exc
    return ray


def connect(address: str) -> ModuleType:
    """Join the cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``, or
    ``local`` for a cluster of this machine alone, started here); once per process."""
    global _address
    ray = require_ray()
    with _lock:
        if ray.is_initialized():
            if _address not in (None, address):
                raise ClusterError(f"already joined the Ray cluster at {_address}, not {address}")
            return ray
        check_reachable(address)
        try:
            ray.init(
                address=None if address == "local" else address,
                namespace="tingji",
                log_to_driver=False,
                logging_level=logging.WARNING,
                include_dashboard=False if address == "local" else None,
            )
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            raise ClusterError(f"cannot join the Ray cluster at {address}: {exc}") from exc
        _address = address
        log.info("joined the Ray cluster at %s", address)
    return ray


def check_reachable(address: str) -> None:
    """Fail fast on a host:port that does not answer (Ray itself retries for a minute)."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"a Ray address is auto, HOST:PORT or ray://HOST:PORT, not {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), REACH_TIMEOUT_S).close()
    except OSError as exc:
        raise ClusterError(
            f"the Ray cluster at {address} does not answer ({exc.strerror or exc}); is "
            "`ray start --head` running there, and is the port open?"
        ) from exc


def node_name(hostname: str, ip: str, node_id: str) -> str:
    """How a node is named in job files and the System tab: ``gpu-box-2 (10.0.0.12, 3f2a9c1b)``."""
    return f"{hostname} ({ip}, {node_id[:8]})"


def nodes(ray: ModuleType) -> list[NodeInfo]:
    """The cluster's nodes, the dead ones too (Ray keeps them listed for a while)."""
    found = []
    for node in ray.nodes():
        resources: dict[str, Any] = node.get("Resources") or {}
        address = str(node.get("NodeManagerAddress", ""))
        found.append(
            NodeInfo(
                node_id=str(node["NodeID"]),
                name=node_name(str(node.get("NodeManagerHostname", "")), address, node["NodeID"]),
                address=f"{address}:{node.get('NodeManagerPort', '')}",
                alive=bool(node.get("Alive")),
                cpus=float(resources.get("CPU", 0.0)),
                gpus=float(resources.get("GPU", 0.0)),
                head="node:__internal_head__" in resources,
            )
        )
    return found


def cluster_info(address: str) -> ClusterInfo:
    """What the cluster at ``address`` has; an unreachable one says why in ``error``."""
    try:
        ray = connect(address)
        return ClusterInfo(address=address, nodes=nodes(ray))
    except (ClusterError, MissingExtraError) as exc:
        return ClusterInfo(address=address, error=exc.message)
    except Exception as exc:  # noqa: BLE001 - Ray's own errors once the head has gone
        return ClusterInfo(address=address, error=f"the Ray cluster does not answer: {exc}")
