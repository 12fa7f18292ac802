"""Shaping results for JSON responses."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

from tingji.types import ClusterInfo, HistoryEntry, JobStatus, Transcript


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def transcript_view(
    transcript: Transcript, entry_id: int | None = None, name: str | None = None
) -> dict[str, Any]:
    return {
        "id": entry_id,
        "name": name or transcript.source,
        "text": transcript.text,
        "language": transcript.language,
        "language_probability": transcript.language_probability,
        "duration": round(transcript.duration, 3),
        "processing_time": round(transcript.processing_time, 3),
        "real_time_factor": round(transcript.real_time_factor, 4),
        "speed": round(transcript.speed, 2),
        "model": {k: v for k, v in asdict(transcript.model).items() if k != "path"},
        "segments": [asdict(s) for s in transcript.segments],
        "replacements": [asdict(r) for r in transcript.replacements],
        "omitted": [asdict(o) for o in transcript.omitted],
        "speakers": [asdict(t) for t in transcript.speakers],
    }


def entry_view(entry: HistoryEntry, *, full: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": entry.id,
        "created_at": iso(entry.created_at),
        "name": entry.name,
        "language": entry.language,
        "duration": round(entry.duration, 3),
        "processing_time": round(entry.processing_time, 3),
        "model": entry.model,
        "device": entry.device,
        "text": entry.text,
        "has_audio": entry.audio_file is not None,
        "job_id": entry.job_id,
    }
    if full:
        view["segments"] = [asdict(s) for s in entry.segments]
        view["replacements"] = [asdict(r) for r in entry.replacements]
        view["omitted"] = [asdict(o) for o in entry.omitted]
        view["speakers"] = [asdict(t) for t in entry.speakers]
        view["options"] = entry.options
        view["edited_at"] = iso(entry.edited_at)
        view["original_segments"] = (
            None if entry.original is None else [asdict(s) for s in entry.original]
        )
    return view


def job_view(job: JobStatus) -> dict[str, Any]:
    total = job.audio_total
    done = job.audio_done
    progress = (done / total) if total else (job.finished_files / max(1, len(job.files)))
    if job.status == "done":
        progress = 1.0
    return {
        "id": job.id,
        "status": job.status,
        "created_at": iso(job.created_at),
        "finished_at": iso(job.finished_at),
        "model": job.model,
        "files_total": len(job.files),
        "files_finished": job.finished_files,
        "current_file": job.current_file,
        "audio_seconds_done": round(done, 2),
        "audio_seconds_total": None if total is None else round(total, 2),
        "progress": round(min(1.0, progress), 4),
        "elapsed": round(job.elapsed, 2),
        "eta": None if job.eta is None else round(job.eta, 1),
        "files": [
            {
                "position": f.position,
                "name": f.name,
                "size": f.size,
                "status": f.status,
                "duration": f.duration,
                "audio_seconds_done": round(
                    (f.duration or 0.0) if f.status == "done" else f.done_seconds, 2
                ),
                "processing_time": f.processing_time,
                "error": f.error,
                "transcription_id": f.transcription_id,
                "node": f.node,
            }
            for f in job.files
        ],
        "options": job.options,
    }


def cluster_view(info: ClusterInfo | None, queue_length: int) -> dict[str, Any] | None:
    """The Ray cluster batch jobs run on; None when none is configured."""
    if info is None:
        return None
    return {
        "address": info.address,
        "reachable": info.error is None,
        "error": info.error,
        "nodes": [asdict(n) for n in info.nodes],
        "nodes_alive": sum(n.alive for n in info.nodes),
        "cpus": info.cpus,
        "gpus": info.gpus,
        "models": info.models,
        "files_running": info.running,
        "queue_length": queue_length,
    }
