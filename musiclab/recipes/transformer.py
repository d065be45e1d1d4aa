"""The chapter's Transformers: ``python -m musiclab train transformer-melody``.

The melody Transformer trains on exactly the melody RNN's data (the same tokens, chunks, splits and
region / tune-type conditions, from `recipes.rnn`), and is scored by the same function, so the two
held-out NLLs are over the same tokens. Its evaluations carry a CPU clock (`cpu_clocked`), and the
sidecar keeps the validation curve against it (``valid_curve``) and the NLL on the folk test split
(``metrics.test_nll``), so that it can be compared with other models on the same budget.

Chapter: notebooks/05_transformer.ipynb
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from .. import train
from ..datasets import load_folk
from .common import _finish, pick_settings, run_identity
from .rnn import (MelodyDataSettings, condition_labels, melody_generation_report, melody_sequences, melody_step,
                  melody_tunes, score_melody)


def cpu_clocked(evaluate):
    """``evaluate`` with a training clock: each result also carries ``train_cpu_s``, the CPU seconds
    this process has spent since the call to `cpu_clocked`, less those spent inside ``evaluate``.
    CPU time, not wall time, so that runs on a shared machine can be compared (one thread each).
    The clock belongs to the process: a resumed run's clock starts again from 0.

    Chapter: notebooks/05_transformer.ipynb
    """
    started, spent_evaluating = time.process_time(), [0.0]

    def clocked():
        before = time.process_time()
        train_cpu_s = before - started - spent_evaluating[0]
        scores = evaluate()
        spent_evaluating[0] += time.process_time() - before
        return {**scores, "train_cpu_s": train_cpu_s}

    return clocked


def warmup_then_linear_decay(step: int, warmup_steps: int, n_steps: int, floor: float = 0.1) -> float:
    """Learning-rate factor rising linearly from 1 / warmup_steps to 1 over ``warmup_steps``, then
    falling linearly to ``floor`` at ``n_steps``. Attention logits are large and erratic at the
    start; small first steps keep Adam's early, badly estimated updates from wrecking them.

    Chapter: notebooks/05_transformer.ipynb
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(floor, 1.0 - (step - warmup_steps) / max(n_steps - warmup_steps, 1))


@dataclasses.dataclass(frozen=True)
class MelodyTransformerSettings(MelodyDataSettings):
    """Training settings of ``transformer-melody`` (defaults: full mode; `MELODY_TRANSFORMER_SETTINGS`
    holds both presets). ``position``: ``"relative"`` or ``"absolute"``; the data settings are those
    of `recipes.rnn.MelodyDataSettings`, as for the melody RNN.

    Chapter: notebooks/05_transformer.ipynb
    """

    steps: int = 1200
    lr: float = 2.5e-3
    warmup_steps: int = 100
    log_every: int = 50
    eval_every: int = 100
    # Two heads, not four: the relative logits cost a (B, H, L, L) tensor per layer, which on a CPU
    # dominates a step (at this width a step with four heads took about twice as long).
    d_model: int = 96
    n_heads: int = 2
    n_layers: int = 3
    d_ff: int = 384
    dropout: float = 0.05
    position: str = "relative"
    max_distance: int = 256


MELODY_TRANSFORMER_SETTINGS = {
    "full": MelodyTransformerSettings(),
    "quick": MelodyTransformerSettings(steps=150, lr=4e-3, warmup_steps=20, log_every=10, eval_every=50, d_model=64,
                                       n_layers=2, d_ff=256, dropout=0.0, max_distance=128, length=128,
                                       min_label_count=10, report_tunes=10)}


def train_transformer_melody(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True,
                             data=None, melody: str = "single", restart: bool = False,
                             name: str = "transformer-melody", **settings) -> dict:
    """The melody Transformer (`models.transformer.MelodyTransformer`) on the melody RNN's data: the
    folk melodies' event grids with region and tune type, or the melody files in folder ``data``
    (see `datasets.user.read_melodies`, ``melody`` its rule for chords; no labels, so the conditions
    are all "unknown"). ``settings``: fields of `MelodyTransformerSettings` to change;
    ``name``: the files' name in ``out_dir``.

    Chapter: notebooks/05_transformer.ipynb
    """
    from ..models import transformer

    start = time.perf_counter()
    settings = pick_settings(name, MELODY_TRANSFORMER_SETTINGS, steps, **settings)
    train_tunes, valid_tunes, description, skipped = melody_tunes(data, melody)
    regions, tune_types = condition_labels(train_tunes, min_count=settings.min_label_count)
    model_config = transformer.MelodyTransformerConfig(
        regions=regions, tune_types=tune_types, d_model=settings.d_model, n_heads=settings.n_heads,
        n_layers=settings.n_layers, d_ff=settings.d_ff, dropout=settings.dropout, position=settings.position,
        max_distance=settings.max_distance)
    train_data = melody_sequences(train_tunes, model_config, settings.length)
    valid_data = melody_sequences(valid_tunes, model_config, settings.length)
    model = transformer.MelodyTransformer(model_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.01)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*train_data),
                                         batch_size=min(settings.batch_size, len(train_data[0])), shuffle=True,
                                         drop_last=True)
    out_dir = Path(out_dir)
    history = train.fit(model, optimizer, melody_step(model), loader, settings.steps,
                        evaluate=cpu_clocked(lambda: score_melody(model, valid_data)), eval_every=settings.eval_every,
                        keep_best="valid_nll", log_every=settings.log_every, seed=settings.seed,
                        lr_schedule=lambda s: warmup_then_linear_decay(s, settings.warmup_steps, settings.steps),
                        checkpoint_path=out_dir / f"{name}.pt", checkpoint_every=settings.checkpoint_every,
                        restart=restart, identity=run_identity(settings, model_config, data, description),
                        config=model_config, started=start, progress=progress, desc=name)
    scores = score_melody(model, valid_data)
    report = melody_generation_report(model, train_tunes, valid_tunes, n_tunes=settings.report_tunes)["report"]
    if data is None:  # the folk test split, which neither training nor early stopping has seen
        scores["test_nll"] = score_melody(model, melody_sequences(load_folk("test"), model_config,
                                                                  settings.length))["valid_nll"]
    metrics = {**{k: round(v, 4) for k, v in {**scores, **report}.items()}, "steps": settings.steps,
               "best_step": history.best_step}
    curve = [{k: round(row[k], 4) for k in ("step", "train_cpu_s", "valid_nll")} for row in history
             if "valid_nll" in row]
    result = _finish(name, out_dir, model, model_config, settings, metrics, history, command, description,
                     units="nats per token, 16th-note event grid; JS divergences in nats",
                     valid_curve=curve, **({"skipped": skipped} if skipped else {}))
    result["history"] = history
    return result
