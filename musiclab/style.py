"""Style transfer on event grids: how much content a transfer kept and how much style it reached.

Both chapters on style transfer (the VAE's latent attribute vectors, the CycleGAN) are scored with
the same two kinds of number, on melodies as event grids (`musiclab.symbolic`: REST = 0, HOLD = 1,
note-on ``2 + pitch - 36``):

- **content preservation**: does the transferred melody keep the source's rhythm
  (`onset_agreement`) and its melodic shape (`contour_agreement`)?
- **transfer strength** (Brunner et al. 2018): the probability a style classifier trained on real
  tunes only gives to the target style (`transfer_strength`).

Chapter: notebooks/08_style_transfer_vae.ipynb
"""
from __future__ import annotations

import numpy as np
import torch

from . import symbolic
from .errors import BadInputError

MIN_CLASSIFIER_STEPS = 32  # the style classifier reads slices of at least 2 bars of 16th notes


def _check_pair(source, transferred) -> tuple[np.ndarray, np.ndarray]:
    source, transferred = symbolic.check_grid(source), symbolic.check_grid(transferred)
    if source.shape != transferred.shape:
        raise BadInputError(f"source {source.shape} and transferred {transferred.shape}: a transfer "
                            "must keep the length of the melody")
    return source, transferred


def onset_positions(grid) -> np.ndarray:
    """Return the steps that start a note (note-on tokens, ``>= 2``) in ``grid [shape=(T,)]``."""
    return np.flatnonzero(symbolic.check_grid(grid) >= 2)


def onset_agreement(source, transferred) -> float:
    """F1 (Dice) agreement of the note-onset steps of two grids of the same length.

    With :math:`O_s, O_x` the sets of steps holding a note-on in the source and the transferred
    grid,

    .. math:: A_{onset} = \\frac{2\\,|O_s \\cap O_x|}{|O_s| + |O_x|},

    the F1 score of the transferred onsets as predictions of the source's, matched at the exact
    step (no tolerance). It is 1 for the same rhythm (whatever the pitches), 0 for no common onset,
    and 1 when neither grid holds a note.

    Parameters
    ----------
    source, transferred : ndarray [shape=(T,)]
        Event grids of the same length.

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """
    source, transferred = _check_pair(source, transferred)
    on_s, on_x = source >= 2, transferred >= 2
    total = int(on_s.sum() + on_x.sum())
    return 1.0 if total == 0 else 2.0 * int((on_s & on_x).sum()) / total


def contour_agreement(source, transferred) -> float:
    """Share of the source's melodic steps whose direction (up, same, down) the transfer keeps.

    Let :math:`t_1 < \\dots < t_n` be the source's onset steps, :math:`p_i` the source pitch there
    and :math:`q_i` the pitch *sounding* in the transferred grid at step :math:`t_i` (its last
    note-on at or before :math:`t_i`; none in a rest). Then

    .. math:: A_{contour} = \\frac{1}{n-1} \\sum_{i=1}^{n-1}
              [\\,q_i, q_{i+1} \\text{ sound and } \\operatorname{sign}(q_{i+1}-q_i) =
              \\operatorname{sign}(p_{i+1}-p_i)\\,].

    Reading the transfer at the *source's* onsets makes the measure independent of
    `onset_agreement`: a transfer that adds passing notes or merges two notes is judged on the
    melodic shape it leaves at the source's note starts. It is invariant to transposition. NaN when
    the source has fewer than two notes (no interval to compare).

    Parameters
    ----------
    source, transferred : ndarray [shape=(T,)]
        Event grids of the same length.

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """
    source, transferred = _check_pair(source, transferred)
    onsets = np.flatnonzero(source >= 2)
    if len(onsets) < 2:
        return float("nan")
    p = source[onsets]
    q = symbolic.sounding_tokens(transferred)[onsets]
    sounds = (q[:-1] != symbolic.REST) & (q[1:] != symbolic.REST)
    same_direction = np.sign(np.diff(q)) == np.sign(np.diff(p))
    return float(np.mean(sounds & same_direction))


def content_preservation(sources, transferred) -> dict:
    """Mean onset and contour agreement of a batch of transfers with their sources.

    Parameters
    ----------
    sources, transferred : array-like [shape=(N, T)]
        Row i of ``transferred`` is the transfer of row i of ``sources``.

    Returns
    -------
    dict with ``onset_agreement`` (mean over N), ``contour_agreement`` (mean over the rows whose
    source has at least two notes) and ``n``.

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """
    sources, transferred = np.asarray(sources), np.asarray(transferred)
    if sources.ndim != 2 or sources.shape != transferred.shape or len(sources) == 0:
        raise BadInputError(f"sources {sources.shape} and transferred {transferred.shape}: expected two "
                            "non-empty batches of grids of the same shape (N, T)")
    onset = [onset_agreement(s, x) for s, x in zip(sources, transferred)]
    contour = np.array([contour_agreement(s, x) for s, x in zip(sources, transferred)])
    return {"onset_agreement": float(np.mean(onset)),
            "contour_agreement": float(np.nanmean(contour)) if np.isfinite(contour).any() else float("nan"),
            "n": len(sources)}


def _check_grids(grids) -> np.ndarray:
    grids = np.asarray(grids)
    if grids.ndim == 1:
        grids = grids[None]
    if grids.ndim != 2 or len(grids) == 0:
        raise BadInputError(f"grids: expected a non-empty batch of event grids [shape=(N, T)], got {grids.shape}")
    if grids.shape[1] < MIN_CLASSIFIER_STEPS:
        raise BadInputError(f"grids: {grids.shape[1]} steps; the style classifier needs at least "
                            f"{MIN_CLASSIFIER_STEPS} (2 bars of 16th notes)")
    symbolic.check_grid(grids.reshape(-1))  # integer tokens in range
    return grids


def target_probabilities(grids, target: str, classifier=None, task: str = "region",
                         versus: str | None = None) -> np.ndarray:
    """Probability [shape=(N,)] the style classifier gives to class ``target`` of ``task`` for each grid.

    ``classifier`` is any object with ``labels`` (dict task -> class names) and
    ``predict_proba(grids) -> {task: [shape=(N, n_classes)]}``, as `musiclab.models.mtnn.MultiTaskNet`;
    by default the shipped multi-task network (`mtnn.load_pretrained`), trained on real tunes only.
    With ``versus`` (the source style), the probability is renormalised over the two styles,
    :math:`P(\\text{target}) / (P(\\text{target}) + P(\\text{versus}))`: the two-domain judge of
    Brunner et al. 2018, whose genre classifier knew only the two domains of a transfer.

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """
    grids = _check_grids(grids)
    if classifier is None:
        from .models import mtnn  # loaded on demand: the content measures need no model
        classifier = mtnn.load_pretrained()
    if task not in classifier.labels:
        raise BadInputError(f"task {task!r}: the classifier has {sorted(classifier.labels)}")
    classes = list(classifier.labels[task])
    for name in (target, versus):
        if name is not None and name not in classes:
            raise BadInputError(f"class {name!r}: the classifier's {task} classes are {classes}")
    probabilities = np.asarray(classifier.predict_proba(grids)[task], dtype=np.float64)
    p_target = probabilities[:, classes.index(target)]
    if versus is None:
        return p_target
    total = p_target + probabilities[:, classes.index(versus)]
    return np.divide(p_target, total, out=np.full_like(total, 0.5), where=total > 0)


def transfer_strength(grids, target: str, classifier=None, task: str = "region", versus: str | None = None) -> float:
    """Transfer strength (Brunner et al. 2018): the mean probability of the target style,

    .. math:: S = \\frac{1}{N} \\sum_{i=1}^{N} P_{clf}(\\text{task} = \\text{target} \\mid x_i),

    over the transferred grids ``[shape=(N, T)]``, ``T >= 32``; by default the task is the region
    (e.g. ``target="Irish"``); with ``versus``, P renormalised over the target and that source style
    (see `target_probabilities`). Measure it on the sources too: the difference is what the
    transfer achieved.

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """
    return float(target_probabilities(grids, target, classifier, task, versus).mean())


# Latent attribute vectors (chapter 8) ---------------------------------------------------------


def split_phrases(grids, phrase_steps: int = 32) -> np.ndarray:
    """Cut melodies [shape=(N, K * phrase_steps)] into consecutive phrases [shape=(N * K, phrase_steps)].

    A note tied over a cut is struck again at the start of the next phrase (as `symbolic.slice_grid`
    does), so that every phrase stands on its own for the VAE; ``grids.reshape(N, -1)`` of the
    decoded phrases joins them back.

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """
    grids = np.asarray(grids)
    if grids.ndim != 2 or grids.shape[1] % phrase_steps:
        raise BadInputError(f"grids {grids.shape}: expected (N, T) with T a multiple of {phrase_steps} steps")
    sounding = np.stack([symbolic.sounding_tokens(g) for g in grids]) if grids.size else grids
    phrases = grids.reshape(-1, phrase_steps).copy()
    tied = phrases[:, 0] == symbolic.HOLD
    phrases[tied, 0] = sounding.reshape(-1, phrase_steps)[tied, 0]
    return phrases


def latent_means(model, tokens, batch_size: int = 2048) -> torch.Tensor:
    """Posterior means mu(x) [shape=(N, z_dim)] of a melody VAE for tokens [shape=(N, T)]."""
    tokens = torch.as_tensor(np.asarray(tokens))
    with torch.no_grad():
        return torch.cat([model.encode(tokens[i:i + batch_size])[0] for i in range(0, len(tokens), batch_size)])


def attribute_vector(model, tokens_with, tokens_without) -> torch.Tensor:
    """MusicVAE's attribute vector (Roberts et al. 2018): the mean code of melodies that have an
    attribute minus the mean code of melodies that lack it,

    .. math:: v = \\frac{1}{|A|}\\sum_{x \\in A} \\mu(x) - \\frac{1}{|B|}\\sum_{x \\in B} \\mu(x),

    [shape=(z_dim,)]. Adding :math:`\\alpha v` to a code moves it by :math:`\\alpha` times the
    average difference between the two groups.

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """
    if len(tokens_with) == 0 or len(tokens_without) == 0:
        raise BadInputError(f"attribute_vector: {len(tokens_with)} melodies with the attribute and "
                            f"{len(tokens_without)} without; both groups need at least one")
    return latent_means(model, tokens_with).mean(0) - latent_means(model, tokens_without).mean(0)


def decode_moved(model, z, direction, alpha: float, batch_size: int = 2048) -> np.ndarray:
    """Greedy decodings [shape=(N, T)] of the codes :math:`z + \\alpha\\, d`.

    ``z`` [shape=(N, z_dim)]; ``direction`` d [shape=(z_dim,)] (an attribute vector, the same for
    every melody) or [shape=(N, z_dim)] (e.g. ``centroid - z``: then :math:`\\alpha \\in [0, 1]`
    interpolates each melody's code towards the centroid).

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """
    moved = torch.as_tensor(z) + float(alpha) * torch.as_tensor(direction)
    with torch.no_grad():
        return torch.cat([model.decode(moved[i:i + batch_size]) for i in range(0, len(moved), batch_size)]).numpy()


def transfer_curve(model, tokens, alphas, vector=None, centroid=None, target: str | None = None,
                   classifier=None, task: str = "region", versus: str | None = None) -> list[dict]:
    """Sweep the strength of a latent move and measure each step on the same melodies.

    Each melody's code :math:`z = \\mu(x)` moves to :math:`z + \\alpha v` (``vector``) or to
    :math:`z + \\alpha (c - z)` (``centroid`` c, :math:`\\alpha \\in [0, 1]`), is decoded greedily
    and scored against its source with `content_preservation`, and, given ``target`` (a class of
    the classifier's ``task``), with `transfer_strength` (``versus``: see there). Melodies longer
    than the VAE's phrase (``T`` a multiple of it) are moved phrase by phrase (`split_phrases`)
    and judged whole.

    Parameters
    ----------
    tokens : array-like [shape=(N, T)]
        T = K times the VAE's ``seq_len``.
    alphas : sequence of float
    vector, centroid : Tensor [shape=(z_dim,)]
        Exactly one of the two.

    Returns
    -------
    one dict per alpha: ``alpha``, ``onset_agreement``, ``contour_agreement``, ``n``, ``grids``
    [shape=(N, T)], and ``strength`` when ``target`` is given.

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """
    if (vector is None) == (centroid is None):
        raise BadInputError("transfer_curve: give exactly one of vector (attribute shift) or centroid")
    sources = np.asarray(tokens)
    z = latent_means(model, split_phrases(sources, model.config.seq_len))
    direction = vector if vector is not None else torch.as_tensor(centroid) - z
    rows = []
    for alpha in alphas:
        grids = decode_moved(model, z, direction, alpha).reshape(sources.shape)
        row = {"alpha": float(alpha), **content_preservation(sources, grids), "grids": grids}
        if target is not None:
            row["strength"] = transfer_strength(grids, target, classifier, task, versus)
        rows.append(row)
    return rows


def pick_operating_point(rows: list[dict], min_strength: float = 0.7, min_onset: float = 0.5) -> dict:
    """The row of a `transfer_curve` to use: the smallest alpha whose strength reaches
    ``min_strength`` while onset agreement stays at least ``min_onset``; if none does, the
    strongest row that keeps ``min_onset`` (or, failing that too, the most faithful row).
    Pick it on validation melodies and report it on test melodies.

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """
    if not rows or any("strength" not in r for r in rows):
        raise BadInputError("pick_operating_point: needs transfer_curve rows measured with a target")
    faithful = [r for r in rows if r["onset_agreement"] >= min_onset]
    meeting = [r for r in faithful if r["strength"] >= min_strength]
    if meeting:
        return min(meeting, key=lambda r: r["alpha"])
    if faithful:
        return max(faithful, key=lambda r: r["strength"])
    return max(rows, key=lambda r: r["onset_agreement"])


# Timbre morphing (chapter 8) --------------------------------------------------------------------


def morph_progress(path, x_from, x_to) -> np.ndarray:
    """How far along from one sound to another each point of a morph is, [shape=(n,)] in [0, 1]:

    .. math:: r_t = \\frac{d(x_t, x_{from})}{d(x_t, x_{from}) + d(x_t, x_{to})},

    with :math:`d` the RMS distance between spectrograms. Measured against the *real* renderings
    ``x_from``, ``x_to`` of the two instruments, a good morph has :math:`r_t` rising steadily from
    near 0 to near 1.

    Parameters
    ----------
    path : ndarray [shape=(n, ...)]
        The morph's spectrograms, in order.
    x_from, x_to : ndarray [shape=(...)]
        Same shape as one point of the path.

    Chapter: notebooks/08_style_transfer_vae.ipynb
    """
    path, x_from, x_to = (np.asarray(a, dtype=np.float64) for a in (path, x_from, x_to))
    if path.ndim < 1 or path.shape[1:] != x_from.shape or x_from.shape != x_to.shape:
        raise BadInputError(f"morph_progress: path {path.shape} must be (n, *shape) with x_from {x_from.shape} "
                            f"and x_to {x_to.shape} both of that shape")
    axes = tuple(range(1, path.ndim))
    d_from = np.sqrt(((path - x_from) ** 2).mean(axis=axes))
    d_to = np.sqrt(((path - x_to) ** 2).mean(axis=axes))
    total = d_from + d_to
    return np.divide(d_from, total, out=np.full_like(total, 0.5), where=total > 0)
