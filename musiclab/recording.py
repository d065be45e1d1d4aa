"""Your own recording as training data: check it, normalise it, cut it into slices.

`datasets.user.read_recording` reads a recording (any rate, mono or stereo; missing, empty,
unreadable, damaged, truncated and too long files refused) and calls `check_recording`, which adds
the checks that only make sense for music you want to learn from: it must not be silent, clipped or
too short.

Chapter: notebooks/14_end_to_end.ipynb
"""
from __future__ import annotations

import numpy as np

from . import audio
from .errors import BadInputError

MIN_DURATION_S = 5.0
CLIP_LEVEL = 0.999  # samples at or above this fraction of the peak count as "at the ceiling"
MAX_CLIPPED_FRACTION = 0.001  # more than 0.1 % of samples stuck at the ceiling: clipped
PEAK = 0.9  # normalised peak (about -0.9 dBFS)


def clipped_fraction(y: np.ndarray) -> float:
    """Fraction of samples in runs of 3 or more consecutive samples at the ceiling (``|y| >=
    CLIP_LEVEL * max|y|``), on every channel. A clean recording touches its peak on isolated samples;
    a clipped one sits there (a flat top), also after it was turned down.
    ``y`` [shape=(n,)] or [shape=(channels, n)].

    Chapter: notebooks/14_end_to_end.ipynb
    """
    y = np.atleast_2d(np.abs(np.asarray(y, np.float32)))
    at_ceiling = y >= CLIP_LEVEL * y.max()
    # a sample is in a run of >= 3 if it and both neighbours, or two neighbours on one side, are at the ceiling
    left = np.pad(at_ceiling[:, :-1], ((0, 0), (1, 0)))
    right = np.pad(at_ceiling[:, 1:], ((0, 0), (0, 1)))
    left2 = np.pad(at_ceiling[:, :-2], ((0, 0), (2, 0)))
    right2 = np.pad(at_ceiling[:, 2:], ((0, 0), (0, 2)))
    in_run = at_ceiling & ((left & right) | (left & left2) | (right & right2))
    return float(in_run.mean())


def check_recording(y, sr: int, name: str = "recording", min_duration_s: float = MIN_DURATION_S,
                    needed_for: str = "the recording GAN cuts a few seconds of music into training slices") -> np.ndarray:
    """Return ``y`` mixed to mono [shape=(n,)], or raise ``BadInputError`` naming the problem: NaN,
    silence, shorter than ``min_duration_s`` (the message ends with ``needed_for``: what the
    recording is for and why it needs that length), or clipped (more than 0.1 % of samples stuck at
    the peak). ``y`` [shape=(n,)] or [shape=(channels, n)] at ``sr`` Hz.

    Chapter: notebooks/14_end_to_end.ipynb
    """
    y = audio.check_audio(y, sr, name, ndim=np.ndim(y) if np.ndim(y) in (1, 2) else 1)
    duration_s = y.shape[-1] / sr
    if duration_s < min_duration_s:
        raise BadInputError(f"{name}: too short ({duration_s:.2f} s < {min_duration_s:g} s); {needed_for}")
    clipped = clipped_fraction(y)
    if clipped > MAX_CLIPPED_FRACTION:
        raise BadInputError(f"{name}: clipped ({100 * clipped:.2f} % of samples stuck at the peak "
                            f"{np.abs(y).max():.3f}); record again at a lower input gain")
    return y.mean(axis=0) if y.ndim == 2 else y


def normalise_peak(y: np.ndarray, peak: float = PEAK) -> np.ndarray:
    """Scale ``y`` so that ``max|y| = peak``.

    Chapter: notebooks/14_end_to_end.ipynb
    """
    return (np.asarray(y, np.float32) * (peak / np.abs(y).max())).astype(np.float32)


def slice_recording(y, sr: int, n_samples: int, hop_samples: int | None = None, min_level_db: float = -30.0) -> np.ndarray:
    """Cut ``y`` [shape=(n,)] into overlapping slices [shape=(N, n_samples)] every ``hop_samples``
    (default ``n_samples // 2``), dropping slices whose RMS is more than ``-min_level_db`` dB below the
    loudest slice's (pauses, the fade-out). Raises ``BadInputError`` if ``y`` is shorter than one slice.

    Chapter: notebooks/14_end_to_end.ipynb
    """
    y = audio.check_audio(y, sr, "slice_recording: y")
    hop_samples = hop_samples or n_samples // 2
    if len(y) < n_samples:
        raise BadInputError(f"slice_recording: {len(y) / sr:.2f} s is shorter than one slice ({n_samples / sr:.2f} s)")
    starts = np.arange(0, len(y) - n_samples + 1, hop_samples)
    slices = np.stack([y[s:s + n_samples] for s in starts])
    rms_db = 10 * np.log10(np.maximum((slices.astype(np.float64) ** 2).mean(axis=1), 1e-20))
    keep = rms_db >= rms_db.max() + min_level_db
    return slices[keep]
