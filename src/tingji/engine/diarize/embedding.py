"""Speaker embeddings: a voice as a unit vector, so that two stretches of one person's speech
point the same way.

:class:`SpeakerEmbedder` is the interface the diarizer needs; :class:`GE2EEmbedder` is the
built-in one, Resemblyzer's GE2E encoder (3-layer LSTM over 40 mel bands, 256 dimensions) run
with numpy from weights read out of its wheel. A better embedder (CAM++ from FunASR's extra, a
future package) only has to provide ``embed``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Protocol

import numpy as np

SAMPLE_RATE = 16000


class SpeakerEmbedder(Protocol):
    dimension: int

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        """One L2-normalised row per clip (16 kHz mono float32); a clip may be any length."""
        ...


_N_FFT = 400  # 25 ms
_HOP = 160  # 10 ms
_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s
_PARTIAL_STEP = 48  # frames between partials (about 1.3 partials a second, as Resemblyzer)
_TARGET_DBFS = -30.0
BATCH = 64
"""Partials run through the LSTM at once (about 100 MB of activations)."""


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    # Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa's default).
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    mel = np.where(
        log_part, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel
    )
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * (200.0 / 3)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), hz)


@functools.cache
def mel_filters() -> np.ndarray:
    """librosa.filters.mel(sr=16000, n_fft=400, n_mels=40) (Slaney scale and area norm)."""
    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, _N_FFT // 2 + 1)
    points = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(SAMPLE_RATE / 2)), _MELS + 2)
    )
    widths = np.diff(points)
    ramps = points[:, None] - fft_freqs[None, :]
    weights = np.zeros((_MELS, len(fft_freqs)))
    for i in range(_MELS):
        lower = -ramps[i] / widths[i]
        upper = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (points[2 : _MELS + 2] - points[:_MELS]))[:, None]
    return weights.astype(np.float32)


@functools.cache
def _window() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_N_FFT) / _N_FFT)).astype(np.float32)


def mel_power(wav: np.ndarray) -> np.ndarray:
    """(frames, 40) mel power spectrogram, 25 ms windows every 10 ms, centred (not log)."""
    padded = np.pad(
        wav.astype(np.float32),
        _N_FFT // 2,
        mode="reflect" if len(wav) > _N_FFT // 2 else "constant",
    )
    count = 1 + (len(padded) - _N_FFT) // _HOP
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(count, _N_FFT), strides=(padded.strides[0] * _HOP, padded.strides[0])
    )
    spectrum = np.abs(np.fft.rfft(frames * _window(), axis=1)) ** 2
    return (spectrum.astype(np.float32) @ mel_filters().T).astype(np.float32)


def _normalise_volume(wav: np.ndarray) -> np.ndarray:
    """Bring a clip to the same loudness, up or down.

    The encoder reads linear mel power, so its vector moves with the level: the same voice 6 dB
    louder scores only ~0.95 against itself, 12 dB louder ~0.85. Resemblyzer only raises quiet
    clips; lowering loud ones too makes a speaker's pieces agree however near the microphone
    they sat.
    """
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if len(wav) else 0.0
    if rms <= 1e-6:
        return wav
    change = _TARGET_DBFS - 20 * np.log10(rms)
    return (wav * (10 ** (change / 20))).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class GE2EEmbedder:
    """Resemblyzer's voice encoder, in numpy."""

    dimension = 256

    def __init__(self, weights: Path) -> None:
        with np.load(weights) as data:
            self._layers = [
                (
                    np.ascontiguousarray(data[f"lstm.weight_ih_l{k}"].T),
                    np.ascontiguousarray(data[f"lstm.weight_hh_l{k}"].T),
                    (data[f"lstm.bias_ih_l{k}"] + data[f"lstm.bias_hh_l{k}"]).astype(np.float32),
                )
                for k in range(3)
            ]
            self._linear = (
                np.ascontiguousarray(data["linear.weight"].T),
                data["linear.bias"].copy(),
            )

    def _forward(self, mels: np.ndarray) -> np.ndarray:
        """(batch, frames, 40) → (batch, 256) unit vectors."""
        batch, steps, _ = mels.shape
        inputs = mels
        hidden = np.zeros((batch, 256), np.float32)
        for w_ih, w_hh, bias in self._layers:
            projected = inputs @ w_ih  # (batch, steps, 1024)
            projected += bias
            hidden = np.zeros((batch, 256), np.float32)
            cell = np.zeros((batch, 256), np.float32)
            outputs = np.empty((batch, steps, 256), np.float32)
            for t in range(steps):
                gates = projected[:, t] + hidden @ w_hh
                i = _sigmoid(gates[:, :256])
                f = _sigmoid(gates[:, 256:512])
                g = np.tanh(gates[:, 512:768])
                o = _sigmoid(gates[:, 768:])
                cell = f * cell + i * g
                hidden = o * np.tanh(cell)
                outputs[:, t] = hidden
            inputs = outputs
        raw = np.maximum(hidden @ self._linear[0] + self._linear[1], 0.0)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return raw / np.maximum(norms, 1e-9)

    @staticmethod
    def _partials(mel: np.ndarray) -> list[np.ndarray]:
        # a clip shorter than one partial is read as it is: padded with silence, as Resemblyzer
        # does, the LSTM's last state is the state after that silence
        if len(mel) <= PARTIAL_FRAMES:
            return [mel]
        starts = list(range(0, len(mel) - PARTIAL_FRAMES + 1, _PARTIAL_STEP))
        tail = len(mel) - (starts[-1] + PARTIAL_FRAMES)
        if tail > 0.75 * _PARTIAL_STEP:
            starts.append(len(mel) - PARTIAL_FRAMES)
        return [mel[s : s + PARTIAL_FRAMES] for s in starts]

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        """Each clip's partials (1.6 s of mel frames; a shorter clip whole) go through the LSTM
        ``BATCH`` of one length at a time as they come, so memory stays bounded however many
        clips there are."""
        sums = np.zeros((len(clips), self.dimension), np.float64)
        waiting: dict[int, tuple[list[np.ndarray], list[int]]] = {}

        def flush(length: int) -> None:
            partials, owners = waiting.pop(length)
            rows = self._forward(np.stack(partials))
            np.add.at(sums, np.array(owners), rows)

        for index, clip in enumerate(clips):
            for part in self._partials(mel_power(_normalise_volume(clip))):
                partials, owners = waiting.setdefault(len(part), ([], []))
                partials.append(part)
                owners.append(index)
                if len(partials) == BATCH:
                    flush(len(part))
        for length in list(waiting):
            flush(length)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return (sums / np.maximum(norms, 1e-9)).astype(np.float32)
