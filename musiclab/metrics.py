"""Evaluation metrics: pitch by an outside estimator, a note classifier and its Frechet distance,
sample diversity.

Chapter: notebooks/03_gan.ipynb
"""
from __future__ import annotations

import warnings

import librosa
import numpy as np
import scipy.linalg
import torch
from torch import nn
from torch.nn import functional as F

from .errors import BadInputError

# pYIN's search range: an octave below G3 (196 Hz) to an octave above G5 (784 Hz), so that octave
# errors in either direction can happen and are counted as errors.
PYIN_FMIN_HZ, PYIN_FMAX_HZ = 80.0, 1600.0


# Pitch -----------------------------------------------------------------------------------------------


def estimate_f0_hz(y: np.ndarray, sr: int) -> float:
    """Median f0 (Hz) over the voiced frames found by ``librosa.pyin``; NaN if none is voiced.

    Chapter: notebooks/03_gan.ipynb
    """
    f0, voiced, _ = librosa.pyin(np.asarray(y, dtype=np.float32), fmin=PYIN_FMIN_HZ, fmax=PYIN_FMAX_HZ,
                                 sr=sr, frame_length=1024)
    f0 = f0[voiced & np.isfinite(f0)]
    return float(np.median(f0)) if f0.size else float("nan")


def pitch_errors_cents(ys, pitches, sr: int) -> np.ndarray:
    """1200 log2(f0 / f_requested) for each clip (NaN where pYIN finds no pitch).

    ``ys`` [shape=(N, n)], ``pitches`` MIDI numbers [shape=(N,)].

    Chapter: notebooks/03_gan.ipynb
    """
    if len(ys) != len(pitches):
        raise BadInputError(f"{len(ys)} clips for {len(pitches)} pitches")
    f0 = np.array([estimate_f0_hz(y, sr) for y in ys])
    return 1200 * np.log2(f0 / librosa.midi_to_hz(np.asarray(pitches)))


def pitch_accuracy(errors_cents: np.ndarray, tolerance_cents: float = 50.0) -> float:
    """Fraction of clips whose pitch is within ``tolerance_cents`` (no pitch found counts as wrong).

    Chapter: notebooks/03_gan.ipynb
    """
    errors = np.asarray(errors_cents, dtype=np.float64)
    return float(np.mean(np.nan_to_num(np.abs(errors), nan=np.inf) <= tolerance_cents))


# A note classifier and the Frechet distance in its embedding ----------------------------------------


class NoteClassifier(nn.Module):
    """A small CNN on normalised log-mel spectrograms: three strided convs, mean pooling.

    ``embed(x)`` [shape=(B, 64)] is the feature space of the Frechet distance; ``forward(x)``
    returns class logits [shape=(B, n_classes)]. ``x`` [shape=(B, n_mels, T)].
    """

    def __init__(self, n_classes: int, width: int = 16):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(1, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(4 * width, n_classes)

    def embed(self, x):
        return self.convs(x[:, None]).mean((2, 3))

    def forward(self, x):
        return self.head(self.embed(x))


def train_note_classifier(x: np.ndarray, labels: np.ndarray, n_steps: int = 400, batch_size: int = 64,
                          seed: int = 0) -> NoteClassifier:
    """Train a `NoteClassifier` on real notes: ``x`` [shape=(N, n_mels, T)], ``labels`` in [0, K).

    Chapter: notebooks/03_gan.ipynb
    """
    torch.manual_seed(seed)
    x, labels = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.long)
    model = NoteClassifier(int(labels.max()) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(n_steps):
        index = torch.randint(0, len(x), (batch_size,), generator=generator)
        loss = F.cross_entropy(model(x[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def classify(model: NoteClassifier, x: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(predicted labels [shape=(N,)], embeddings [shape=(N, 64)])`` for ``x`` [shape=(N, n_mels, T)]."""
    x = torch.as_tensor(x, dtype=torch.float32)
    embeddings = torch.cat([model.embed(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    return model.head(embeddings).argmax(1).numpy(), embeddings.numpy()


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets [shape=(N, d)]:

    ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))   (as FID, Heusel et al. 2017).

    Chapter: notebooks/03_gan.ipynb
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise BadInputError(f"frechet_distance: expected two (N, d) feature sets, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # sqrtm warns on the tiny imaginary parts it then returns
        warnings.simplefilter("ignore")
        root = scipy.linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


# Diversity -------------------------------------------------------------------------------------------


def pairwise_rms_distances(x: np.ndarray) -> np.ndarray:
    """RMS difference between every pair of examples [shape=(N, ...)]: [shape=(N (N - 1) / 2,)].

    Chapter: notebooks/03_gan.ipynb
    """
    flat = torch.as_tensor(np.asarray(x, np.float64).reshape(len(x), -1))
    distances = torch.cdist(flat, flat) / flat.shape[1] ** 0.5
    rows, cols = np.triu_indices(len(x), k=1)
    return distances.numpy()[rows, cols]
