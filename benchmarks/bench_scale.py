"""`scale`: one batch job of the same 30 files in this process and on a Ray cluster of 1 and 2
nodes on this machine, for sizing (files an hour per core) and the cost of going through Ray.

The 30 files are the 24 shared clips with a reference (15 Mandarin, 9 English), then the 6
shortest again. Every variant is one job through the service and its job runner, as
``POST /api/jobs`` makes it, timed from creating the job to its end with the models already
loaded, each in its own process:

- ``here, 1 core``: one model of one thread, one file at a time: what one Ray node of one CPU
  runs, without Ray.
- ``here, 2 cores``: tingji's one-box default on this machine (two one-thread replicas, eight
  lanes sharing their batches).
- ``ray, 1 node`` / ``ray, 2 nodes``: a loopback cluster (:mod:`tingji.cluster.loopback`, root
  only) of one-CPU nodes, one model each; audio through the object store, results back into
  the server's database.

The overhead of Ray per file is (ray 1 node - here 1 core) / 30: shipping the bytes, the actor
call, progress polls and the result's way back.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import common

NAME = "scale"
FILES = 30
VARIANTS = {
    "here-1": ("here, 1 core", 0),
    "here-2": ("here, 2 cores", 0),
    "ray-1": ("ray, 1 node", 1),
    "ray-2": ("ray, 2 nodes", 2),
}


def files() -> list[common.Clip]:
    clips = [c for c in common.manifest() if c.name.startswith(("zh/", "en/"))]
    shortest = sorted(clips, key=lambda c: c.duration)
    return (clips + shortest)[:FILES]


def measure(variant: str) -> dict[str, Any]:
    from tingji.service import Tingji

    what, nodes = VARIANTS[variant]
    clips = files()
    cluster = None
    overrides: dict[str, Any] = {"cpu_threads": 1, "workers": 1} if variant == "here-1" else {}
    if nodes:
        from tingji.cluster.loopback import LocalCluster, Namespace

        model_cache = str(common.settings().model_cache)
        cluster = LocalCluster(
            Namespace(), {"TINGJI_MODELS_DIR": model_cache, "TINGJI_RAY_CPUS_PER_MODEL": "1"}
        )
        for _ in range(nodes):
            cluster.add_node(cpus=1)
        cluster.namespace.enter()  # this thread, and the threads it starts, talk on loopback
        overrides = {"ray_address": cluster.address, "ray_cpus_per_model": 1}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            service = Tingji(
                common.settings(
                    data_dir=Path(tmp), models_dir=common.settings().model_cache, **overrides
                )
            )
            stored = []
            for clip in clips:
                with open(clip.path, "rb") as f:
                    stored.append(service.save_upload(f, Path(clip.path).name))
            service.start_jobs()
            if nodes:
                _wait_for_models(service, nodes)
            else:
                service.backend()
            load = os.getloadavg()[0]
            before = _cluster_cpu(cluster)
            with common.stopwatch() as wall:
                job_id = service.create_job(stored, service.options())
                while service.job(job_id).status in ("queued", "running"):
                    time.sleep(0.05)
            after = _cluster_cpu(cluster)
            cluster_cpu = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
            job = service.job(job_id)
            texts = [service.get_entry(f.transcription_id or 0).text for f in job.files]
            where = sorted({f.node or "here" for f in job.files})
            service.close()
    finally:
        if cluster is not None:
            cluster.close()
            cluster.namespace.close()
    return {
        "variant": variant,
        "what": what,
        "nodes": nodes,
        "files": len(clips),
        "done": sum(f.status == "done" for f in job.files),
        "audio_s": sum(c.duration for c in clips),
        "wall_s": wall[0],
        "files_per_hour": len(clips) / wall[0] * 3600,
        "cpu_s": wall[1] + cluster_cpu,
        "cpu_s_driver": wall[1],
        "load_average_at_start": load,
        "texts": texts,
        "where": where,
    }


def _cluster_cpu(cluster: Any) -> dict[int, float]:
    """CPU seconds (user + system) so far of every process of the cluster, by pid."""
    if cluster is None:
        return {}
    import psutil

    used = {}
    for proc in cluster.namespace.processes():
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        used[proc.pid] = times.user + times.system
    return used


def _wait_for_models(service: Any, count: int, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while service.cluster().models < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the cluster did not load {count} models in {timeout:.0f} s")
        time.sleep(0.2)


def main() -> dict[str, Any]:
    from tingji.cluster.loopback import unavailable

    common.model_dir()
    print(f"[{NAME}] one job of {FILES} files here and on a loopback Ray cluster ...")
    why_not = unavailable()
    if why_not is not None:
        print(f"  ray variants skipped: {why_not}")
    results = []
    for variant, (what, nodes) in VARIANTS.items():
        if nodes and why_not is not None:
            continue
        result = common.in_fresh_process(measure, variant)
        print(
            f"  {what:14} {result['wall_s']:.1f} s  {result['files_per_hour']:.0f} files/h  "
            f"({result['done']}/{result['files']} done on {len(result['where'])} node(s))",
            flush=True,
        )
        results.append(result)
    base = next(r for r in results if r["variant"] == "here-1")
    for r in results:
        cores = {"here-1": 1, "here-2": 2}.get(r["variant"], r["nodes"])
        r["cores"] = cores
        r["files_per_hour_per_core"] = r["files_per_hour"] / cores
        r["speed_x"] = r["audio_s"] / r["wall_s"]
        r["cpu_s_per_file"] = r["cpu_s"] / r["files"]
        r["same_text_as_here_1"] = sum(
            a == b for a, b in zip(r["texts"], base["texts"], strict=True)
        ) / len(base["texts"])
    one = next((r for r in results if r["variant"] == "ray-1"), None)
    overhead = (one["wall_s"] - base["wall_s"]) / FILES if one else None
    overhead_cpu = (one["cpu_s"] - base["cpu_s"]) / FILES if one else None
    common.print_table(
        f"scale: {FILES} files, {base['audio_s']:.0f} s of audio, Whisper base "
        f"{common.settings().compute_type}, beam {common.BEAM_SIZE}, on {os.cpu_count()} cores",
        [
            "variant",
            "wall",
            "files/h",
            "files/h per core",
            "× real time",
            "CPU s/file",
            "same text",
            "load at start",
        ],  # fmt: skip
        [
            [
                r["what"],
                f"{r['wall_s']:.1f} s",
                f"{r['files_per_hour']:.0f}",
                f"{r['files_per_hour_per_core']:.0f}",
                f"{r['speed_x']:.1f}",
                f"{r['cpu_s_per_file']:.2f}",
                f"{r['same_text_as_here_1']:.0%}",
                f"{r['load_average_at_start']:.1f}",
            ]
            for r in results
        ],
    )
    if overhead is not None and overhead_cpu is not None:
        print(
            f"  Ray's cost per file (ray 1 node - here 1 core, / {FILES}): {overhead:.3f} s of "
            f"wall time, {overhead_cpu:.3f} CPU s (the cluster's processes included)"
        )
    output = {
        "results": results,
        "ray_overhead_per_file_s": overhead,
        "ray_overhead_cpu_s_per_file": overhead_cpu,
    }
    common.save(NAME, output)
    return output
