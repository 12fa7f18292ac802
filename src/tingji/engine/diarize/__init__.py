"""Speaker diarization (who speaks when), offline, without PyTorch.

``load_diarizer()`` gives a :class:`Diarizer`; calling it on 16 kHz mono audio gives
:class:`tingji.types.SpeakerTurn` s. Weights: see :mod:`tingji.engine.diarize.weights`.
"""

from __future__ import annotations

from pathlib import Path

from tingji.engine.diarize.pipeline import MAX_SPEAKERS, Diarization, Diarizer, SpeakerCount

__all__ = ["MAX_SPEAKERS", "Diarization", "Diarizer", "SpeakerCount", "load_diarizer"]


def load_diarizer(folder: Path | None = None, *, fetch: bool = True, threads: int = 1) -> Diarizer:
    from tingji.engine.diarize.embedding import GE2EEmbedder
    from tingji.engine.diarize.segmentation import Segmenter
    from tingji.engine.diarize.weights import ensure

    weights = ensure(folder, fetch=fetch)
    return Diarizer(
        Segmenter(weights.segmentation, threads=threads), GE2EEmbedder(weights.embedding)
    )
