"""How typical is a melody, and which notes surprise? Scores under the chapter-4 melody RNN.

The melody RNN gives p(x_t | x_<t, region) for every step of an event grid. Its surprise at a step
is -log p(x_t | x_<t) in nats; the mean over a tune is its NLL per step, compared with the held-out
tunes for a "how typical is this" percentile. At each note onset, the notes the model found likelier
are concrete suggestions.

Chapter: notebooks/12_rnn_evaluation.ipynb
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from . import symbolic
from .errors import BadInputError


@functools.lru_cache(maxsize=1)
def load_melody_rnn():
    """The shipped chapter-4 melody RNN (`models.rnn.load_pretrained`), loaded once per process.

    Chapter: notebooks/12_rnn_evaluation.ipynb
    """
    from .models import rnn

    return rnn.load_pretrained("melody-rnn")[0]


@torch.no_grad()
def step_log_probs(grids, region: str | None = None, model=None) -> list[np.ndarray]:
    """log p(. | x_<t, region) at each step of each grid: a list of float32 [shape=(T, VOCAB_SIZE)].

    Grids of similar length are batched together (sorted by length)."""
    from .models.mtnn import pad_grids

    model = model or load_melody_rnn()
    if region is not None and region not in model.config.regions:
        raise BadInputError(f"region {region!r}: choose from {model.config.regions[1:]} or None")
    tokens, mask = pad_grids(grids)
    lengths = mask.sum(1)
    region_i, tune_type_i = model.condition_index(region, None)
    out = [None] * len(tokens)
    order = torch.argsort(lengths).tolist()
    for i in range(0, len(order), 64):
        rows = order[i:i + 64]
        length = int(lengths[rows].max())
        # input = start token + x_1..x_{T-1}; the output at t is the distribution of x_t
        inputs = torch.cat([torch.full((len(rows), 1), model.config.start_token), tokens[rows, :length - 1]], 1)
        condition = torch.full((len(rows),), region_i), torch.full((len(rows),), tune_type_i)
        logits, _ = model(inputs, *condition)
        log_probs = torch.log_softmax(logits.float(), -1).numpy()
        for j, row in enumerate(rows):
            out[row] = log_probs[j, :int(lengths[row])]
    return out


def nll_per_step(grids, region: str | None = None, model=None) -> list[np.ndarray]:
    """-log p(x_t | x_<t, region) in nats for every step of each grid: list of [shape=(T,)]."""
    return [-lp[np.arange(len(g)), np.asarray(g)] for g, lp in zip(grids, step_log_probs(grids, region, model))]


@functools.lru_cache(maxsize=1)
def typicality_reference() -> np.ndarray:
    """Sorted mean NLL per step (nats) of the held-out test tunes, each conditioned on its region."""
    from . import datasets

    tunes = datasets.load_folk("test", progress=False)
    values = []
    for region in sorted({t.region for t in tunes}):
        grids = [t.grid for t in tunes if t.region == region]
        values += [float(v.mean()) for v in nll_per_step(grids, region)]
    return np.sort(values)


def note_surprise(grid, region: str | None = None, top: int = 5, n_alternatives: int = 3, model=None) -> dict:
    """Per-step surprise of a melody, its typicality, and the ``top`` most surprising notes with
    likelier alternatives.

    Parameters
    ----------
    grid : int array [shape=(T,)], an event grid (`musiclab.symbolic`)
    region : the region to condition on (None: unconditioned, "unknown")
    model : a `MelodyRNN`; default the shipped chapter-4 ``melody-rnn``

    Returns
    -------
    dict with
      ``nll_per_step``: float [shape=(T,)], -log p(x_t | x_<t) in nats;
      ``typicality``: {``nats_per_step``, ``nats_per_note`` (mean over note onsets),
      ``more_typical_than_pct``: the % of held-out tunes with a higher NLL per step (only with the
      shipped model)};
      ``notes``: the ``top`` note onsets with the highest surprise, each {``step``, ``pitch``,
      ``surprise_nats`` = ``timing_nats`` (-log p(a note starts here)) + ``pitch_nats``
      (-log p(this pitch | a note starts)), ``alternatives``: up to ``n_alternatives``
      (pitch, p(pitch | a note starts)) the model found likelier than the written pitch, likeliest
      first}.
    """
    grid = np.asarray(grid)
    if grid.ndim != 1 or grid.size == 0:
        raise BadInputError("note_surprise: expected one non-empty 1-D event grid")
    log_probs = step_log_probs([grid], region, model)[0]
    grid = grid.astype(np.int64)
    nll = -log_probs[np.arange(len(grid)), grid]
    onsets = np.flatnonzero(grid >= 2)
    notes = []
    for step in onsets[np.argsort(-nll[onsets], kind="stable")][:top]:
        # surprise = -log p(a note starts) - log p(this pitch | a note starts): timing + pitch
        note_probs = np.exp(log_probs[step, 2:])
        onset_prob = note_probs.sum()
        pitch_probs = note_probs / onset_prob
        actual = grid[step] - 2
        likelier = [k for k in np.argsort(-pitch_probs, kind="stable") if pitch_probs[k] > pitch_probs[actual]]
        notes.append({"step": int(step), "pitch": int(symbolic.token_to_pitch(int(grid[step]))),
                      "surprise_nats": float(nll[step]), "timing_nats": float(-np.log(onset_prob)),
                      "pitch_nats": float(-np.log(pitch_probs[actual])),
                      "alternatives": [(int(symbolic.token_to_pitch(int(k) + 2)), float(pitch_probs[k]))
                                       for k in likelier[:n_alternatives]]})
    typicality = {"nats_per_step": float(nll.mean()),
                  "nats_per_note": float(nll[onsets].mean()) if onsets.size else float("nan")}
    if model is None:
        reference = typicality_reference()
        typicality["more_typical_than_pct"] = float(100 * np.mean(reference > typicality["nats_per_step"]))
    return {"nll_per_step": nll, "typicality": typicality, "notes": notes}
