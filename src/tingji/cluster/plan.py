"""How many models each node of a cluster runs, and with which of its resources.

A node with GPUs runs one model per GPU; a node without runs one per ``ray_cpus_per_model``
cores (at least one, on all its cores, when it has fewer). Each model takes
``ray_files_per_model`` files at once: their decodes share the model's batches.
"""

from __future__ import annotations

from dataclasses import dataclass

from tingji.config import Settings
from tingji.types import NodeInfo

GPU_FILES_PER_MODEL = 4
"""Files a model on a GPU works on at once, unless ``ray_files_per_model`` says otherwise."""


@dataclass(frozen=True)
class Slot:
    """One model to run on a node: the Ray resources it asks for and the files it takes."""

    node_id: str
    cpus: float
    gpus: float
    files: int

    @property
    def threads(self) -> int:
        """CPU threads of the model (at least one)."""
        return max(1, int(self.cpus))


def models_on(node: NodeInfo, settings: Settings) -> list[Slot]:
    """The models one node runs; none on a dead node or one with no cores to spare."""
    if not node.alive:
        return []
    if node.gpus >= 1:
        count = int(node.gpus)
        cpus = min(settings.ray_cpus_per_model, node.cpus / count)
        files = settings.ray_files_per_model or GPU_FILES_PER_MODEL
        return [Slot(node.node_id, cpus, 1.0, files) for _ in range(count)]
    if node.cpus <= 0:
        return []
    per = settings.ray_cpus_per_model
    count = max(1, int(node.cpus // per))
    cpus = min(per, node.cpus)
    files = settings.ray_files_per_model or 1
    return [Slot(node.node_id, cpus, 0.0, files) for _ in range(count)]


def plan(nodes: list[NodeInfo], settings: Settings) -> list[Slot]:
    """Every model of the cluster, node by node."""
    return [slot for node in nodes for slot in models_on(node, settings)]
