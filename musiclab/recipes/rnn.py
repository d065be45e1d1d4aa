"""The chapter-4 RNNs: ``python -m musiclab train melody-rnn | poly-rnn | poly-made | audio-rnn | audio-rnn-mse``.

Chapter: notebooks/04_rnn.ipynb
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch

from .. import datasets, losses, metrics, train
from ..errors import BadInputError
from ..metrics import score_rolls
from .common import TrainingSettings, _finish, pick_settings, run_identity

log = logging.getLogger(__name__)


def poly_step(model):
    """The step function of the piano-roll models (poly-rnn, poly-made, transformer-chorale): NLL per
    frame of a padded batch of piano rolls."""

    def step(batch, update):
        rolls, mask = batch
        loss = losses.pianoroll_nll(model(rolls), rolls[:, 1:], mask)
        update(loss)
        return {"train_nll": loss}

    return step


def poly_batches(rolls, batch_size: int = 16, transpose: int = 6):
    """Shuffled padded batches ``(rolls [shape=(B, T, 88)], mask [shape=(B, T - 1)])``, each roll
    transposed by a random shift of at most ``transpose`` semitones each way (0: as written)."""
    from ..models import rnn

    rolls = datasets.TransposedRolls([r for r in rolls if len(r) >= 2], range(-transpose, transpose + 1))
    return torch.utils.data.DataLoader(rolls, batch_size=batch_size, shuffle=True, drop_last=len(rolls) > batch_size,
                                       collate_fn=rnn.pad_rolls)


def poly_rolls(data=None, transpose: int = 6) -> tuple[dict, str, list]:
    """The polyphonic models' data, said in the log: the JSB-like chorales by split, or the piano rolls
    in folder ``data`` (`datasets.user.read_pianoroll_folder`). Returns ``({split: rolls}, description for the
    sidecar, skipped files)``; ``transpose`` only goes into the description."""
    if data is not None:
        rolls, description, skipped = datasets.user.read_pianoroll_folder(data)
    else:
        rolls, skipped = {split: [c.roll for c in datasets.load_chorales(split)] for split in datasets.SPLITS}, []
        description = ("JSB-like Bach chorales (music21 corpus, quarter-note frames, stored in C), split by hash; "
                       f"each training roll transposed at random by up to {transpose} semitones each way")
    log.info("data: %s", description)
    return rolls, description, skipped


@dataclasses.dataclass(frozen=True)
class PolyRnnSettings(TrainingSettings):
    """Training settings of ``poly-rnn`` and ``poly-made`` (``output``: ``"independent"`` or ``"made"``;
    ``transpose``: each training roll is moved by a random shift of up to this many semitones each way,
    so the model scores every key alike; the learning rate decays linearly to ``lr_floor`` times its
    start; defaults: full mode of ``poly-rnn``; `POLY_RNN_SETTINGS` and `POLY_MADE_SETTINGS` hold the
    presets).

    Chapter: notebooks/04_rnn.ipynb
    """

    steps: int = 3000
    batch_size: int = 16
    lr: float = 3e-3
    log_every: int = 50
    eval_every: int = 200
    output: str = "independent"
    hidden_dim: int = 512
    dropout: float = 0.2
    made_dim: int = 512
    transpose: int = 6
    lr_floor: float = 0.05


_POLY_QUICK = PolyRnnSettings(steps=150, log_every=10, eval_every=25, hidden_dim=128, made_dim=128)
POLY_RNN_SETTINGS = {"full": PolyRnnSettings(), "quick": _POLY_QUICK}
# The MADE output carries the within-frame structure, so its LSTM can stay smaller; it trains longer.
POLY_MADE_SETTINGS = {"full": PolyRnnSettings(steps=4000, output="made", hidden_dim=256),
                      "quick": dataclasses.replace(_POLY_QUICK, output="made")}


def train_poly(out_dir="runs", steps: int | None = None, command: str = "", data: str | None = None,
               progress: bool = True, name: str | None = None, restart: bool = False, **settings) -> dict:
    """The chapter-4 polyphonic LSTM (independent or NADE outputs) on the JSB-like chorales, or on
    the piano rolls in folder ``data`` (see `datasets.user.read_pianoroll_folder`). ``settings``: fields
    of `PolyRnnSettings` to change (``output="made"`` picks the presets of ``poly-made``).

    Trains with early stopping on the validation NLL; reports nats per frame on valid (and test for
    the chorales), the convention of the published JSB Chorales results.
    """
    from ..models import rnn

    start = time.perf_counter()
    made = settings.get("output", "independent") == "made"
    name = name or ("poly-made" if made else "poly-rnn")
    settings = pick_settings(name, POLY_MADE_SETTINGS if made else POLY_RNN_SETTINGS, steps, **settings)
    rolls, description, skipped = poly_rolls(data, settings.transpose)
    model_config = rnn.PolyConfig(output=settings.output, hidden_dim=settings.hidden_dim, dropout=settings.dropout,
                                  made_dim=settings.made_dim)
    model = rnn.PolyRNN(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    return fit_pianoroll_model(name, model, model_config, optimizer,
                               lambda step: train.linear_decay(step, settings.steps, settings.lr_floor), settings,
                               (rolls, description, skipped), out_dir, data, command, start, restart, progress)


def fit_pianoroll_model(name, model, model_config, optimizer, lr_schedule, settings, data_read, out_dir, data,
                        command: str, start: float, restart: bool, progress: bool) -> dict:
    """Train any piano-roll model (poly-rnn, poly-made, the chorale Transformer) the one way: the
    rolls of ``data_read`` (`poly_rolls`'s result), random transpositions, `poly_step`, early stopping
    on the validation NLL, then `poly_scores` (nats per frame) in the sidecar.

    Chapter: notebooks/04_rnn.ipynb
    """
    rolls, description, skipped = data_read
    out_dir = Path(out_dir)
    batches = poly_batches(rolls["train"], settings.batch_size, settings.transpose)
    history = train.fit(model, optimizer, poly_step(model), batches, settings.steps, lr_schedule=lr_schedule,
                        evaluate=lambda: {"valid_nll": score_rolls(model, rolls["valid"])["nll_per_frame"]},
                        eval_every=settings.eval_every, keep_best="valid_nll", log_every=settings.log_every,
                        seed=settings.seed, checkpoint_path=out_dir / f"{name}.pt",
                        checkpoint_every=settings.checkpoint_every, restart=restart,
                        identity=run_identity(settings, model_config, data, description), config=model_config,
                        started=start, progress=progress, desc=name)
    metrics = {**poly_scores(model, rolls), "steps": settings.steps, "best_step": history.best_step}
    result = _finish(name, out_dir, model, model_config, settings, metrics, history, command, description,
                     units="nats per frame, summed over 88 keys, first frame of each roll excluded",
                     **({"skipped": skipped} if skipped else {}))
    result["history"] = history
    return result


def poly_scores(model, rolls: dict) -> dict:
    """``valid_nll`` (and ``test_nll`` when ``rolls`` has a test split) in nats per frame, rounded."""
    return {f"{split}_nll": round(score_rolls(model, rolls[split])["nll_per_frame"], 4)
            for split in ("valid", "test") if split in rolls}


PIANOROLL_MODELS = ("poly-rnn", "poly-made", "transformer-chorale")  # the models `score_pianoroll_file` takes


def load_pianoroll_model(name: str, weights=None):
    """``(model, sidecar)`` of piano-roll model ``name`` (one of `PIANOROLL_MODELS`), from its family's
    ``load_pretrained``: the shipped weights, or your own at ``weights``."""
    from ..models import rnn, transformer

    if name not in PIANOROLL_MODELS:
        raise BadInputError(f"score: {name!r} does not score piano rolls; use one of {', '.join(PIANOROLL_MODELS)}")
    return (transformer if name in transformer.CLASSES else rnn).load_pretrained(name, weights)


def score_pianoroll_file(name: str, path, weights=None) -> dict:
    """``python -m musiclab score poly-rnn FILE``: NLL of the piano rolls in FILE (MIDI or .npz of
    (T, 88) 0/1 arrays) in nats per frame, summed over the 88 keys, first frame of each roll excluded.
    ``name``: one of `PIANOROLL_MODELS`; ``weights``: your own trained weights of model ``name``
    instead of the shipped ones."""
    model, _ = load_pianoroll_model(name, weights)
    return score_rolls(model, datasets.user.read_pianorolls(path))


def melody_step(model):
    """The step function of the melody RNN: teacher-forced next-token NLL over whole chunks."""

    def step(batch, update):
        inputs, targets, region, tune_type = batch
        logits, _ = model(inputs, region, tune_type)
        loss = losses.sequence_nll(logits, targets)
        update(loss)
        return {"train_nll": loss}

    return step


@torch.no_grad()
def score_melody(model, data, batch_size: int = 64) -> dict:
    """Held-out NLL (nats/token) and next-token accuracy, teacher-forced, over the non-padding tokens."""
    total, correct, n = 0.0, 0, 0
    device = next(model.parameters()).device
    for i in range(0, len(data[0]), batch_size):
        inputs, targets, region, tune_type = (t[i:i + batch_size].to(device) for t in data)
        logits, _ = model(inputs, region, tune_type)
        keep = targets >= 0
        total += torch.nn.functional.cross_entropy(logits[keep].float(), targets[keep], reduction="sum").item()
        correct += (logits[keep].argmax(-1) == targets[keep]).sum().item()
        n += keep.sum().item()
    return {"valid_nll": total / n, "valid_accuracy": correct / n}


def melody_generation_report(model, train_tunes, held_out_tunes, n_tunes: int = 50, n_steps: int = 256,
                             temperature: float = 1.0, seed: int = 0) -> dict:
    """Generate ``n_tunes`` melodies (conditioned on the labels of random held-out tunes) and compare
    them with the held-out tunes: Jensen-Shannon divergence (nats) of the pitch-class, interval and
    duration histograms, the same for training vs held-out as a reference, the fraction of generated
    8-note runs found in the training set, and the time to generate one melody."""
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(held_out_tunes), (n_tunes,), generator=generator).tolist()
    generated, times = [], []
    for i in picks:
        start = time.perf_counter()
        generated.append(model.generate(n_steps, region=held_out_tunes[i].region,
                                        tune_type=held_out_tunes[i].tune_type, temperature=temperature,
                                        generator=generator))
        times.append(time.perf_counter() - start)
    train_grids, held_out_grids = [t.grid for t in train_tunes], [t.grid for t in held_out_tunes]
    report = {}
    js_generated = metrics.histogram_js_divergences(generated, held_out_grids)
    js_train = metrics.histogram_js_divergences(train_grids, held_out_grids)
    for feature in ("pitch_class", "interval", "duration"):
        report[f"js_{feature}_generated"] = js_generated[feature]
        report[f"js_{feature}_train"] = js_train[feature]
    report["copied_8_note_runs"] = metrics.copy_rate(generated, train_grids, n=8)
    report["copied_8_note_runs_held_out"] = metrics.copy_rate([held_out_grids[i] for i in picks], train_grids, n=8)
    report["generate_ms_median"] = 1000 * float(np.median(times))
    return {"report": report, "generated": generated}


def melody_sequences(tunes, model_config, length: int = 256):
    """Cut tunes into training chunks: inputs = start token + grid, targets = grid shifted by one.

    Returns ``(inputs, targets, region, tune_type)``: LongTensors [shape=(N, length)] (targets past
    a tune's end are -100, ignored by the loss) and [shape=(N,)].
    """
    inputs, targets, regions, tune_types = [], [], [], []
    for tune in tunes:
        region_i = model_config.regions.index(tune.region) if tune.region in model_config.regions else 0
        tune_type_i = model_config.tune_types.index(tune.tune_type) if tune.tune_type in model_config.tune_types else 0
        sequence = np.concatenate([[model_config.start_token], tune.grid.astype(np.int64)])
        for start in range(0, len(sequence) - 1, length):
            chunk = sequence[start:start + length + 1]
            x = np.zeros(length, dtype=np.int64)
            y = np.full(length, -100, dtype=np.int64)
            x[:len(chunk) - 1], y[:len(chunk) - 1] = chunk[:-1], chunk[1:]
            inputs.append(x), targets.append(y), regions.append(region_i), tune_types.append(tune_type_i)
    as_tensor = lambda a: torch.from_numpy(np.asarray(a, dtype=np.int64))
    return as_tensor(inputs), as_tensor(targets), as_tensor(regions), as_tensor(tune_types)


def melody_tunes(data=None, melody: str = "single") -> tuple[list, list, str, list]:
    """The melody models' data: the folk train and valid splits, or your melody files in folder
    ``data`` (`datasets.user.read_melodies`, ``melody`` its rule for chords).
    Returns ``(train tunes, valid tunes, description for the sidecar, skipped files)``."""
    if data is None:
        return (datasets.load_folk("train"), datasets.load_folk("valid"),
                "folk melodies (music21 corpus), train/valid split by hash", [])
    tunes, description, skipped = datasets.user.read_melodies(data, melody)
    return tunes["train"], tunes["valid"], description, skipped


def condition_labels(tunes, min_count: int = 50) -> tuple[list, list]:
    """Region and tune-type labels seen at least ``min_count`` times, each list led by `models.rnn.UNKNOWN`."""
    from ..models import rnn

    def labels(values):
        counts = collections.Counter(v for v in values if v)
        return [rnn.UNKNOWN] + sorted(v for v, n in counts.items() if n >= min_count and v != rnn.UNKNOWN)
    return labels(t.region for t in tunes), labels(t.tune_type for t in tunes)


@dataclasses.dataclass(frozen=True)
class MelodyDataSettings(TrainingSettings):
    """The data settings every melody language model shares, so that they see the same tokens:
    ``length``: tokens per training chunk; ``min_label_count``: a region or tune type seen fewer
    times in train becomes "unknown"; ``report_tunes``: melodies generated for the final report.

    Chapter: notebooks/04_rnn.ipynb
    """

    length: int = 256
    min_label_count: int = 50
    report_tunes: int = 50


@dataclasses.dataclass(frozen=True)
class MelodyRnnSettings(MelodyDataSettings):
    """Training settings of ``melody-rnn`` (defaults: full mode; `MELODY_RNN_SETTINGS` holds both presets).

    Chapter: notebooks/04_rnn.ipynb
    """

    steps: int = 700
    lr: float = 2e-3
    log_every: int = 50
    eval_every: int = 250
    hidden_dim: int = 256
    n_layers: int = 1


MELODY_RNN_SETTINGS = {"full": MelodyRnnSettings(),
                       "quick": MelodyRnnSettings(steps=150, log_every=10, eval_every=50, hidden_dim=128, length=128,
                                                  min_label_count=10, report_tunes=10)}


def train_melody(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True,
                 data=None, melody: str = "single", restart: bool = False, **settings) -> dict:
    """The chapter-4 melody RNN: an LSTM language model over the folk melodies' event grids,
    conditioned on region and tune type; or over the melody files in folder ``data`` (see
    `datasets.user.read_melodies`, ``melody`` its rule for chords; they have no labels, so the
    conditions are all "unknown").
    ``settings``: fields of `MelodyRnnSettings` to change."""
    from ..models import rnn

    start = time.perf_counter()
    settings = pick_settings("melody-rnn", MELODY_RNN_SETTINGS, steps, **settings)
    train_tunes, valid_tunes, description, skipped = melody_tunes(data, melody)
    regions, tune_types = condition_labels(train_tunes, min_count=settings.min_label_count)
    model_config = rnn.MelodyConfig(regions=regions, tune_types=tune_types, hidden_dim=settings.hidden_dim,
                                    n_layers=settings.n_layers)
    train_data = melody_sequences(train_tunes, model_config, settings.length)
    valid_data = melody_sequences(valid_tunes, model_config, settings.length)
    model = rnn.MelodyRNN(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*train_data),
                                         batch_size=min(settings.batch_size, len(train_data[0])), shuffle=True,
                                         drop_last=True)
    out_dir = Path(out_dir)
    history = train.fit(model, optimizer, melody_step(model), loader, settings.steps,
                        evaluate=lambda: score_melody(model, valid_data), eval_every=settings.eval_every,
                        keep_best="valid_nll", log_every=settings.log_every, seed=settings.seed,
                        checkpoint_path=out_dir / "melody-rnn.pt", checkpoint_every=settings.checkpoint_every,
                        restart=restart, identity=run_identity(settings, model_config, data, description),
                        config=model_config, started=start, progress=progress, desc="melody-rnn")
    scores = score_melody(model, valid_data)
    report = melody_generation_report(model, train_tunes, valid_tunes, n_tunes=settings.report_tunes)["report"]
    metrics = {**{k: round(v, 4) for k, v in {**scores, **report}.items()}, "steps": settings.steps}
    result = _finish("melody-rnn", out_dir, model, model_config, settings, metrics, history, command, description,
                     units="nats per token, 16th-note event grid; JS divergences in nats",
                     **({"skipped": skipped} if skipped else {}))
    result["history"] = history
    return result


AUDIO_SR = 8000
AUDIO_PROGRAM = 71  # clarinet: a steady, nearly periodic tone that a small model can learn


def audio_notes(pitches, sr: int = AUDIO_SR, program: int = AUDIO_PROGRAM) -> np.ndarray:
    """The audio RNN's data: one 0.5 s note (plus 0.1 s release) per pitch at ``sr``, mu-law levels
    int64 [shape=(n_pitches, n)]."""
    from .. import audio

    notes = audio.one_shot_note_set([program], list(pitches), velocities=(100,), duration_s=0.5,
                                    release_s=0.1, sr=sr)
    y = notes["y"] / np.abs(notes["y"]).max() * 0.9
    return audio.mu_law_encode(y)


AUDIO_TRAIN_PITCHES = (60, 62, 64, 65, 67, 69, 71, 72)
AUDIO_HELD_OUT_PITCHES = (63, 66, 70)


def audio_step(model):
    """The step function of the audio RNN: categorical NLL of the next mu-law level, or the mean
    squared error of the next sample (a Gaussian NLL with a fixed variance, up to constants)."""
    from .. import audio

    def step(batch, update):
        (levels,) = batch
        out, _ = model(levels[:, :-1])
        if model.config.output == "categorical":
            loss = losses.sequence_nll(out, levels[:, 1:])
        else:
            loss = ((out - audio.mu_law_decode(levels[:, 1:])) ** 2).mean()
        update(loss)
        return {"train_loss": loss}

    return step


@torch.no_grad()
def score_audio(model, levels: torch.Tensor, sigma: float | None = None) -> dict:
    """Teacher-forced NLL of the next mu-law level in nats per sample, for both output types on the
    same 256 bins (a Gaussian is integrated over each level's amplitude bin), and the MSE of the
    prediction (the categorical model predicts its distribution's mean amplitude)."""
    from .. import audio
    from ..models import audio_rnn

    out, _ = model(levels[:, :-1])
    target_levels, target_y = levels[:, 1:], audio.mu_law_decode(levels[:, 1:])
    if model.config.output == "categorical":
        centres = audio.mu_law_decode(torch.arange(model.config.n_classes))
        mean = torch.softmax(out.float(), -1) @ centres
        nll = losses.sequence_nll(out, target_levels).item()
    else:
        mean = out.float()
        sigma = sigma if sigma is not None else ((mean - target_y) ** 2).mean().sqrt().item()
        nll = losses.gaussian_binned_nll(target_levels.flatten(), mean.flatten().double(), sigma,
                                         audio_rnn.mu_law_bin_edges(model.config.n_classes)).item()
    return {"nll": nll, "mse": ((mean - target_y) ** 2).mean().item(), "sigma": sigma}


@dataclasses.dataclass(frozen=True)
class AudioRnnSettings(TrainingSettings):
    """Training settings of ``audio-rnn`` and ``audio-rnn-mse`` (``output``: ``"categorical"`` or
    ``"gaussian"``; defaults: full mode; `AUDIO_RNN_SETTINGS` holds both presets). ``window``: samples
    per training window (windows overlap by half).

    Chapter: notebooks/04_rnn.ipynb
    """

    steps: int = 800
    batch_size: int = 16
    lr: float = 3e-3
    eval_every: int = 160
    output: str = "categorical"
    hidden_dim: int = 128
    window: int = 256


AUDIO_RNN_SETTINGS = {"full": AudioRnnSettings(), "quick": AudioRnnSettings(steps=40, eval_every=8, hidden_dim=64)}


def train_audio(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True, data=None,
                restart: bool = False, **settings) -> dict:
    """The chapter-4 sample-level audio RNN on SoundFont clarinet notes at 8 kHz, with a categorical
    mu-law output (``audio-rnn``) or a Gaussian output trained with MSE (``audio-rnn-mse``); or on
    0.5 s segments of the recordings in ``data`` at 8 kHz (see `datasets.user.read_audio_segments`; held out: at
    most 16 validation segments). ``settings``: fields of `AudioRnnSettings` to change (e.g.
    ``output="gaussian"``)."""
    from .. import audio
    from ..models import audio_rnn

    start = time.perf_counter()
    name = "audio-rnn" if settings.get("output", "categorical") == "categorical" else "audio-rnn-mse"
    settings = pick_settings(name, AUDIO_RNN_SETTINGS, steps, **settings)
    if data is None:
        train_levels = torch.from_numpy(audio_notes(AUDIO_TRAIN_PITCHES))
        held_out = torch.from_numpy(audio_notes(AUDIO_HELD_OUT_PITCHES))
        description, skipped = (f"SoundFont TimGM6mb program {AUDIO_PROGRAM}, {AUDIO_SR} Hz, train pitches "
                                f"{list(AUDIO_TRAIN_PITCHES)}, held-out pitches {list(AUDIO_HELD_OUT_PITCHES)}"), []
    else:
        segments, description, skipped = datasets.user.read_audio_segments(data, AUDIO_SR, 0.5, "the audio RNN")
        train_levels = torch.from_numpy(audio.mu_law_encode(segments["train"]))
        held_out = torch.from_numpy(audio.mu_law_encode(segments["valid"][:16]))
    model_config = audio_rnn.AudioConfig(output=settings.output, hidden_dim=settings.hidden_dim)
    model = audio_rnn.AudioRNN(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    length = settings.window
    windows = train_levels.unfold(1, length + 1, length // 2).reshape(-1, length + 1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(windows),
                                         batch_size=min(settings.batch_size, len(windows)), shuffle=True,
                                         drop_last=True)
    out_dir = Path(out_dir)
    history = train.fit(model, optimizer, audio_step(model), loader, settings.steps,
                        evaluate=lambda: {f"valid_{k}": v for k, v in score_audio(model, held_out).items()
                                          if v is not None},
                        eval_every=settings.eval_every, log_every=settings.log_every, seed=settings.seed,
                        checkpoint_path=out_dir / f"{name}.pt", checkpoint_every=settings.checkpoint_every,
                        restart=restart, identity=run_identity(settings, model_config, data, description),
                        config=model_config, started=start, progress=progress, desc=name)
    # A fixed-variance Gaussian's maximum-likelihood sigma is the RMS residual on the training data.
    sigma = score_audio(model, train_levels)["sigma"] if settings.output == "gaussian" else None
    scores = score_audio(model, held_out, sigma)
    metrics = {**{f"held_out_{k}": round(v, 5) for k, v in scores.items() if v is not None}, "steps": settings.steps}
    result = _finish(name, out_dir, model, model_config, settings, metrics, history, command, description,
                     units="nats per sample over the 256 mu-law levels", **({"skipped": skipped} if skipped else {}))
    result["history"] = history
    return result
