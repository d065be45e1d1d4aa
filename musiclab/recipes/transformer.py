"""The chapter's Transformers: ``python -m musiclab train transformer-melody | transformer-chorale``.

The melody Transformer trains on exactly the melody RNN's data (the same tokens, chunks, splits and
region / tune-type conditions, from `recipes.rnn`), and is scored by the same function, so the two
held-out NLLs are over the same tokens. The chorale Transformer trains on exactly poly-made's piano
rolls, split and transpositions (`recipes.rnn.poly_rolls`, `recipes.rnn.poly_batches`), and is scored
by the same `metrics.score_rolls`.
The melody model's evaluations carry a CPU clock (`cpu_clocked`), and its sidecar keeps the
validation curve against it (``valid_curve``) and the NLL on the folk test split (``metrics.test_nll``),
so that it can be compared with other models on the same budget.

Chapter: notebooks/05_transformer.ipynb
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from .. import datasets, train
from ..datasets import load_folk
from ..metrics import score_rolls
from .common import TrainingSettings, _finish, pick_settings, run_identity
from .rnn import (MelodyDataSettings, condition_labels, fit_pianoroll_model, load_pianoroll_model,
                  melody_generation_report, melody_sequences, melody_step, melody_tunes, poly_rolls, score_melody)


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


@dataclasses.dataclass(frozen=True)
class ChoraleTransformerSettings(TrainingSettings):
    """Training settings of ``transformer-chorale`` (defaults: full mode; `CHORALE_TRANSFORMER_SETTINGS`
    holds both presets). The data and its augmentation are poly-made's (``transpose``: each training
    roll moved by a random shift of up to this many semitones each way); the learning rate warms up
    for ``warmup_steps``, then decays linearly to ``lr_floor`` times its start.

    Chapter: notebooks/05_transformer.ipynb
    """

    steps: int = 4000
    batch_size: int = 16
    lr: float = 2e-3
    warmup_steps: int = 200
    lr_floor: float = 0.05
    weight_decay: float = 0.01
    log_every: int = 50
    eval_every: int = 200
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 3
    d_ff: int = 512
    dropout: float = 0.2
    position: str = "relative"
    max_distance: int = 64
    made_dim: int = 512
    transpose: int = 6


CHORALE_TRANSFORMER_SETTINGS = {
    "full": ChoraleTransformerSettings(),
    "quick": ChoraleTransformerSettings(steps=150, lr=3e-3, warmup_steps=20, log_every=10, eval_every=25, d_model=64,
                                        n_layers=2, d_ff=256, made_dim=128)}


def train_transformer_chorale(out_dir="runs", steps: int | None = None, command: str = "", data: str | None = None,
                              progress: bool = True, restart: bool = False, name: str = "transformer-chorale",
                              **settings) -> dict:
    """The chorale Transformer (`models.transformer.ChoraleTransformer`) on poly-made's data: the
    JSB-like chorales and their split, each training roll randomly transposed, or the piano rolls in
    folder ``data`` (see `datasets.user.read_pianoroll_folder`; a ``test.npz`` there is scored after
    training). Reports nats per frame on valid (and test), as poly-made does. ``settings``: fields
    of `ChoraleTransformerSettings` to change; ``name``: the files' name in ``out_dir``.

    Chapter: notebooks/05_transformer.ipynb
    """
    from ..models import transformer

    start = time.perf_counter()
    settings = pick_settings(name, CHORALE_TRANSFORMER_SETTINGS, steps, **settings)
    rolls, description, skipped = poly_rolls(data, settings.transpose)
    model_config = transformer.ChoraleTransformerConfig(
        d_model=settings.d_model, n_heads=settings.n_heads, n_layers=settings.n_layers, d_ff=settings.d_ff,
        dropout=settings.dropout, position=settings.position, max_distance=settings.max_distance,
        made_dim=settings.made_dim)
    model = transformer.ChoraleTransformer(model_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = lambda s: warmup_then_linear_decay(s, settings.warmup_steps, settings.steps, settings.lr_floor)  # noqa: E731
    return fit_pianoroll_model(name, model, model_config, optimizer, schedule, settings,
                               (rolls, description, skipped), out_dir, data, command, start, restart, progress)


CHORALE_MODELS = ("poly-made", "transformer-chorale")  # the chapter's comparison: LSTM against attention, one output


def compare_chorale_models(split: str = "test", names=CHORALE_MODELS) -> dict[str, dict]:
    """Score the shipped ``names`` on the same chorales of ``split`` (of the current mode) with
    `metrics.score_rolls`: ``{name: {"nll_per_frame", "n_frames", "n_rolls", "test_nll_shipped"}}``, the
    last the test NLL its sidecar recorded after training.

    Chapter: notebooks/05_transformer.ipynb
    """
    rolls = [c.roll for c in datasets.load_chorales(split, progress=False)]
    scores = {}
    for name in names:
        model, sidecar = load_pianoroll_model(name)
        scores[name] = {**score_rolls(model, rolls), "test_nll_shipped": sidecar["metrics"].get("test_nll")}
    return scores


def sample_chorales(n_frames: int = 31, n_samples: int = 5, split: str = "test", names=CHORALE_MODELS,
                    seed: int = 0) -> dict[str, list]:
    """``n_samples`` continuations of ``n_frames`` quarter notes from each shipped model in ``names``,
    sample i primed with the first frame of chorale i of ``split`` and drawn with seed ``seed + i``,
    so every model starts from the same chords with the same seeds. Returns ``{"real": the chorales'
    first 1 + n_frames frames, name: rolls}``, each roll uint8 [shape=(1 + n_frames, 88)].

    Chapter: notebooks/05_transformer.ipynb
    """
    real = [c.roll[:1 + n_frames] for c in datasets.load_chorales(split, progress=False)[:n_samples]]
    samples = {"real": real}
    for name in names:
        model, _ = load_pianoroll_model(name)
        samples[name] = [model.generate(n_frames, prime=roll[:1], generator=torch.Generator().manual_seed(seed + i))
                         for i, roll in enumerate(real)]
    return samples
