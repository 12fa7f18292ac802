"""Who is speaking, frame by frame, inside 10 s windows: pyannote's segmentation-3.0 (ONNX).

The model sees a 10 s window and answers, for 589 frames (about 17 ms each), which of up to three
*local* speakers talk, overlap included ("powerset": one class per set of at most two active
speakers). Local speaker 1 of one window is not speaker 1 of the next: linking them is the
diarizer's job.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 10 * SAMPLE_RATE
FRAMES = 589
FRAME_STEP = 270 / SAMPLE_RATE
"""Seconds between the starts of two output frames."""
FRAME_SPAN = 991 / SAMPLE_RATE
"""Seconds of audio each output frame sees."""
LOCAL_SPEAKERS = 3
# Powerset classes → active local speakers: {}, {1}, {2}, {3}, {1,2}, {1,3}, {2,3}.
_POWERSET = np.array(
    [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=np.float32
)
_POWERSET_HARD = _POWERSET.astype(np.uint8)


def frame_centre(window_start: float, frame: np.ndarray | int) -> np.ndarray | float:
    return window_start + np.asarray(frame) * FRAME_STEP + FRAME_SPAN / 2


@dataclass
class WindowActivity:
    start: float
    """Seconds from the start of the audio."""
    active: np.ndarray
    """(589, 3) uint8 0/1: the most likely set of speakers of each frame."""
    soft: np.ndarray
    """(589, 3) float32 probability that each local speaker talks."""

    @property
    def offset(self) -> int:
        """The window's first frame, counted from the start of the audio."""
        return int(round(self.start / FRAME_STEP))


class Segmenter:
    def __init__(self, model: Path, *, threads: int = 1) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    def windows(self, audio: np.ndarray, step: float, batch: int = 2) -> Iterator[WindowActivity]:
        """Slide a 10 s window over ``audio`` every ``step`` seconds; the last window ends at
        the audio's end (short audio is padded with silence)."""
        hop = int(round(step * SAMPLE_RATE))
        length = len(audio)
        starts = list(range(0, max(length - WINDOW_SAMPLES, 0) + 1, hop))
        if length > WINDOW_SAMPLES and starts[-1] + WINDOW_SAMPLES < length:
            starts.append(length - WINDOW_SAMPLES)
        for first in range(0, len(starts), batch):
            group = starts[first : first + batch]
            chunk = np.zeros((len(group), 1, WINDOW_SAMPLES), np.float32)
            for row, start in enumerate(group):
                piece = audio[start : start + WINDOW_SAMPLES]
                chunk[row, 0, : len(piece)] = piece
            logits = self._session.run(None, {self._input: chunk})[0]
            for row, start in enumerate(group):
                probs = np.exp(logits[row])
                hard = _POWERSET_HARD[np.argmax(probs, axis=1)]
                yield WindowActivity(start / SAMPLE_RATE, hard, probs @ _POWERSET)
