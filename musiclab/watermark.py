"""A keyed spread-spectrum audio watermark: band-limited pseudo-noise that follows the music's level.

A key seeds a chip sequence ``p_t = +-1`` at ``CHIP_SR`` (11,025 Hz), the same for any sample rate of
the audio. `embed` band-passes it to ``F_LOW_HZ``-``F_HIGH_HZ`` (where speech and music codecs keep
detail and where it survives resampling to 22.05 kHz), shapes it with the music's own envelope in that
band (so that it is ``mark_db`` dB below the music everywhere, and silent where the music is), and adds
it. `detect` resamples the audio to ``CHIP_SR``, band-passes it to ``x`` and returns the normalised
correlation

    z = sum_t(x_t p_t) / sqrt(sum_t x_t ** 2).

Without this key's mark, ``x`` does not depend on ``p``; with independent chips ``z`` has mean 0 and
variance exactly 1 over keys, whatever the music, and Hoeffding's inequality bounds the false-positive
rate of a threshold ``t``: ``P(z > t) <= exp(-t ** 2 / 2)``. With the mark, ``z`` grows as
``sqrt(n)`` times the mark-to-music amplitude ratio in the band.

Chapter: notebooks/12_ethics_and_copyright.ipynb
"""
from __future__ import annotations

import functools

import librosa
import numpy as np
import scipy.signal

from . import audio
from .errors import BadInputError

CHIP_SR = 11025
F_LOW_HZ, F_HIGH_HZ = 500.0, 5000.0
ENVELOPE_S = 0.05  # the mark follows the music's level in the band over 50 ms windows
THRESHOLD = 4.0  # Hoeffding: false-positive rate at most exp(-8) = 3.4e-4 per (clip, key)
MIN_DURATION_S = 1.0


@functools.lru_cache(maxsize=1)
def _band_filter():
    return scipy.signal.butter(4, [F_LOW_HZ, F_HIGH_HZ], btype="bandpass", fs=CHIP_SR, output="sos")


def band_pass(x: np.ndarray) -> np.ndarray:
    """Zero-phase band-pass ``F_LOW_HZ``-``F_HIGH_HZ`` of a signal at ``CHIP_SR``."""
    return scipy.signal.sosfiltfilt(_band_filter(), x).astype(np.float64)


def chips(key: int, n: int) -> np.ndarray:
    """The key's chip sequence [shape=(n,)] of +-1 at ``CHIP_SR``; a longer clip extends the same
    sequence (the first chips do not depend on ``n``)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(key), 0x57A7]))
    return 2.0 * (rng.random(n) < 0.5) - 1.0


def _check(y, sr, name: str) -> np.ndarray:
    y = audio.check_audio(y, sr, name)
    if len(y) < MIN_DURATION_S * sr:
        raise BadInputError(f"{name}: {len(y) / sr:.2f} s is too short for the watermark "
                            f"(at least {MIN_DURATION_S} s)")
    return y


def _to_chip_rate(y, sr: int) -> np.ndarray:
    return librosa.resample(np.asarray(y, np.float64), orig_sr=sr, target_sr=CHIP_SR) if sr != CHIP_SR else y


def embed(y, sr: int, key: int, mark_db: float = 25.0) -> np.ndarray:
    """Return ``y`` [shape=(n,)] plus the watermark of ``key``, ``mark_db`` dB below the music's
    level in the band (measured in ``ENVELOPE_S`` windows). Same length and rate as ``y``.

    Chapter: notebooks/12_ethics_and_copyright.ipynb
    """
    y = _check(y, sr, "watermark.embed: y")
    if not 6 <= mark_db <= 60:
        raise BadInputError(f"mark_db={mark_db}: expected 6 to 60 dB below the music")
    music = band_pass(_to_chip_rate(y, sr))
    window = max(1, round(ENVELOPE_S * CHIP_SR))
    envelope = np.sqrt(np.convolve(music ** 2, np.ones(window) / window, mode="same"))
    noise = band_pass(chips(key, len(music)))
    mark = 10 ** (-mark_db / 20) * envelope * noise / noise.std()
    if sr != CHIP_SR:
        mark = librosa.resample(mark, orig_sr=CHIP_SR, target_sr=sr)
    mark = np.pad(mark, (0, max(0, len(y) - len(mark))))[:len(y)]
    return (y + mark).astype(np.float32)


def detect(y, sr: int, key: int) -> float:
    """The detection score ``z`` of ``key`` in ``y`` [shape=(n,)]: mean 0 and variance 1 over keys
    without the mark, large with it. Compare with `THRESHOLD` (or use `is_marked`).

    Chapter: notebooks/12_ethics_and_copyright.ipynb
    """
    x = band_pass(_to_chip_rate(_check(y, sr, "watermark.detect: y"), sr))
    norm = np.sqrt((x ** 2).sum())
    return float((x * chips(key, len(x))).sum() / norm) if norm > 0 else 0.0


def is_marked(y, sr: int, key: int, threshold: float = THRESHOLD) -> bool:
    """Whether ``detect(y, sr, key) > threshold``.

    Chapter: notebooks/12_ethics_and_copyright.ipynb
    """
    return detect(y, sr, key) > threshold


def snr_db(y, marked) -> float:
    """Signal-to-watermark ratio ``10 log10(sum y^2 / sum (marked - y)^2)`` in dB.

    Chapter: notebooks/12_ethics_and_copyright.ipynb
    """
    y, marked = np.asarray(y, np.float64), np.asarray(marked, np.float64)
    return float(10 * np.log10((y ** 2).sum() / ((marked - y) ** 2).sum()))
