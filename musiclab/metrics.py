"""Evaluation metrics.

- Audio (chapter 3): pitch by an outside estimator (pYIN), a note classifier and the Frechet
  distance in its embedding, sample diversity.
- Piano rolls (chapter 4): negative log-likelihood per frame under a polyphonic model.
- Symbolic (chapter 13): MGEval-style per-piece features of event grids (Yang & Lerch 2018),
  intra-/inter-set distance distributions with their kernel density estimates, overlap area and KL
  divergence; histogram JS divergences; originality as the n-gram copy rate against a training set.

Chapter: notebooks/03_gan.ipynb, notebooks/13_evaluating_generative_models.ipynb
"""
from __future__ import annotations

import warnings

import librosa
import numpy as np
import scipy.linalg
import scipy.spatial.distance
import scipy.special
import torch
from torch import nn
from torch.nn import functional as F

from . import losses, symbolic
from .models import rnn
from .errors import BadInputError

# pYIN's search range: an octave below G3 (196 Hz) to an octave above G5 (784 Hz), so that octave
# errors in either direction can happen and are counted as errors.
PYIN_FMIN_HZ, PYIN_FMAX_HZ = 80.0, 1600.0


# Pitch -----------------------------------------------------------------------------------------------


def f0_frames(y: np.ndarray, sr: int, fmin_hz: float = PYIN_FMIN_HZ, fmax_hz: float = PYIN_FMAX_HZ,
              frame_length: int = 1024, hop_length: int | None = None, resolution: float = 0.1,
              min_voiced_prob: float = 0.0) -> np.ndarray:
    """pYIN f0 in Hz per frame [shape=(frames,)], NaN where pYIN finds the frame unvoiced or its
    voicing probability is below ``min_voiced_prob``. Frame k is centred at ``k * hop_length / sr``
    seconds (``hop_length`` defaults to ``frame_length // 4``); ``resolution`` is the pitch-bin
    width in semitones. librosa's pYIN loops over frames in Python (about 0.2 ms each), so its
    time grows with the number of frames, hardly with ``sr`` or ``resolution``.

    Chapter: notebooks/03_gan.ipynb, notebooks/13_evaluating_generative_models.ipynb
    """
    f0, voiced, voiced_prob = librosa.pyin(np.asarray(y, dtype=np.float32), fmin=fmin_hz, fmax=fmax_hz, sr=sr,
                                           frame_length=frame_length, hop_length=hop_length, resolution=resolution)
    return np.where(voiced & (voiced_prob >= min_voiced_prob) & np.isfinite(f0), f0, np.nan)


def estimate_f0_hz(y: np.ndarray, sr: int) -> float:
    """Median f0 (Hz) over the voiced frames found by pYIN (`f0_frames`); NaN if none is voiced.

    Chapter: notebooks/03_gan.ipynb
    """
    f0 = f0_frames(y, sr)
    f0 = f0[np.isfinite(f0)]
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

    Any embedding works: the chapter-3 note classifier's, or the chapter-11 multi-task network's
    ("Frechet distance in the MTNN embedding"; FAD is this distance in VGGish's embedding only).

    Chapter: notebooks/03_gan.ipynb, notebooks/13_evaluating_generative_models.ipynb
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise BadInputError(f"frechet_distance: expected two (N, d) feature sets, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))  # d = 1 too
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


# Symbolic: notes of an event grid ---------------------------------------------------------------------


def grid_notes(grid) -> tuple[np.ndarray, np.ndarray]:
    """Pitches and durations (in 16th-note steps, rests merged into the note before) of a grid.

    The durations are inter-onset intervals, the last one running to the end of the grid.

    Chapter: notebooks/04_rnn.ipynb, notebooks/13_evaluating_generative_models.ipynb
    """
    grid = np.asarray(grid)
    onsets = np.flatnonzero(grid >= 2)
    pitches = grid[onsets] - 2 + symbolic.PITCH_LOW
    durations = np.diff(np.r_[onsets, len(grid)])
    return pitches, durations


def grid_note_lengths(grid) -> np.ndarray:
    """How long each note of a grid sounds, in 16th-note steps: its onset plus the HOLDs after it
    (rests excluded, unlike the inter-onset intervals of `grid_notes`).

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    grid = np.asarray(grid)
    onsets = np.flatnonzero(grid >= 2)
    events = np.r_[np.flatnonzero(grid != symbolic.HOLD), len(grid)]  # onsets and rests
    return events[np.searchsorted(events, onsets, side="right")] - onsets


# Symbolic: histograms over a set and originality ----------------------------------------------------


def melody_histograms(grids) -> dict:
    """Normalised histograms over a set of grids: pitch class (12), interval (-12..12, 25), duration
    (1..16 steps, 16; longer ones in the last bin).

    Chapter: notebooks/04_rnn.ipynb, notebooks/13_evaluating_generative_models.ipynb
    """
    pc, iv, du = np.zeros(12), np.zeros(25), np.zeros(16)
    for grid in grids:
        pitches, durations = grid_notes(grid)
        np.add.at(pc, pitches % 12, 1)
        np.add.at(iv, np.clip(np.diff(pitches), -12, 12) + 12, 1)
        np.add.at(du, np.clip(durations, 1, 16) - 1, 1)
    return {name: h / max(h.sum(), 1) for name, h in (("pitch_class", pc), ("interval", iv), ("duration", du))}


def histogram_js_divergences(grids_a, grids_b) -> dict:
    """Jensen-Shannon divergence (nats) between the `melody_histograms` of two sets of grids, per
    histogram: ``{"pitch_class": ..., "interval": ..., "duration": ...}``.

    Chapter: notebooks/04_rnn.ipynb, notebooks/13_evaluating_generative_models.ipynb
    """
    a, b = melody_histograms(grids_a), melody_histograms(grids_b)
    return {name: losses.js_divergence(torch.from_numpy(a[name]), torch.from_numpy(b[name])).item() for name in a}


def melody_statistics(grids) -> dict:
    """Histograms that summarise a set of grids [shape=(N, T)], e.g. a VAE's prior samples:

    - ``pitch_class``: share of notes per pitch class (12,), relative to nothing (absolute C..B);
    - ``interval``: share of melodic intervals between successive notes, clipped to [-12, 12] (25,);
    - ``duration``: share of note lengths (onset to next onset or the end, including rests) of
      1..16 sixteenths, longer ones in the last bin (16,);
    - ``notes_per_bar`` and ``rest_share`` (fraction of steps that are rests) as floats.

    Chapter: notebooks/06_vae.ipynb
    """
    grids = np.asarray(grids)
    if grids.ndim != 2 or not len(grids):
        raise BadInputError(f"grids: expected a non-empty 2-D array of tokens, got shape {grids.shape}")
    n_notes = int(np.count_nonzero(grids >= 2))
    return {**melody_histograms(grids), "notes_per_bar": n_notes / len(grids) / (grids.shape[1] / 16),
            "rest_share": float((grids == symbolic.REST).mean())}


def pitch_ngrams(grid, n: int = 8, transposition_invariant: bool = False) -> set:
    """The set of runs of ``n`` successive note pitches of a grid (rhythm ignored); with
    ``transposition_invariant`` the runs are of the ``n - 1`` intervals between them.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    if n < 1:
        raise BadInputError(f"pitch_ngrams: n={n}, expected >= 1")
    pitches = grid_notes(grid)[0]
    if transposition_invariant:
        pitches, n = np.diff(pitches), n - 1
    return {tuple(pitches[i:i + n].tolist()) for i in range(len(pitches) - n + 1)} if n > 0 else set()


def ngram_index(training_grids, n: int = 8, transposition_invariant: bool = False) -> set:
    """Every `pitch_ngrams` run of a set of grids: build it once to check many pieces."""
    return set().union(*(pitch_ngrams(g, n, transposition_invariant) for g in training_grids))


def copy_rate(generated_grids, training, n: int = 8, transposition_invariant: bool = False) -> float:
    """Originality check: the fraction of the generated pieces' ``n``-note pitch runs (each piece's
    distinct runs, see `pitch_ngrams`) that occur anywhere in the training pieces. ``training``:
    their grids, or their `ngram_index` (built with the same ``n``). NaN if no generated piece has
    ``n`` notes.

    Real held-out music copies too (folk tunes share stock phrases): compare with the held-out
    tunes' own copy rate, not with zero.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    seen = training if isinstance(training, (set, frozenset)) else ngram_index(training, n, transposition_invariant)
    generated = [r for g in generated_grids for r in pitch_ngrams(g, n, transposition_invariant)]
    return float(np.mean([r in seen for r in generated])) if generated else float("nan")


# Piano rolls: likelihood under a polyphonic model ---------------------------------------------------


@torch.no_grad()
def score_rolls(model, rolls, batch_size: int = 32) -> dict:
    """NLL of piano rolls in nats per frame, the JSB Chorales convention: summed over the 88 keys,
    averaged over all predicted frames of all rolls (each roll's first frame is only context).

    ``model`` is a `models.rnn.PolyRNN`. Returns ``{"nll_per_frame", "n_frames", "n_rolls"}``.

    Chapter: notebooks/04_rnn.ipynb
    """
    rolls = [r for r in rnn.check_rolls(rolls, model.config.n_keys) if len(r) >= 2]
    if not rolls:
        raise BadInputError("piano roll: every roll has fewer than 2 frames; nothing to score")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, n_frames = 0.0, 0
    for i in range(0, len(rolls), batch_size):
        batch, mask = rnn.pad_rolls(rolls[i:i + batch_size])
        batch, mask = batch.to(device), mask.to(device)
        n = mask.sum().item()
        total += losses.pianoroll_nll(model(batch).float(), batch[:, 1:], mask).item() * n
        n_frames += int(n)
    model.train(was_training)
    return {"nll_per_frame": total / n_frames, "n_frames": n_frames, "n_rolls": len(rolls)}


# Symbolic: MGEval-style per-piece features (Yang & Lerch 2018) --------------------------------------

# Note-length classes in 16th-note steps: 16th, 8th, dotted 8th, quarter, dotted quarter, half,
# dotted half, whole; every other length falls in a tenth class, "other". MGEval's triplet classes
# do not exist on a 16th-note grid.
NOTE_LENGTH_STEPS = (1, 2, 3, 4, 6, 8, 12, 16)
NOTE_LENGTH_NAMES = ("16th", "8th", "dotted 8th", "quarter", "dotted quarter", "half", "dotted half",
                     "whole", "other")
FEATURES = ("pitch_count", "pitch_class_histogram", "pitch_class_transitions", "pitch_range",
            "average_interval", "note_count", "average_ioi", "note_length_histogram",
            "note_length_transitions")
SCALAR_FEATURES = ("pitch_count", "pitch_range", "average_interval", "note_count", "average_ioi")
FEATURE_UNITS = {"pitch_count": "distinct pitches", "pitch_range": "semitones",
                 "average_interval": "semitones", "note_count": "notes", "average_ioi": "quarter notes"}


def _normalised(counts: np.ndarray) -> np.ndarray:
    return counts / max(counts.sum(), 1)


def note_length_classes(lengths_steps) -> np.ndarray:
    """The class index (0..8, see `NOTE_LENGTH_NAMES`) of each note length in 16th-note steps."""
    lengths = np.asarray(lengths_steps)
    table = np.full(max(NOTE_LENGTH_STEPS) + 1, len(NOTE_LENGTH_STEPS))
    table[list(NOTE_LENGTH_STEPS)] = np.arange(len(NOTE_LENGTH_STEPS))
    return np.where(lengths <= max(NOTE_LENGTH_STEPS), table[np.minimum(lengths, max(NOTE_LENGTH_STEPS))],
                    len(NOTE_LENGTH_STEPS))


def piece_features(grid) -> dict:
    """The MGEval features of one melody (Yang & Lerch 2018), on its event grid [shape=(T,)]:

    - ``pitch_count``: distinct pitches used; ``note_count``: notes;
    - ``pitch_class_histogram`` (12,): share of notes per pitch class;
    - ``pitch_class_transitions`` (12, 12): share of successive-note pairs (from, to), over all pairs;
    - ``pitch_range``: highest minus lowest pitch (semitones);
    - ``average_interval``: mean |p_{i+1} - p_i| between successive notes (semitones);
    - ``average_ioi``: mean inter-onset interval (quarter notes);
    - ``note_length_histogram`` (9,) and ``note_length_transitions`` (9, 9): the same for note
      lengths (onset plus HOLDs, rests excluded) in the classes of `NOTE_LENGTH_NAMES`.

    A piece without notes gets zeros everywhere.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    grid = symbolic.check_grid(grid)
    onsets = np.flatnonzero(grid >= 2)
    pitches = grid[onsets] - 2 + symbolic.PITCH_LOW
    classes = note_length_classes(grid_note_lengths(grid))
    n_lengths = len(NOTE_LENGTH_NAMES)
    pc_pairs, length_pairs = np.zeros((12, 12)), np.zeros((n_lengths, n_lengths))
    np.add.at(pc_pairs, (pitches[:-1] % 12, pitches[1:] % 12), 1)
    np.add.at(length_pairs, (classes[:-1], classes[1:]), 1)
    return {
        "pitch_count": float(len(np.unique(pitches))),
        "pitch_class_histogram": _normalised(np.bincount(pitches % 12, minlength=12).astype(float)),
        "pitch_class_transitions": _normalised(pc_pairs),
        "pitch_range": float(np.ptp(pitches)) if pitches.size else 0.0,
        "average_interval": float(np.abs(np.diff(pitches)).mean()) if pitches.size > 1 else 0.0,
        "note_count": float(len(pitches)),
        "average_ioi": float(np.diff(onsets).mean()) / symbolic.STEPS_PER_QUARTER if onsets.size > 1 else 0.0,
        "note_length_histogram": _normalised(np.bincount(classes, minlength=n_lengths).astype(float)),
        "note_length_transitions": _normalised(length_pairs),
    }


def set_features(grids) -> dict:
    """`piece_features` of every grid, stacked: ``{feature: array [shape=(N, ...)]}``."""
    per_piece = [piece_features(g) for g in grids]
    if not per_piece:
        raise BadInputError("set_features: no pieces")
    return {name: np.stack([np.asarray(f[name], np.float64) for f in per_piece]) for name in FEATURES}


# Symbolic: intra-/inter-set distances, their densities, overlap and KL ------------------------------


def feature_distances(features_a: np.ndarray, features_b: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distances between pieces' values of one feature [shape=(N, ...)].

    ``features_b=None``: the intra-set distances, every pair i < j of set a [shape=(N (N-1) / 2,)];
    otherwise the inter-set distances, every (i in a, j in b) [shape=(N_a N_b,)].

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    a = np.asarray(features_a, np.float64).reshape(len(features_a), -1)
    if features_b is None:
        if len(a) < 2:
            raise BadInputError(f"feature_distances: intra-set distances need >= 2 pieces, got {len(a)}")
        return scipy.spatial.distance.pdist(a)
    b = np.asarray(features_b, np.float64).reshape(len(features_b), -1)
    return scipy.spatial.distance.cdist(a, b).ravel()


def kde_bandwidth(samples) -> float:
    """Scott's rule, as ``scipy.stats.gaussian_kde``: h = std(samples, ddof=1) n^(-1/5); a set of
    identical values (std 0) gets a small positive h, so that its density is a narrow spike."""
    x = np.asarray(samples, np.float64)
    std = float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
    return std * len(x) ** (-1 / 5) if std > 0 else 1e-3 * max(float(np.abs(x).max(initial=0.0)), 1.0)


def kde_log_density(samples, x, bandwidth: float | None = None) -> np.ndarray:
    """log p(x) of the Gaussian kernel density estimate p(x) = 1/n sum_i N(x; s_i, h^2), computed
    with logsumexp, so that it stays finite far from the samples where p underflows to 0."""
    s, x = np.asarray(samples, np.float64), np.asarray(x, np.float64)
    h = kde_bandwidth(s) if bandwidth is None else float(bandwidth)
    if not len(s) or h <= 0:
        raise BadInputError(f"kde: need >= 1 sample and a positive bandwidth, got {len(s)} and {h}")
    # in chunks of samples, so that 90,000 distances on a 512-point grid need 33 MB, not 370 MB
    log_sum = np.full(len(x), -np.inf)
    for start in range(0, len(s), 8192):
        z = (x[:, None] - s[None, start:start + 8192]) / h
        log_sum = np.logaddexp(log_sum, scipy.special.logsumexp(-0.5 * z ** 2, axis=1))
    return log_sum - np.log(len(s) * h * np.sqrt(2 * np.pi))


def density_grid(samples_p, samples_q, n: int = 512, bandwidths=(None, None)) -> np.ndarray:
    """A common grid for two KDEs: from the smallest to the largest sample, widened by 8 bandwidths
    on each side, so that both densities integrate to 1 on it (to within 1e-9)."""
    h = max(kde_bandwidth(s) if b is None else b for s, b in zip((samples_p, samples_q), bandwidths))
    both = np.r_[np.asarray(samples_p, np.float64), np.asarray(samples_q, np.float64)]
    return np.linspace(both.min() - 8 * h, both.max() + 8 * h, n)


def kde_densities(samples_p, samples_q, bandwidths=(None, None)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two KDEs' log densities on their common `density_grid`: ``(x, log_p, log_q)``."""
    x = density_grid(samples_p, samples_q, bandwidths=bandwidths)
    return x, kde_log_density(samples_p, x, bandwidths[0]), kde_log_density(samples_q, x, bandwidths[1])


def overlap_area(samples_p, samples_q, bandwidths=(None, None), densities=None) -> float:
    """OA = integral of min(p(x), q(x)) dx for the KDEs of two samples: 1 for identical
    distributions, 0 for disjoint ones (Yang & Lerch 2018). ``densities``: `kde_densities`' result,
    if already computed.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    x, log_p, log_q = densities or kde_densities(samples_p, samples_q, bandwidths)
    return float(np.trapezoid(np.exp(np.minimum(log_p, log_q)), x))


def kl_divergence_kde(samples_p, samples_q, bandwidths=(None, None), densities=None) -> float:
    """KL(p || q) = integral of p(x) log(p(x) / q(x)) dx in nats, for the KDEs of two samples, both
    evaluated on one common grid. ``densities``: `kde_densities`' result, if already computed.

    MGEval's ``kl_dist`` instead evaluates p on a grid spanning p's samples and q on a *different*
    grid spanning q's, and passes the two vectors to ``scipy.stats.entropy``: that compares p(x_i)
    with q(y_i) at different points and is not the KL divergence (chapter 13 shows the difference).

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    x, log_p, log_q = densities or kde_densities(samples_p, samples_q, bandwidths)
    return float(max(np.trapezoid(np.exp(log_p) * (log_p - log_q), x), 0.0))


def compare_sets(reference_grids, generated_grids, features=FEATURES) -> dict:
    """Yang & Lerch's set comparison, per feature: the intra-set distances of the reference and the
    generated set, the inter-set distances (reference x generated), and

    - ``kl``: KL(intra-reference || inter) in nats, ``overlap``: OA(intra-reference, inter);
    - ``mean_reference`` / ``mean_generated``: the feature's mean over each set (scalar features).

    A generated set like the reference gives overlap near 1 and KL near 0. Returns
    ``{feature: {"intra_reference", "intra_generated", "inter", "kl", "overlap", ...}}``.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    ref, gen = set_features(reference_grids), set_features(generated_grids)
    out = {}
    for name in features:
        intra_ref, inter = feature_distances(ref[name]), feature_distances(ref[name], gen[name])
        densities = kde_densities(intra_ref, inter)
        row = {"intra_reference": intra_ref, "intra_generated": feature_distances(gen[name]), "inter": inter,
               "kl": kl_divergence_kde(intra_ref, inter, densities=densities),
               "overlap": overlap_area(intra_ref, inter, densities=densities)}
        if name in SCALAR_FEATURES:
            row |= {"mean_reference": float(ref[name].mean()), "mean_generated": float(gen[name].mean())}
        out[name] = row
    return out
