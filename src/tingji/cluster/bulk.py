"""``tingji batch`` on a Ray cluster, with Ray Data: read → recognise → back to the driver.

Reading is a stage of its own, so that files stream in while the models work: each file's
bytes come from the machine that runs ``tingji batch`` (a reader on its node sends them
through the object store), or straight from the path on the node where every node sees the
archive at the same path (``shared``). Recognition runs in a pool of actors, one per model as
:mod:`tingji.cluster.plan` sizes it; each decodes, cuts at pauses and recognises with the same
pipeline as one box. Decoding stays with the model on purpose: decoded audio is 64 kB a second
against a few kB of most compressed formats, so moving it between nodes would cost more than
decoding where the model is. Results come back to the driver, which writes the outputs.
"""

from __future__ import annotations

import logging
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tingji.bulk import Item, Result
from tingji.cluster.connect import connect, nodes
from tingji.cluster.plan import plan
from tingji.cluster.worker import Recogniser, shipped_settings
from tingji.config import Settings
from tingji.errors import ClusterError
from tingji.types import TranscribeOptions, options_to_dict

READ_AHEAD_BLOCKS = 4
"""Files read ahead of the models, per model (Ray Data's backpressure keeps to its budget)."""


class FileReader:
    """Sends files of the driver's machine to the nodes (a Ray actor on the driver's node)."""

    def read(self, path: str) -> bytes:
        return Path(path).read_bytes()


def read_audio(row: dict[str, Any], reader: Any = None) -> dict[str, Any]:
    """Ray Data stage: a row's file as bytes, or the reason it cannot be read."""
    import ray

    try:
        data = (
            Path(row["path"]).read_bytes()
            if reader is None
            else ray.get(reader.read.remote(row["path"]))
        )
        return {**row, "audio": data, "error": ""}
    except OSError as exc:
        return {**row, "audio": b"", "error": f"cannot read the file: {exc.strerror or exc}"}
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(exc.cause, OSError) else exc
        return {**row, "audio": b"", "error": f"cannot read the file: {cause}"}


class BatchRecogniser:
    """Ray Data stage: one model on a node (an actor of the pool), a batch of files."""

    def __init__(
        self, settings: dict[str, Any], threads: int, options: dict[str, Any], model: str
    ) -> None:
        self.worker = Recogniser(settings, threads)
        self.options = options
        self.model = model

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"index": [], "transcript": [], "error": [], "node": []}
        for index, name, audio, error in zip(
            batch["index"], batch["name"], batch["audio"], batch["error"], strict=True
        ):
            transcript = b""
            if not error:
                try:
                    outcome = self.worker.recognise(
                        uuid.uuid4().hex, bytes(audio), str(name), self.options, self.model, {}
                    )
                except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
                    error = f"internal error: {exc}"
                else:
                    error = outcome.error or ""
                    if outcome.transcript is not None:
                        transcript = pickle.dumps(outcome.transcript)
            out["index"].append(int(index))
            out["transcript"].append(transcript)
            out["error"].append(str(error))
            out["node"].append(self.worker.node)
        return out


def recognise_on_cluster(
    items: list[Item],
    settings: Settings,
    options: TranscribeOptions,
    model: str,
    *,
    address: str,
    shared: bool = False,
) -> Iterator[Result]:
    """Recognise the files on the cluster at ``address``; results as they finish."""
    if not items:
        return
    ray = connect(address)
    from ray import data as ray_data
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    context = ray_data.DataContext.get_current()
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    slots = plan(nodes(ray), settings)
    if not slots:
        raise ClusterError(f"the Ray cluster at {address} has no node with CPUs or GPUs to spare")
    gpus = [s for s in slots if s.gpus > 0]
    chosen = gpus or slots
    threads = min(s.threads for s in chosen)
    reader = None
    if not shared:
        here = ray.get_runtime_context().get_node_id()
        strategy = NodeAffinitySchedulingStrategy(here, soft=False)
        reader = (
            ray.remote(FileReader)
            .options(num_cpus=0, max_concurrency=8, scheduling_strategy=strategy)
            .remote()
        )
    rows = [
        {"index": i, "path": str(item.path), "name": item.path.name} for i, item in enumerate(items)
    ]
    dataset = (
        ray_data.from_items(
            rows, override_num_blocks=min(len(rows), len(chosen) * READ_AHEAD_BLOCKS * 8)
        )
        .map(read_audio, fn_kwargs={"reader": reader}, num_cpus=0)
        .map_batches(
            BatchRecogniser,
            fn_constructor_kwargs={
                "settings": shipped_settings(settings),
                "threads": threads,
                "options": options_to_dict(options),
                "model": model,
            },
            batch_size=1,
            compute=ray_data.ActorPoolStrategy(size=len(chosen)),
            num_cpus=None if gpus else min(s.cpus for s in chosen),
            num_gpus=1.0 if gpus else None,
        )
    )
    try:
        for row in dataset.iter_rows():
            item = items[int(row["index"])]
            data = row["transcript"]
            transcript = pickle.loads(data) if data else None  # noqa: S301 - from our own nodes
            yield Result(item, transcript, row["error"] or None, row["node"] or None)
    finally:
        if reader is not None:
            ray.kill(reader)
