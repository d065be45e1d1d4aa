"""Evaluating music with classifiers (chapters 11-12): a multi-task network and an RNN evaluator.

- `MultiTaskNet`: one shared encoder (token embedding -> dilated 1-D convolutions -> masked mean
  pooling) over an event grid of any length, and one linear head per task: region, tune type
  (the tune's function), meter and mode. With one task it is the single-task baseline.
- `RNNEvaluator`: a GRU reading the grid step by step, with the same heads at every step, so that
  its prediction after t steps shows how much of the piece it needed to hear.

Labels come from the corpus metadata (`task_label`; for your own files, ``--data``, the class
subfolders as the region task alone, `datasets.user.read_classes`); a tune without a label for a
task is left out of that task's loss (target -100). Every ``forward`` returns logits.

Chapter: notebooks/11_multitask_evaluation.ipynb
"""
from __future__ import annotations

import collections
import functools
import re
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .. import symbolic, weights
from ..errors import BadInputError

TASKS = ("region", "tune_type", "meter", "mode")
IGNORE = -100  # the target of an unlabelled example (ignored by `losses.masked_cross_entropy`)
OTHER = "other"

# A tune's function from its tune type (O'Neill, Ryan, Aird) or Essen's German R: field, first match
# wins. Essen's several hundred free-text functions fall into a few song families this way.
_FUNCTIONS = [("slip jig", r"slip ?jig"), ("jig", r"\bjig"), ("reel", r"\breel"), ("hornpipe", r"hornpipe"),
              ("strathspey", r"strathspey"), ("march", r"\bmarch"), ("air", r"^air$"),
              ("xiaodiao", r"xiaodiao"), ("shange", r"shange"), ("haozi", r"haozi"),
              ("children's song", r"kinder|wiegen"), ("religious song", r"geistlich|religi"),
              ("love song", r"^liebe"), ("ballad", r"ballade|romanze|sage|erz[aä]hl"),
              ("soldier's song", r"soldat|krieg"), ("drinking song", r"trink|zech"), ("dance song", r"tanz")]
_MODAL = ("dorian", "mixolydian", "lydian", "phrygian", "locrian")


def tune_function(tune_type: str) -> str:
    """The coarse function of a raw tune-type string ("" stays unlabelled, unmatched -> "other")."""
    text = tune_type.strip().lower()
    if not text:
        return ""
    return next((name for name, pattern in _FUNCTIONS if re.search(pattern, text)), OTHER)


def task_label(tune, task: str) -> str:
    """A tune's label for one task, or "" when it has none.

    The mode of a Chinese tune is unlabelled: the Essen ``K:`` field of the Chinese collections
    gives a key signature only, so every one of them reads "major" (see chapter 11).
    """
    if task == "region":
        return tune.region
    if task == "tune_type":
        return tune_function(tune.tune_type)
    if task == "meter":
        return "" if tune.meter == "free" else tune.meter
    if task == "mode":
        if tune.region == "Chinese":
            return ""
        return "modal" if tune.mode in _MODAL else tune.mode
    raise BadInputError(f"unknown task {task!r}; choose from {TASKS}")


def build_labels(tunes, tasks=TASKS, min_count: int = 20) -> dict[str, list[str]]:
    """Per task, the labels seen at least ``min_count`` times, sorted, plus "other" for the rest."""
    labels = {}
    for task in tasks:
        counts = collections.Counter(task_label(t, task) for t in tunes)
        counts.pop("", None)
        frequent = sorted(v for v, n in counts.items() if n >= min_count and v != OTHER)
        labels[task] = frequent + ([OTHER] if len(frequent) < len(counts) or OTHER in counts else [])
    return labels


def encode_targets(tunes, labels: dict[str, list[str]]) -> dict[str, torch.Tensor]:
    """Per task, LongTensor [shape=(N,)] of label indices; unlabelled -> -100, unseen -> "other"."""
    targets = {}
    for task, names in labels.items():
        index = {name: i for i, name in enumerate(names)}
        fallback = index.get(OTHER, IGNORE)
        targets[task] = torch.tensor([index.get(v, fallback) if (v := task_label(t, task)) else IGNORE
                                      for t in tunes], dtype=torch.long)
    return targets


def pad_grids(grids) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch grids of varying length: ``(tokens LongTensor [shape=(N, T_max)], mask bool [shape=(N, T_max)])``.

    ``grids`` is a LongTensor / array [shape=(N, T)] or a list of 1-D grids. Raises `BadInputError`
    for an empty batch, an empty grid or a token outside [0, VOCAB_SIZE).
    """
    if isinstance(grids, (torch.Tensor, np.ndarray)) and np.ndim(grids) == 2:
        grids = list(grids)
    if isinstance(grids, (torch.Tensor, np.ndarray)) or not len(grids):
        raise BadInputError("expected a batch of event grids: a 2-D array or a non-empty list of 1-D grids")
    arrays = [np.asarray(g.cpu() if isinstance(g, torch.Tensor) else g, dtype=np.int64).reshape(-1) for g in grids]
    for i, a in enumerate(arrays):
        if a.size == 0:
            raise BadInputError(f"grid {i} is empty")
        if a.min() < 0 or a.max() >= symbolic.VOCAB_SIZE:
            raise BadInputError(f"grid {i}: tokens must lie in 0..{symbolic.VOCAB_SIZE - 1}")
    tokens = torch.zeros(len(arrays), max(a.size for a in arrays), dtype=torch.long)
    mask = torch.zeros(tokens.shape, dtype=torch.bool)
    for i, a in enumerate(arrays):
        tokens[i, :a.size], mask[i, :a.size] = torch.from_numpy(a), True
    return tokens, mask


# Multi-task network ---------------------------------------------------------------------------------


@dataclass
class MultiTaskConfig:
    labels: dict = field(default_factory=dict)  # task -> list of class names; one entry = single task
    vocab_size: int = symbolic.VOCAB_SIZE
    embed_dim: int = 32
    channels: int = 64
    n_layers: int = 4  # dilations 1, 2, 4, 8, ...: a receptive field of 1 + (k - 1)(2^n - 1) steps
    kernel_size: int = 5
    dropout: float = 0.1


class MultiTaskNet(nn.Module):
    """Shared encoder + one linear head per task.

    h_0 = embed(x);  h_l = h_{l-1} + gelu(layernorm(conv_l(h_{l-1}))) (dilation 2^(l-1)), zeroed at padding;
    z = sum_t mask_t h_L,t / sum_t mask_t (masked mean pooling);  logits_task = W_task z + b_task.

    Parameters
    ----------
    tokens : LongTensor [shape=(B, T)], event-grid tokens
    mask : BoolTensor [shape=(B, T)], True on real steps

    Returns
    -------
    dict task -> logits Tensor [shape=(B, n_classes)]

    ``log_variances`` holds one learnable s_task = log sigma_task^2 per task for
    `losses.uncertainty_weighted_loss`.
    """

    def __init__(self, config: MultiTaskConfig):
        super().__init__()
        if not config.labels:
            raise BadInputError("MultiTaskConfig.labels: give at least one task and its classes")
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embed_dim)
        self.project = nn.Conv1d(config.embed_dim, config.channels, 1)
        self.convs = nn.ModuleList(
            nn.Conv1d(config.channels, config.channels, config.kernel_size, dilation=2 ** i,
                      padding=(config.kernel_size - 1) // 2 * 2 ** i) for i in range(config.n_layers))
        # normalised over the channels of each step: padding never leaks into real steps
        self.norms = nn.ModuleList(nn.LayerNorm(config.channels) for _ in range(config.n_layers))
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict({task: nn.Linear(config.channels, len(names))
                                    for task, names in config.labels.items()})
        self.log_variances = nn.ParameterDict({task: nn.Parameter(torch.zeros(())) for task in config.labels})

    @property
    def labels(self) -> dict[str, list[str]]:
        return self.config.labels

    def encode(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The pooled shared embedding z, Tensor [shape=(B, channels)]."""
        keep = mask[:, None].float()
        h = self.project(self.embed_tokens(tokens).transpose(1, 2)) * keep
        for conv, norm in zip(self.convs, self.norms):
            h = (h + self.dropout(nn.functional.gelu(norm(conv(h).transpose(1, 2)).transpose(1, 2)))) * keep
        return h.sum(-1) / keep.sum(-1).clamp(min=1)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encode(tokens, mask)
        return {task: head(z) for task, head in self.heads.items()}

    @torch.no_grad()
    def embed(self, grids, batch_size: int = 64) -> np.ndarray:
        """The shared encoder's pooled embedding of each grid, float32 [shape=(N, channels)]."""
        return _in_batches(self, grids, batch_size, lambda tokens, mask: {"z": self.encode(tokens, mask)})["z"]

    @torch.no_grad()
    def predict_proba(self, grids, batch_size: int = 64) -> dict[str, np.ndarray]:
        """Class probabilities per task: dict task -> float32 [shape=(N, n_classes)], columns in
        the order of ``labels[task]``. ``grids``: (N, T) array/tensor or a list of 1-D grids."""
        return _in_batches(self, grids, batch_size, lambda tokens, mask: {
            task: torch.softmax(logits.float(), -1) for task, logits in self(tokens, mask).items()})


def _in_batches(model: nn.Module, grids, batch_size: int, fn) -> dict[str, np.ndarray]:
    """Apply ``fn(tokens, mask) -> dict of Tensor [shape=(B, ...)]`` in eval mode to batches of
    grids of similar length (sorted, so that a long tune does not pad a whole batch), and return
    the results in input order."""
    tokens, mask = pad_grids(grids)
    lengths = mask.sum(1)
    order = torch.argsort(lengths)
    device = next(model.parameters()).device
    out = collections.defaultdict(list)
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(order), batch_size):
            rows = order[i:i + batch_size]
            length = int(lengths[rows].max())
            for key, value in fn(tokens[rows, :length].to(device), mask[rows, :length].to(device)).items():
                out[key].append(value.float().cpu().numpy())
    finally:
        model.train(was_training)
    inverse = torch.argsort(order).numpy()
    return {key: np.concatenate(parts)[inverse] for key, parts in out.items()}


# RNN evaluator ----------------------------------------------------------------------------------------


@dataclass
class RNNEvaluatorConfig:
    labels: dict = field(default_factory=dict)
    vocab_size: int = symbolic.VOCAB_SIZE
    embed_dim: int = 32
    hidden_dim: int = 128
    dropout: float = 0.1


class RNNEvaluator(nn.Module):
    """A GRU over the event grid with every task's head at every step:
    p_t(task) = softmax(W_task h_t + b_task), h_t = GRU(embed(x_t), h_{t-1}).

    Trained on the tune's label at every step, so p_t is the prediction after reading x_1..x_t.

    Parameters
    ----------
    tokens : LongTensor [shape=(B, T)]

    Returns
    -------
    dict task -> logits Tensor [shape=(B, T, n_classes)]

    Chapter: notebooks/12_rnn_evaluation.ipynb
    """

    def __init__(self, config: RNNEvaluatorConfig):
        super().__init__()
        if not config.labels:
            raise BadInputError("RNNEvaluatorConfig.labels: give at least one task and its classes")
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embed_dim)
        self.gru = nn.GRU(config.embed_dim, config.hidden_dim, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict({task: nn.Linear(config.hidden_dim, len(names))
                                    for task, names in config.labels.items()})

    @property
    def labels(self) -> dict[str, list[str]]:
        return self.config.labels

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        h, _ = self.gru(self.embed_tokens(tokens))
        h = self.dropout(h)
        return {task: head(h) for task, head in self.heads.items()}

    @torch.no_grad()
    def predict_steps(self, grid) -> dict[str, np.ndarray]:
        """Per-step class probabilities of one grid: dict task -> float32 [shape=(T, n_classes)]."""
        tokens, _ = pad_grids([grid])
        was_training = self.training
        self.eval()
        logits = self(tokens.to(next(self.parameters()).device))
        self.train(was_training)
        return {task: torch.softmax(v[0].float(), -1).cpu().numpy() for task, v in logits.items()}


# Shipped models -----------------------------------------------------------------------------------------


CLASSES = {"mtnn": (MultiTaskNet, MultiTaskConfig), "rnn-evaluator": (RNNEvaluator, RNNEvaluatorConfig)}


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, path: str | None) -> MultiTaskNet | RNNEvaluator:
    return weights.load_family(name, CLASSES, path)[0]


def load_pretrained(name: str = "mtnn", path=None) -> MultiTaskNet | RNNEvaluator:
    """Load ``mtnn`` (the multi-task network) or ``rnn-evaluator``: the shipped weights
    (``musiclab/checkpoints/NAME.safetensors``) or your own trained ones at ``path``, checked by
    `weights.load_weights`, in eval mode. Returns the model alone (its sidecar: `weights.read_sidecar`):
    the evaluators are loaded once per process and shared by every measure that uses them.

    Chapter: notebooks/11_multitask_evaluation.ipynb
    """
    if name not in CLASSES:
        raise BadInputError(f"unknown model {name!r}; choose one of: {', '.join(CLASSES)}")
    return _load_cached(name, None if path is None else str(path))


def region_probability(grids, region: str, model: MultiTaskNet | None = None) -> np.ndarray:
    """p(region | grid) under the multi-task network, float32 [shape=(N,)]: the "transfer strength"
    of a style-transfer output (chapters 8-9). See chapter 11 for its accuracy on 2- and 4-bar slices."""
    model = model or load_pretrained()
    if region not in model.labels["region"]:
        raise BadInputError(f"region {region!r}: choose from {model.labels['region']}")
    return model.predict_proba(grids)["region"][:, model.labels["region"].index(region)]
