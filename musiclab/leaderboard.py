"""Chapter 13's leaderboard: sets of generated melodies against held-out music, with real music as
the ceiling and its spread as the noise level of each number; and the samples of the book's models
that fill it.

Chapter: notebooks/13_evaluating_generative_models.ipynb
"""
from __future__ import annotations

import numpy as np

from . import datasets, metrics, symbolic
from .errors import BadInputError


def excerpts(grids, n_bars: int, n: int | None = None, seed: int = 0) -> list[np.ndarray]:
    """The first ``n_bars``-bar window (16 steps a bar, `symbolic.slice_grid` rules) of each grid
    that has one, so that every set in a comparison has pieces of one length; with ``n``, a random
    ``n`` of them (fewer if there are fewer), drawn with ``seed``.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    windows = [w[0] for w in (symbolic.slice_grid(g, n_bars, hop_bars=n_bars) for g in grids) if len(w)]
    if n is None:
        return windows
    picks = np.random.default_rng(seed).choice(len(windows), min(n, len(windows)), replace=False)
    return [windows[i] for i in picks]


def transposed_phrases(tunes, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` random 2-bar phrases of ``tunes``, each transposed at random as the chapter-6 VAE's
    training phrases were (`datasets.GridSliceDataset`), drawn with ``seed``.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    import torch

    phrases = datasets.GridSliceDataset(tunes, n_bars=2)
    torch.manual_seed(seed)
    picks = np.random.default_rng(seed).choice(len(phrases), min(n, len(phrases)), replace=False)
    return [phrases[int(i)].numpy() for i in picks]


def melody_rnn_samples(conditions, n_bars: int, seed: int = 0, temperature: float = 1.0,
                       name: str = "melody-rnn") -> list[np.ndarray]:
    """One melody of ``n_bars`` bars from the shipped chapter-4 melody RNN (or, with
    ``name="transformer-melody"``, the chapter-5 melody Transformer) per (region, tune type) in
    ``conditions`` (labels it has not seen count as unknown).

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    from .models import rnn, transformer

    model = (transformer if name.startswith("transformer") else rnn).load_pretrained(name)[0]
    generator = torch_generator(seed)
    return [model.generate(16 * n_bars, region=region, tune_type=tune_type, temperature=temperature,
                           generator=generator) for region, tune_type in conditions]


def vae_prior_samples(n: int, seed: int = 0, temperature: float = 1.0) -> list[np.ndarray]:
    """``n`` 2-bar melodies from the shipped chapter-6 melody VAE: z ~ N(0, I), decoded by sampling.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    import torch

    from .models import vae

    model = vae.load_pretrained("vae-melody")[0]
    generator = torch_generator(seed)
    z = torch.randn(n, model.config.z_dim, generator=generator)
    return list(model.decode(z, temperature=temperature, generator=generator).numpy())


def next_token_samples(model, n: int, n_bars: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` melodies of ``n_bars`` bars from a chapter-2 next-token model, each started from a
    context of rests (its training windows start so).

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    import torch

    generator = torch_generator(seed)
    prime = torch.zeros(model.config.context_len, dtype=torch.long)
    return [model.generate(prime, 16 * n_bars, generator=generator).numpy() for _ in range(n)]


def torch_generator(seed: int):
    """A `torch.Generator` seeded with ``seed``.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    import torch

    return torch.Generator().manual_seed(seed)


def leaderboard_row(grids, reference_grids, training_index: set, embed=None,
                    transposition_invariant: bool = True) -> dict:
    """One row of chapter 13's leaderboard: a set of melodies against a reference set of the same
    length (held-out real music):

    - ``overlap`` / ``kl``: `metrics.compare_sets` averaged over the nine MGEval features (and
      ``overlap_<feature>`` for each);
    - ``frechet``: `metrics.frechet_distance` in ``embed``'s space (the multi-task network's), if given;
    - ``copy_rate``: `metrics.copy_rate` of 8-note runs against ``training_index`` (an
      `metrics.ngram_index` built with the same ``transposition_invariant``: by default a run
      copied in any key counts);
    - ``notes_per_bar``: mean notes per 16-step bar.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    comparison = metrics.compare_sets(reference_grids, grids)
    row = {"n": len(grids), "overlap": float(np.mean([c["overlap"] for c in comparison.values()])),
           "kl": float(np.mean([c["kl"] for c in comparison.values()]))}
    row |= {f"overlap_{name}": c["overlap"] for name, c in comparison.items()}
    if embed is not None:
        row["frechet"] = metrics.frechet_distance(embed(reference_grids), embed(grids))
    row["copy_rate"] = metrics.copy_rate(grids, training_index, n=8, transposition_invariant=transposition_invariant)
    row["notes_per_bar"] = float(np.mean([np.count_nonzero(np.asarray(g) >= 2) / (len(g) / 16) for g in grids]))
    return row


LEADERBOARD_COLUMNS = ("overlap", "kl", "frechet", "copy_rate", "notes_per_bar")


def leaderboard(reference_grids, generated: dict, real_draws: list, training_index: set, embed=None) -> dict:
    """Rows ``{name: leaderboard_row}`` for each generated set, plus ``"real (ceiling)"``: the mean
    of the rows of several independent draws of real (training) music, with their standard
    deviation per column under ``"spread"`` (the noise level of each number at this set size) and,
    as its copy rate, the held-out reference's own.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    if len(real_draws) < 2:
        raise BadInputError(f"leaderboard: the noise level needs >= 2 real draws, got {len(real_draws)}")
    real = [leaderboard_row(grids, reference_grids, training_index, embed) for grids in real_draws]
    ceiling = {key: float(np.mean([r[key] for r in real])) for key in real[0]}
    ceiling["spread"] = {key: float(np.std([r[key] for r in real], ddof=1)) for key in LEADERBOARD_COLUMNS
                         if key in ceiling}
    ceiling["copy_rate"] = metrics.copy_rate(reference_grids, training_index, n=8, transposition_invariant=True)
    rows = {"real (ceiling)": ceiling}
    return rows | {name: leaderboard_row(grids, reference_grids, training_index, embed) for name, grids in generated.items()}
