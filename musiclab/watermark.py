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

Chapter: notebooks/15_ethics_and_copyright.ipynb
"""
from __future__ import annotations

import functools
import io

import librosa
import numpy as np
import scipy.signal
import soundfile

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

    Chapter: notebooks/15_ethics_and_copyright.ipynb
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

    Chapter: notebooks/15_ethics_and_copyright.ipynb
    """
    x = band_pass(_to_chip_rate(_check(y, sr, "watermark.detect: y"), sr))
    norm = np.sqrt((x ** 2).sum())
    return float((x * chips(key, len(x))).sum() / norm) if norm > 0 else 0.0


def is_marked(y, sr: int, key: int, threshold: float = THRESHOLD) -> bool:
    """Whether ``detect(y, sr, key) > threshold``.

    Chapter: notebooks/15_ethics_and_copyright.ipynb
    """
    return detect(y, sr, key) > threshold


def snr_db(y, marked) -> float:
    """Signal-to-watermark ratio ``10 log10(sum y^2 / sum (marked - y)^2)`` in dB.

    Chapter: notebooks/15_ethics_and_copyright.ipynb
    """
    y, marked = np.asarray(y, np.float64), np.asarray(marked, np.float64)
    return float(10 * np.log10((y ** 2).sum() / ((marked - y) ** 2).sum()))


# Attacks: what happens to audio on its way between people ----------------------------------------

def add_noise(y, snr_db: float, seed: int = 0) -> np.ndarray:
    """``y`` plus white Gaussian noise ``snr_db`` dB below the power of ``y``."""
    y = np.asarray(y, np.float32)
    sigma = np.sqrt(np.mean(y.astype(np.float64) ** 2) / 10 ** (snr_db / 10))
    return (y + np.random.default_rng(seed).normal(0, sigma, len(y))).astype(np.float32)


def codec_round_trip(y, sr: int, fmt: str = "OGG") -> np.ndarray:
    """Encode ``y`` as OGG Vorbis or MP3 (soundfile's default quality) and decode it, in memory.
    The result is cut or zero-padded to ``len(y)``."""
    subtypes = {"OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}
    if fmt not in subtypes:
        raise BadInputError(f"fmt={fmt!r}: expected one of {sorted(subtypes)}")
    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(y, np.float32), sr, format=fmt, subtype=subtypes[fmt])
    buffer.seek(0)
    decoded = soundfile.read(buffer, dtype="float32")[0]
    return np.pad(decoded, (0, max(0, len(y) - len(decoded))))[:len(y)]


def resample_round_trip(y, sr: int, via_sr: int) -> np.ndarray:
    """Resample ``y`` to ``via_sr`` and back to ``sr`` (what a 22.05 kHz copy does to 44.1 kHz audio)."""
    down = librosa.resample(np.asarray(y, np.float32), orig_sr=sr, target_sr=via_sr)
    back = librosa.resample(down, orig_sr=via_sr, target_sr=sr)
    return np.pad(back, (0, max(0, len(y) - len(back))))[:len(y)]


# Material to test on: generated music --------------------------------------------------------------

CLIP_PROGRAMS = (0, 24, 40, 56, 71, 73)  # piano, nylon guitar, violin, trumpet, clarinet, flute


def generated_clips(n: int, sr: int = 44100, duration_s: float = 8.0, seed: int = 0) -> np.ndarray:
    """``n`` clips of generated music [shape=(n, round(duration_s * sr))], float32, peak 0.5: melodies
    sampled from the shipped chapter-4 melody RNN (random region and tune type), rendered by the
    SoundFont on the instruments of ``CLIP_PROGRAMS`` in turn, at 110 quarter notes per minute.

    Chapter: notebooks/15_ethics_and_copyright.ipynb
    """
    import torch

    from . import symbolic
    from .models import rnn

    model, _ = rnn.load_pretrained("melody-rnn")
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    regions, tune_types = list(model.config.regions), list(model.config.tune_types)
    length = round(duration_s * sr)
    clips = []
    while len(clips) < n:
        grid = model.generate(int(duration_s * 8) + 32, region=regions[rng.integers(len(regions))],
                              tune_type=tune_types[rng.integers(len(tune_types))], generator=generator)
        notes = symbolic.grid_to_notes(grid)
        if len(notes) < 4:
            continue
        y = audio.render_notes(notes, program=CLIP_PROGRAMS[len(clips) % len(CLIP_PROGRAMS)], qpm=110, sr=sr)
        y = np.pad(y, (0, max(0, length - len(y))))[:length]
        if np.abs(y).max() > 100 * audio.SILENCE_PEAK:
            clips.append(0.5 * y / np.abs(y).max())
    return np.stack(clips).astype(np.float32)
