"""Chapter 4: how the two shipped audio RNNs' free-running samples sound, in numbers.

    .venv/bin/python benchmarks/bench_audio_rnn_quality.py [--seeds 5] [--seconds 0.25]

Each model continues the first 50 ms of every held-out clarinet note (the chapter's listening
example, for all three held-out pitches and several seeds) and the continuation is measured like
the real note's own continuation:

- harmonic share: the share of spectral energy above 50 Hz within 30 Hz of the note's harmonics
  (the chapter's measure; a clean tone is near 1, noise near the share of bins near a harmonic);
- spectral flatness (librosa, mean over frames): near 0 for a tone, near 1 for white noise;
- voiced share: the share of frames pYIN calls voiced, and the median |pitch error| in cents of
  those frames against the note.

Gaussian (MSE) continuations are sampled with the model's fitted sigma and also taken as the mean
(sigma 0), what a plain MSE regressor outputs.
"""
from __future__ import annotations

import argparse

import librosa
import numpy as np
import torch

from musiclab import audio, recipes
from musiclab.models import audio_rnn

PRIME = 400  # 50 ms at 8 kHz


def clip_numbers(y: np.ndarray, f0_hz: float, sr: int) -> dict:
    """Harmonic share, spectral flatness, voiced share and median |cents| of ``y`` [shape=(n,)]."""
    y = y.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / sr)
    harmonic = np.abs(freqs / f0_hz - np.round(freqs / f0_hz)) * f0_hz < 30
    above = freqs > 50
    f0, voiced, _ = librosa.pyin(y, fmin=f0_hz / 2, fmax=f0_hz * 2, sr=sr, frame_length=512, hop_length=128)
    cents = np.abs(1200 * np.log2(f0[voiced] / f0_hz)) if voiced.any() else np.array([np.nan])
    return {"harmonic_share": spectrum[harmonic & above].sum() / spectrum[above].sum(),
            "flatness": float(librosa.feature.spectral_flatness(y=y, n_fft=256, hop_length=64).mean()),
            "voiced_share": float(voiced.mean()), "median_abs_cents": float(np.median(cents))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.25)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sr, n_new = recipes.rnn.AUDIO_SR, round(args.seconds * recipes.rnn.AUDIO_SR)
    notes = recipes.rnn.audio_notes(recipes.rnn.AUDIO_HELD_OUT_PITCHES)
    (categorical, _), (gaussian, card) = audio_rnn.load_pretrained("audio-rnn"), audio_rnn.load_pretrained("audio-rnn-mse")
    sigma = card["metrics"]["held_out_sigma"]
    samplers = {
        "real note": lambda prime, note, seed: note[PRIME:PRIME + n_new],
        "categorical (mu-law)": lambda prime, note, seed: categorical.generate(
            n_new, prime, generator=torch.Generator().manual_seed(seed)),
        "Gaussian, sampled with fitted sigma": lambda prime, note, seed: gaussian.generate(
            n_new, prime, sigma=sigma, generator=torch.Generator().manual_seed(seed)),
        "Gaussian, mean only (sigma 0)": lambda prime, note, seed: gaussian.generate(n_new, prime, sigma=0.0),
    }
    print(f"{len(recipes.rnn.AUDIO_HELD_OUT_PITCHES)} held-out pitches x {args.seeds} seeds, {args.seconds} s after a "
          f"50-ms prime, {sr} Hz; mean (sd) over clips")
    print(f"{'':38s} " + " ".join(f"{title:>15s}" for title in ("harmonic share", "flatness", "voiced share",
                                                                  "median |cents|")))
    for name, sample in samplers.items():
        rows = []
        for pitch, note in zip(recipes.rnn.AUDIO_HELD_OUT_PITCHES, notes):
            f0_hz = 440 * 2 ** ((pitch - 69) / 12)
            for seed in range(args.seeds if name != "real note" else 1):
                levels = np.asarray(sample(note[:PRIME], note, seed))
                rows.append(clip_numbers(audio.mu_law_decode(levels), f0_hz, sr))
        table = {key: np.array([row[key] for row in rows]) for key in rows[0]}
        print(f"{name:38s} " + " ".join(f"{np.nanmean(v):7.3f} ({np.nanstd(v):.3f})".rjust(15) for v in table.values()))


if __name__ == "__main__":
    main()
