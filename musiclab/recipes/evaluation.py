"""The chapter 8-9 classifiers: ``python -m musiclab train mtnn | rnn-evaluator``.

Both train on random crops of the folk melodies (32..256 sixteenth-note steps), transposed by up to
+-5 semitones (every task here is transposition-invariant: region, tune function, meter, mode), and
are scored on the held-out test split. With ``--data PATH`` they learn the classes of your own
melodies instead, one class per subfolder (``PATH/<class>/*.mid|*.abc|*.xml``, see
`datasets.user.read_classes`): the subfolders are the classes of the style (region) task, the only task
trained then (your files carry no tune type, meter or mode, and the model has no head for them).

Chapter: notebooks/08_multitask_evaluation.ipynb
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .. import config, datasets, losses, symbolic, train
from ..errors import BadInputError
from .common import _finish, _keep_best

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


def labelled_tunes(data=None, tasks=None, progress: bool = True, melody: str = "single") -> tuple[dict, dict, str, list]:
    """What the classifiers learn from: ``(tunes by split, labels task -> class names, description
    for the sidecar, skipped files)``.

    Without ``data``: the folk melodies with the corpus's labels for ``tasks`` (default all of
    `mtnn.TASKS`; a label seen fewer than 8 (quick) / 20 (full) times in train becomes "other").
    With ``data``: your class folders (`datasets.user.read_classes`, ``melody`` its rule for chords) as
    the region task alone.
    """
    from ..models import mtnn

    if data is None:
        tunes = {split: datasets.load_folk(split, progress=progress) for split in datasets.SPLITS}
        labels = mtnn.build_labels(tunes["train"], tuple(tasks or mtnn.TASKS), min_count=config.pick(8, 20))
        return tunes, labels, "folk melodies (music21 corpus), train/valid/test split by hash; scores on test", []
    if tasks is not None and tuple(tasks) != ("region",):
        raise BadInputError(f"tasks={tuple(tasks)}: your data's subfolders label the region (style) task only")
    tunes, classes, description, skipped = datasets.user.read_classes(data, melody=melody)
    held_out = "test" if _held_out(tunes) == "test" else "valid (no test file: fewer than 10 files per class)"
    return tunes, {"region": classes}, f"{description}; scores on {held_out}", skipped


def train_mtnn(out_dir="runs", steps: int | None = None, command: str = "", tasks=None,
               weighting: str = "uncertainty", balance: str | None = None, name: str = "mtnn",
               progress: bool = True, data: str | None = None, melody: str = "single") -> dict:
    """The chapter-8 multi-task network (or, with one task, a single-task baseline) on the folk
    melodies in the corpus's proportions (``balance="region"``: regions drawn equally often);
    early stopping on the validation loss summed over the tasks. With ``data`` (a folder with one
    subfolder of melody files per class, `labelled_tunes`) a single-task network for your classes."""
    from ..models import mtnn

    config.seed_everything(0)
    tunes, labels, description, skipped = labelled_tunes(data, tasks, progress, melody)
    model_config = mtnn.MultiTaskConfig(labels=labels, channels=config.pick(64, 96))
    model = mtnn.MultiTaskNet(model_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    targets = mtnn.encode_targets(tunes["train"], labels)
    n_steps = steps or config.pick(300, 2000)

    def score_valid():
        report = score_classifier(model, tunes["valid"])
        return {"valid_loss": sum(r["nll"] for r in report.values()), **_summary(report, "valid")}

    evaluate, best = _keep_best(model, score_valid, "valid_loss")
    out_dir = Path(out_dir)
    start = time.perf_counter()
    history = train.fit(model, optimizer, mtnn_step(model, weighting),
                        crop_batches(tunes["train"], targets, balance=balance if balance in labels else None),
                        n_steps, evaluate=evaluate, eval_every=config.pick(100, 250), log_every=config.pick(10, 50),
                        checkpoint_path=out_dir / f"{name}.pt", checkpoint_every=500, config=model_config,
                        progress=progress, desc=name)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    metrics = {"steps": n_steps, "weighting": weighting, "balance": balance,
               "sigma2": {task: round(float(s.detach().exp()), 4) for task, s in model.log_variances.items()}}
    held_out = _held_out(tunes)
    for n_crop in CROP_STEPS:
        report = score_classifier(model, tunes[held_out], n_crop)
        metrics.update(_summary(report, f"{held_out}_{n_crop or 'full'}"))
        if n_crop is None:
            metrics[f"{held_out}_full_report"] = report
    result = _finish(name, out_dir, model, model_config, metrics, start, command, description,
                     units=f"accuracy on held-out {held_out} tunes; crops at a seeded random start",
                     **({"classes": labels["region"], "skipped": skipped} if data is not None else {}))
    result["history"] = history
    return result


# Chapter 9: the RNN evaluator -------------------------------------------------------------------------

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


def train_rnn_evaluator(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True,
                        data: str | None = None, melody: str = "single") -> dict:
    """The chapter-9 GRU evaluator: per-step predictions of the chapter-8 tasks (with ``data``, of
    your classes, one subfolder each, as the region task alone: `labelled_tunes`).

    Chapter: notebooks/09_rnn_evaluation.ipynb
    """
    from ..models import mtnn

    config.seed_everything(0)
    tunes, labels, description, skipped = labelled_tunes(data, progress=progress, melody=melody)
    model_config = mtnn.RNNEvaluatorConfig(labels=labels, hidden_dim=config.pick(96, 128))
    model = mtnn.RNNEvaluator(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    targets = mtnn.encode_targets(tunes["train"], labels)
    n_steps = steps or config.pick(300, 1500)
    valid = tunes["valid"][:config.pick(200, 600)]

    def score_valid():  # after 64 steps (on whole tunes when no validation tune is that long)
        curve = accuracy_vs_steps_read(model, valid, read_steps=(64,))
        return {"valid_error_64": 1 - curve.get("64", curve["full"])[0], "valid_region_accuracy_full": curve["full"][0]}

    evaluate, best = _keep_best(model, score_valid, "valid_error_64")
    out_dir = Path(out_dir)
    start = time.perf_counter()
    history = train.fit(model, optimizer, rnn_evaluator_step(model),
                        crop_batches(tunes["train"], targets, min_steps=64, max_steps=256, from_start=0.5),
                        n_steps, evaluate=evaluate, eval_every=config.pick(100, 250), log_every=config.pick(10, 50),
                        checkpoint_path=out_dir / "rnn-evaluator.pt", checkpoint_every=500, config=model_config,
                        progress=progress, desc="rnn-evaluator")
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    metrics = {"steps": n_steps}
    held_out = _held_out(tunes)
    for task in labels:
        metrics[f"{held_out}_{task}_accuracy_vs_steps_read"] = accuracy_vs_steps_read(model, tunes[held_out], task)
    result = _finish("rnn-evaluator", out_dir, model, model_config, metrics, start, command, description,
                     units="accuracy after reading the first t sixteenth-note steps: (accuracy, n tunes)",
                     **({"classes": labels["region"], "skipped": skipped} if data is not None else {}))
    result["history"] = history
    return result
