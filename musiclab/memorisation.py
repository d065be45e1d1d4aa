"""How much do the book's generators copy their training data? Copy rates for symbolic samples and
nearest-neighbour distances for generated audio, each next to the same figure for real held-out music.

Chapter: notebooks/15_ethics_and_copyright.ipynb
"""
from __future__ import annotations

import numpy as np
import torch

from . import metrics


def copy_rate_curve(generated_grids, training_grids, held_out_grids, ns=range(4, 13),
                    transposition_invariant: bool = False) -> dict:
    """`metrics.copy_rate` for each run length ``n`` in ``ns``, of the generated pieces and of real
    held-out pieces, against the same training pieces: ``{"n": [...], "generated": [...], "held_out": [...]}``.

    Chapter: notebooks/15_ethics_and_copyright.ipynb
    """
    curve = {"n": list(ns), "generated": [], "held_out": []}
    for n in ns:
        index = metrics.ngram_index(training_grids, n, transposition_invariant)
        curve["generated"].append(metrics.copy_rate(generated_grids, index, n, transposition_invariant))
        curve["held_out"].append(metrics.copy_rate(held_out_grids, index, n, transposition_invariant))
    return curve


def nearest_distances(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """RMS distance from each query [shape=(N, ...)] to its nearest reference [shape=(M, ...)]: [shape=(N,)]."""
    a = torch.as_tensor(np.asarray(queries, np.float64).reshape(len(queries), -1))
    b = torch.as_tensor(np.asarray(references, np.float64).reshape(len(references), -1))
    return (torch.cdist(a, b) / a.shape[1] ** 0.5).min(dim=1).values.numpy()


def gan_nearest_training_distances(generator, n_train_per_condition: int = 16, n_per_condition: int = 4,
                                   programs=None, pitches=None) -> dict:
    """Nearest-neighbour check of the chapter-3 GAN: for each generated note, and for each real
    held-out note (render seed 2, as in `recipes.gan.evaluate_gan`), the RMS log-mel distance (nats) to
    the nearest *training* note of the same (program, pitch). The training notes are re-rendered
    exactly as `recipes.gan.train_gan` made them (seed 0, ``n_train_per_condition`` per condition, every
    condition, so the random draws match). Returns ``{"generated": [N], "held_out": [N]}``.

    A generator that replays its training notes would sit much closer to them than new real notes do.

    Chapter: notebooks/15_ethics_and_copyright.ipynb
    """
    from .models import gan

    cfg = generator.config
    train = gan.render_note_variations(cfg, n_train_per_condition, seed=0)
    held_out = gan.render_note_variations(cfg, n_per_condition, seed=2, programs=programs, pitches=pitches)
    z = gan.latent(np.arange(len(held_out["pitch"])) + 30_000, cfg.z_dim)
    generated = gan.generate_log_mel(generator, held_out["program"], held_out["pitch"], z)
    result = {"generated": np.zeros(len(z)), "held_out": np.zeros(len(z))}
    for i, (program, pitch) in enumerate(zip(held_out["program"], held_out["pitch"])):
        same = train["log_mel"][(train["program"] == program) & (train["pitch"] == pitch)]
        result["generated"][i] = nearest_distances(generated[i:i + 1], same)[0]
        result["held_out"][i] = nearest_distances(held_out["log_mel"][i:i + 1], same)[0]
    return result
