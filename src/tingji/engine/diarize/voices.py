"""Naming speakers after known voices: a diarized speaker whose voice is close enough to a
known one takes its name; the others keep S1, S2, …"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tingji.engine.diarize.pipeline import Diarization


def name_speakers(
    diarization: Diarization, known: dict[str, np.ndarray], threshold: float
) -> Diarization:
    """Each known name goes to at most one speaker and each speaker gets at most one name:
    the pairing with the highest total similarity, keeping only pairs above ``threshold``."""
    from scipy.optimize import linear_sum_assignment

    found = [s for s in diarization.speakers if s in diarization.voices]
    names = list(known)
    if not found or not names:
        return diarization
    similarity = np.array(
        [[float(diarization.voices[s] @ _unit(known[n])) for n in names] for s in found]
    )
    rows, cols = linear_sum_assignment(-similarity)
    renamed = {
        found[r]: names[c] for r, c in zip(rows, cols, strict=True) if similarity[r, c] >= threshold
    }
    if not renamed:
        return diarization
    turns = [replace(t, speaker=renamed.get(t.speaker, t.speaker)) for t in diarization.turns]
    voices = {renamed.get(s, s): v for s, v in diarization.voices.items()}
    return Diarization(turns, voices)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)
