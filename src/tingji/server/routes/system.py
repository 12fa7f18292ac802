"""System status, releasing memory, health."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from tingji import __version__
from tingji.server.deps import Service
from tingji.server.views import cluster_view

router = APIRouter(tags=["system"])


@router.get("/api/system")
def system(service: Service) -> dict[str, Any]:
    """Device, GPUs and their memory, CPU, RAM, Python, loaded models, queue length, whether
    the history database's write-ahead log is intact (``database``) and, when batch jobs run
    on a Ray cluster, its nodes, CPUs, GPUs and files running there (``cluster``, else null)."""
    info = service.system()
    wal = service.history.wal_state()
    loaded = service.models.loaded()
    device = loaded[0].device if loaded else ("cuda" if info.cuda_devices else "cpu")
    queue = service.queue_length()
    return {
        "version": __version__,
        "device": device,
        **info.to_dict(),
        "default_model": service.settings.model,
        "loaded_models": [asdict(m) for m in loaded],
        "queue_length": queue,
        "database": {
            "journal": service.history.journal,
            "wal_intact": wal.intact,
            "wal_repairs": wal.repairs,
        },
        "cluster": cluster_view(service.cluster(), queue),
    }


@router.post("/api/system/release-memory")
async def release_memory(service: Service) -> dict[str, Any]:
    """Unload models and free GPU caches; memory before and after."""
    report = await run_in_threadpool(service.release_memory)
    return asdict(report)


health = APIRouter(tags=["system"])


@health.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}
