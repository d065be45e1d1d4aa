"""The chapter 11-12 classifiers: ``python -m musiclab train mtnn | rnn-evaluator``.

Both train on random crops of the folk melodies (32..256 sixteenth-note steps), transposed by up to
+-5 semitones (every task here is transposition-invariant: region, tune function, meter, mode), and
are scored on the held-out test split. With ``--data PATH`` they learn the classes of your own
melodies instead, one class per subfolder (``PATH/<class>/*.mid|*.abc|*.xml``, see
`datasets.user.read_classes`): the subfolders are the classes of the style (region) task, the only task
trained then (your files carry no tune type, meter or mode, and the model has no head for them).

Chapter: notebooks/11_multitask_evaluation.ipynb
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from .. import datasets, losses, symbolic, train
from ..errors import BadInputError
from .common import TrainingSettings, _finish, pick_settings, run_identity

THREE_REGIONS = ("German", "Chinese", "Irish")
CROP_STEPS = (32, 64, 128, None)  # None = the whole tune


def random_transpose(grid: np.ndarray, max_shift: int) -> np.ndarray:
    """Transpose by a uniform random shift in [-max_shift, max_shift], narrowed to keep the melody in range."""
    span = symbolic.grid_pitch_range(grid)
    if span is None or max_shift == 0:
        return grid
    low = max(-max_shift, symbolic.PITCH_LOW - span[0])
    high = min(max_shift, symbolic.PITCH_HIGH - span[1])
    return symbolic.transpose_grid(grid, int(torch.randint(low, high + 1, ()))) if low <= high else grid


def crop_batches(tunes, targets: dict, batch_size: int = 32, min_steps: int = 32, max_steps: int = 256,
                 max_shift: int = 5, from_start: float = 0.0, balance: str | None = None):
    """Shuffled batches ``(tokens [shape=(B, L)], mask [shape=(B, L)], targets dict task -> [shape=(B,)])``.

    Each batch draws one crop length L in [min_steps, max_steps]; each tune a random start (the
    tune's beginning with probability ``from_start``) and a random transposition. Shorter tunes are
    padded (mask False). With ``balance="region"`` (a task), tunes are drawn with probability
    proportional to 1 / (number of tunes of their class), so that every class is seen equally often.
    """
    from ..models import mtnn

    def collate(indices):
        length = int(torch.randint(min_steps, max_steps + 1, ()))
        grids = []
        for i in indices:
            grid = tunes[i].grid
            start = 0 if torch.rand(()) < from_start else int(torch.randint(max(len(grid) - length, 0) + 1, ()))
            grids.append(random_transpose(grid[start:start + length], max_shift))
        tokens, mask = mtnn.pad_grids(grids)
        return tokens, mask, {task: t[indices] for task, t in targets.items()}

    sampler = None
    if balance is not None:
        classes = targets[balance]
        counts = torch.bincount(classes[classes >= 0])
        weights = torch.where(classes >= 0, 1.0 / counts[classes.clamp(min=0)], 0.0).double()
        sampler = torch.utils.data.WeightedRandomSampler(weights, len(tunes), replacement=True)
    return torch.utils.data.DataLoader(list(range(len(tunes))), batch_size=batch_size, shuffle=sampler is None,
                                       sampler=sampler, drop_last=len(tunes) > batch_size, collate_fn=collate)


def crop_grids(tunes, n_steps: int | None, seed: int = 0) -> list[np.ndarray]:
    """One crop of ``n_steps`` per tune at a seeded random start (the whole tune if None or shorter)."""
    rng = np.random.default_rng(seed)
    if n_steps is None:
        return [t.grid for t in tunes]
    return [t.grid[s:s + n_steps] for t in tunes for s in [int(rng.integers(max(len(t.grid) - n_steps, 0) + 1))]]


def mtnn_step(model, weighting: str = "uncertainty"):
    """Step function of the multi-task network: masked cross-entropy per task, combined by
    `losses.uncertainty_weighted_loss` (``"uncertainty"``) or `losses.weighted_task_loss` (``"sum"``)."""

    def step(batch, update):
        tokens, mask, targets = batch
        logits = model(tokens, mask)
        task_losses = {task: losses.masked_cross_entropy(logits[task], targets[task]) for task in logits}
        if weighting == "uncertainty":
            loss = losses.uncertainty_weighted_loss(task_losses, model.log_variances)
        else:
            loss = losses.weighted_task_loss(task_losses)
        update(loss)
        return {"train_loss": loss, **{f"train_{task}": v for task, v in task_losses.items()}}

    return step


def classification_report(probs: np.ndarray, targets: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, balanced accuracy (mean per-class recall), mean NLL (nats) and the confusion matrix
    (rows = true class, columns = predicted) over the labelled examples (target >= 0)."""
    keep = targets >= 0
    probs, targets = probs[keep], targets[keep]
    predicted = probs.argmax(1)
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    np.add.at(confusion, (targets, predicted), 1)
    recall = {labels[k]: confusion[k, k] / confusion[k].sum() for k in range(len(labels)) if confusion[k].sum()}
    return {"accuracy": float((predicted == targets).mean()) if len(targets) else float("nan"),
            "balanced_accuracy": float(np.mean(list(recall.values()))) if recall else float("nan"),
            "nll": float(-np.log(probs[np.arange(len(targets)), targets] + 1e-12).mean()) if len(targets) else float("nan"),
            "per_class": {k: round(float(v), 4) for k, v in recall.items()},
            "confusion": confusion.tolist(), "n": int(len(targets))}


def three_region_accuracy(region_probs: np.ndarray, regions: list[str], labels: list[str],
                          choices=THREE_REGIONS) -> float:
    """Accuracy on the tunes of ``choices`` when the prediction is the likeliest of those regions only."""
    columns = [labels.index(r) for r in choices]
    keep = np.isin(regions, choices)
    predicted = np.asarray(choices)[region_probs[keep][:, columns].argmax(1)]
    return float((predicted == np.asarray(regions)[keep]).mean())


def score_classifier(model, tunes, n_steps: int | None = None, seed: int = 0) -> dict:
    """Per-task `classification_report` of a `MultiTaskNet` on one crop of ``n_steps`` per tune
    (whole tunes if None), plus the German/Chinese/Irish 3-way region accuracy (when the model
    knows those regions)."""
    from ..models import mtnn

    probs = model.predict_proba(crop_grids(tunes, n_steps, seed))
    targets = mtnn.encode_targets(tunes, model.labels)
    report = {task: classification_report(probs[task], targets[task].numpy(), model.labels[task]) for task in probs}
    if "region" in probs and set(THREE_REGIONS) <= set(model.labels["region"]):
        report["region"]["three_way_accuracy"] = three_region_accuracy(
            probs["region"], [t.region for t in tunes], model.labels["region"])
    return report


def _summary(report: dict, prefix: str) -> dict:
    out = {}
    for task, r in report.items():
        out[f"{prefix}_{task}_accuracy"] = round(r["accuracy"], 4)
        out[f"{prefix}_{task}_balanced_accuracy"] = round(r["balanced_accuracy"], 4)
        if "three_way_accuracy" in r:
            out[f"{prefix}_region_3way_accuracy"] = round(r["three_way_accuracy"], 4)
    return out


def _held_out(tunes: dict) -> str:
    """The split the final scores come from: test, or valid when a small folder of yours has no test file."""
    return "test" if tunes["test"] else "valid"


def labelled_tunes(data=None, tasks=None, progress: bool = True, min_count: int = 20,
                   melody: str = "single") -> tuple[dict, dict, str, list]:
    """What the classifiers learn from: ``(tunes by split, labels task -> class names, description
    for the sidecar, skipped files)``.

    Without ``data``: the folk melodies with the corpus's labels for ``tasks`` (default all of
    `mtnn.TASKS`; a label seen fewer than ``min_count`` times in train becomes "other").
    With ``data``: your class folders (`datasets.user.read_classes`, ``melody`` its rule for chords) as
    the region task alone.
    """
    from ..models import mtnn

    if data is None:
        tunes = {split: datasets.load_folk(split, progress=progress) for split in datasets.SPLITS}
        labels = mtnn.build_labels(tunes["train"], tuple(tasks or mtnn.TASKS), min_count=min_count)
        return tunes, labels, "folk melodies (music21 corpus), train/valid/test split by hash; scores on test", []
    if tasks is not None and tuple(tasks) != ("region",):
        raise BadInputError(f"tasks={tuple(tasks)}: your data's subfolders label the region (style) task only")
    tunes, classes, description, skipped = datasets.user.read_classes(data, melody=melody)
    held_out = "test" if _held_out(tunes) == "test" else "valid (no test file: fewer than 10 files per class)"
    return tunes, {"region": classes}, f"{description}; scores on {held_out}", skipped


@dataclasses.dataclass(frozen=True)
class MtnnSettings(TrainingSettings):
    """Training settings of ``mtnn`` (defaults: full mode; `MTNN_SETTINGS` holds both presets).

    ``tasks``: None for all of `models.mtnn.TASKS`; ``weighting``: ``"uncertainty"`` or ``"sum"``;
    ``balance``: ``"region"`` draws the regions equally often; ``min_label_count``: see `labelled_tunes`.

    Chapter: notebooks/11_multitask_evaluation.ipynb
    """

    steps: int = 2000
    lr: float = 3e-3
    weight_decay: float = 1e-4
    log_every: int = 50
    eval_every: int = 250
    channels: int = 96
    tasks: tuple | None = None
    weighting: str = "uncertainty"
    balance: str | None = None
    min_label_count: int = 20


MTNN_SETTINGS = {"full": MtnnSettings(),
                 "quick": MtnnSettings(steps=300, log_every=10, eval_every=100, channels=64, min_label_count=8)}


def train_mtnn(out_dir="runs", steps: int | None = None, command: str = "", name: str = "mtnn",
               progress: bool = True, data: str | None = None, melody: str = "single", restart: bool = False,
               **settings) -> dict:
    """The chapter-11 multi-task network (or, with one task, a single-task baseline) on the folk
    melodies in the corpus's proportions (``balance="region"``: regions drawn equally often);
    early stopping on the validation loss summed over the tasks. With ``data`` (a folder with one
    subfolder of melody files per class, `labelled_tunes`) a single-task network for your classes.
    ``settings``: fields of `MtnnSettings` to change (e.g. ``tasks=("region",)``)."""
    from ..models import mtnn

    start = time.perf_counter()
    if settings.get("tasks") is not None:
        settings["tasks"] = tuple(settings["tasks"])
    settings = pick_settings(name, MTNN_SETTINGS, steps, **settings)
    tunes, labels, description, skipped = labelled_tunes(data, settings.tasks, progress, settings.min_label_count, melody)
    model_config = mtnn.MultiTaskConfig(labels=labels, channels=settings.channels)
    model = mtnn.MultiTaskNet(model_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    targets = mtnn.encode_targets(tunes["train"], labels)

    def score_valid():
        report = score_classifier(model, tunes["valid"])
        return {"valid_loss": sum(r["nll"] for r in report.values()), **_summary(report, "valid")}

    out_dir = Path(out_dir)
    balance = settings.balance if settings.balance in labels else None
    history = train.fit(model, optimizer, mtnn_step(model, settings.weighting),
                        crop_batches(tunes["train"], targets, batch_size=settings.batch_size, balance=balance),
                        settings.steps, evaluate=score_valid, eval_every=settings.eval_every, keep_best="valid_loss",
                        log_every=settings.log_every, seed=settings.seed, checkpoint_path=out_dir / f"{name}.pt",
                        checkpoint_every=settings.checkpoint_every, restart=restart,
                        identity=run_identity(settings, model_config, data, description), config=model_config,
                        started=start, progress=progress, desc=name)
    metrics = {"steps": settings.steps, "weighting": settings.weighting, "balance": settings.balance,
               "sigma2": {task: round(float(s.detach().exp()), 4) for task, s in model.log_variances.items()}}
    held_out = _held_out(tunes)
    for n_crop in CROP_STEPS:
        report = score_classifier(model, tunes[held_out], n_crop)
        metrics.update(_summary(report, f"{held_out}_{n_crop or 'full'}"))
        if n_crop is None:
            metrics[f"{held_out}_full_report"] = report
    result = _finish(name, out_dir, model, model_config, settings, metrics, history, command, description,
                     units=f"accuracy on held-out {held_out} tunes; crops at a seeded random start",
                     **({"classes": labels["region"], "skipped": skipped} if data is not None else {}))
    result["history"] = history
    return result


# Chapter 12: the RNN evaluator -------------------------------------------------------------------------

READ_STEPS = (8, 16, 32, 64, 128, 256)


def rnn_evaluator_step(model):
    """Step function of the RNN evaluator: the tune's label is the target at every real step."""

    def step(batch, update):
        tokens, mask, targets = batch
        logits = model(tokens)
        task_losses = {task: losses.masked_cross_entropy(
            logits[task], targets[task][:, None].expand_as(tokens).masked_fill(~mask, -100)) for task in logits}
        loss = losses.weighted_task_loss(task_losses)
        update(loss)
        return {"train_loss": loss, **{f"train_{task}": v for task, v in task_losses.items()}}

    return step


@torch.no_grad()
def accuracy_vs_steps_read(model, tunes, task: str = "region", read_steps=READ_STEPS) -> dict:
    """Accuracy of the RNN evaluator's prediction after reading the first t steps of each tune, for
    each t in ``read_steps`` (over the tunes at least t long), and after the whole tune ("full")."""
    from ..models import mtnn

    targets = mtnn.encode_targets(tunes, model.labels)[task].numpy()
    predictions = {t: [] for t in (*read_steps, "full")}
    for tune, target in zip(tunes, targets):
        if target < 0:
            continue
        predicted = model.predict_steps(tune.grid)[task].argmax(1)
        for t in read_steps:
            if len(tune.grid) >= t:
                predictions[t].append(predicted[t - 1] == target)
        predictions["full"].append(predicted[-1] == target)
    return {str(t): (round(float(np.mean(v)), 4), len(v)) for t, v in predictions.items() if v}


@dataclasses.dataclass(frozen=True)
class RnnEvaluatorSettings(TrainingSettings):
    """Training settings of ``rnn-evaluator`` (defaults: full mode; `RNN_EVALUATOR_SETTINGS` holds both
    presets). Crops of ``min_crop``..``max_crop`` steps, from the tune's start with probability
    ``from_start``; ``valid_tunes`` validation tunes for early stopping.

    Chapter: notebooks/12_rnn_evaluation.ipynb
    """

    steps: int = 1500
    lr: float = 3e-3
    log_every: int = 50
    eval_every: int = 250
    hidden_dim: int = 128
    min_crop: int = 64
    max_crop: int = 256
    from_start: float = 0.5
    valid_tunes: int = 600
    min_label_count: int = 20


RNN_EVALUATOR_SETTINGS = {"full": RnnEvaluatorSettings(),
                          "quick": RnnEvaluatorSettings(steps=300, log_every=10, eval_every=100, hidden_dim=96,
                                                        valid_tunes=200, min_label_count=8)}


def train_rnn_evaluator(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True,
                        data: str | None = None, melody: str = "single", restart: bool = False, **settings) -> dict:
    """The chapter-12 GRU evaluator: per-step predictions of the chapter-11 tasks (with ``data``, of
    your classes, one subfolder each, as the region task alone: `labelled_tunes`). ``settings``:
    fields of `RnnEvaluatorSettings` to change.

    Chapter: notebooks/12_rnn_evaluation.ipynb
    """
    from ..models import mtnn

    start = time.perf_counter()
    settings = pick_settings("rnn-evaluator", RNN_EVALUATOR_SETTINGS, steps, **settings)
    tunes, labels, description, skipped = labelled_tunes(data, progress=progress, min_count=settings.min_label_count,
                                                          melody=melody)
    model_config = mtnn.RNNEvaluatorConfig(labels=labels, hidden_dim=settings.hidden_dim)
    model = mtnn.RNNEvaluator(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    targets = mtnn.encode_targets(tunes["train"], labels)
    valid = tunes["valid"][:settings.valid_tunes]

    def score_valid():  # after 64 steps (on whole tunes when no validation tune is that long)
        curve = accuracy_vs_steps_read(model, valid, read_steps=(64,))
        return {"valid_error_64": 1 - curve.get("64", curve["full"])[0], "valid_region_accuracy_full": curve["full"][0]}

    out_dir = Path(out_dir)
    history = train.fit(model, optimizer, rnn_evaluator_step(model),
                        crop_batches(tunes["train"], targets, batch_size=settings.batch_size,
                                     min_steps=settings.min_crop, max_steps=settings.max_crop,
                                     from_start=settings.from_start),
                        settings.steps, evaluate=score_valid, eval_every=settings.eval_every,
                        keep_best="valid_error_64", log_every=settings.log_every, seed=settings.seed,
                        checkpoint_path=out_dir / "rnn-evaluator.pt", checkpoint_every=settings.checkpoint_every,
                        restart=restart, identity=run_identity(settings, model_config, data, description),
                        config=model_config, started=start, progress=progress, desc="rnn-evaluator")
    metrics = {"steps": settings.steps}
    held_out = _held_out(tunes)
    for task in labels:
        metrics[f"{held_out}_{task}_accuracy_vs_steps_read"] = accuracy_vs_steps_read(model, tunes[held_out], task)
    result = _finish("rnn-evaluator", out_dir, model, model_config, settings, metrics, history, command, description,
                     units="accuracy after reading the first t sixteenth-note steps: (accuracy, n tunes)",
                     **({"classes": labels["region"], "skipped": skipped} if data is not None else {}))
    result["history"] = history
    return result
