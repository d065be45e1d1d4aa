"""The chapter-6 melody and timbre VAEs: ``python -m musiclab train vae-melody | vae-timbre``.

Chapter: notebooks/06_vae.ipynb
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from .. import datasets, losses, train
from .common import TrainingSettings, _finish, pick_settings, run_identity


def vae_melody_step(model, beta: float = 0.2, free_nats: float = 16.0, warmup_steps: int = 1000,
                    word_dropout: float = 0.0):
    """The step function of the melody VAE: -ELBO with KL annealing and free bits, one update.

    loss = sum_t CE(x_t | x_<t, z) + beta_t * max(KL - free_nats, 0), beta_t rising linearly from 0
    to ``beta`` over ``warmup_steps`` (per example: summed over the 32 steps, averaged over the batch);
    ``word_dropout`` hides that share of the decoder's previous tokens (see `models.vae.MelodyVAE`).
    Logged: the loss, the reconstruction NLL, the (unclipped) KL, and the teacher-forced accuracy.
    The KL weight is a function of ``update.step`` (the steps taken), so a resumed run continues it.
    """

    def step(tokens, update):
        logits, mu, logvar, _ = model(tokens, word_dropout=word_dropout)
        nll = losses.categorical_nll(logits, tokens) * tokens.shape[1]
        kl = losses.gaussian_kl(mu, logvar)
        weight = losses.kl_weight(update.step, warmup_steps, beta)
        loss = losses.negative_elbo(nll, losses.free_bits_kl(mu, logvar, free_nats), weight)
        update(loss)
        return {"loss": loss, "nll": nll, "kl": kl,
                "train_accuracy": (logits.argmax(1) == tokens).float().mean()}

    return step


def melody_slices(tunes, transpose=range(-5, 7), max_slices: int | None = None, seed: int = 0) -> torch.Tensor:
    """2-bar (32-step) slices of ``tunes`` as a LongTensor [shape=(N, 32)] (no augmentation when
    ``transpose`` is None), optionally a fixed random subset of ``max_slices``."""
    data = datasets.GridSliceDataset(tunes, n_bars=2, transpose=transpose)
    tokens = torch.from_numpy(data.windows.astype(np.int64))
    if max_slices is not None and len(tokens) > max_slices:
        keep = np.random.default_rng(seed).choice(len(tokens), max_slices, replace=False)
        tokens = tokens[np.sort(keep)]
    return tokens


@dataclasses.dataclass(frozen=True)
class VaeMelodySettings(TrainingSettings):
    """Training settings of ``vae-melody`` (defaults: full mode; `VAE_MELODY_SETTINGS` holds both presets).

    The learning rate decays linearly to ``lr_floor`` times its start over the run
    (`train.linear_decay`); the KL weight rises from 0 to ``beta`` over ``kl_warmup_steps``.

    Chapter: notebooks/06_vae.ipynb
    """

    steps: int = 24000
    batch_size: int = 64
    lr: float = 2e-3
    lr_floor: float = 0.05
    log_every: int = 25
    eval_every: int = 4000
    encoder_dim: int = 128
    decoder_dim: int = 256
    z_dim: int = 64
    beta: float = 0.1
    free_nats: float = 48.0
    kl_warmup_steps: int = 4000
    word_dropout: float = 0.25
    valid_slices: int = 2000


VAE_MELODY_SETTINGS = {"full": VaeMelodySettings(),
                       "quick": VaeMelodySettings(steps=300, eval_every=50, kl_warmup_steps=50, encoder_dim=96,
                                                  decoder_dim=192)}


def train_vae_melody(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True, data=None,
                     melody: str = "single", restart: bool = False, **settings) -> dict:
    """The chapter-6 melody VAE on 2-bar slices of the folk melodies of all regions, or of the melody
    files in folder ``data`` (see `datasets.user.read_melodies`, ``melody`` its rule for chords;
    their test split falls back to valid).
    ``settings``: fields of `VaeMelodySettings` to change (e.g. ``beta=0.2``)."""
    from ..models import vae

    start = time.perf_counter()
    settings = pick_settings("vae-melody", VAE_MELODY_SETTINGS, steps, **settings)
    model_config = vae.MelodyVaeConfig(encoder_dim=settings.encoder_dim, decoder_dim=settings.decoder_dim,
                                       z_dim=settings.z_dim)
    if data is None:
        tunes = {split: datasets.load_folk(split) for split in datasets.SPLITS}
        description, skipped = ("folk melodies of all regions, 2-bar slices (hop 1 bar), train split with "
                                "transposition -5..+6; metrics on every 2-bar slice of the test split, untransposed"), []
    else:
        tunes, description, skipped = datasets.user.read_melodies(data, melody)
        tunes["test"] = tunes["test"] or tunes["valid"]
    train_data = datasets.GridSliceDataset(tunes["train"], n_bars=2)
    batch_size = min(settings.batch_size, len(train_data))
    valid_tokens = melody_slices(tunes["valid"], transpose=None, max_slices=settings.valid_slices)
    model = vae.MelodyVAE(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    loader = torch.utils.data.DataLoader(train_data, batch_size=batch_size, shuffle=True, drop_last=True)

    def evaluate():
        scores = vae.reconstruction_accuracy(model, valid_tokens)
        return {f"valid_{k}": v for k, v in scores.items() if k != "n_slices"}

    out_dir = Path(out_dir)
    history = train.fit(model, optimizer,
                        vae_melody_step(model, beta=settings.beta, free_nats=settings.free_nats,
                                        warmup_steps=settings.kl_warmup_steps, word_dropout=settings.word_dropout),
                        loader, settings.steps, evaluate=evaluate, eval_every=settings.eval_every,
                        log_every=settings.log_every,
                        lr_schedule=lambda step: train.linear_decay(step, settings.steps, settings.lr_floor),
                        seed=settings.seed, checkpoint_path=out_dir / "vae-melody.pt",
                        checkpoint_every=settings.checkpoint_every, restart=restart,
                        identity=run_identity(settings, model_config, data, description), config=model_config,
                        started=start, progress=progress, desc="melody VAE")
    test_tunes = tunes["test"]
    test_tokens = melody_slices(test_tunes, transpose=None)
    test = vae.reconstruction_accuracy(model, test_tokens)
    stats = vae.posterior_statistics(model, test_tokens)
    per_region = {}
    for region in sorted({t.region for t in test_tunes}):
        scores = vae.reconstruction_accuracy(model, melody_slices([t for t in test_tunes if t.region == region],
                                                                  transpose=None))
        per_region[region] = {k: round(v, 4) for k, v in scores.items()}
    metrics = {**{f"test_{k}": round(v, 4) for k, v in test.items()}, "test_per_region": per_region,
               "test_kl_nats": round(float(stats["kl_per_dim"].sum()), 2), "active_units": stats["active_units"],
               "steps": settings.steps, "batch_size": batch_size}
    return _finish("vae-melody", out_dir, model, model_config, settings, metrics, history, command, description,
                   **({"skipped": skipped} if skipped else {}))


def vae_timbre_step(model, beta: float = 1.0, sigma: float = 0.1, warmup_steps: int = 500):
    """The step function of the timbre VAE: -ELBO with a fixed-variance Gaussian decoder.

    -log p(x|z) = sum_pixels (x - x_mean)^2 / (2 sigma^2) + const; KL annealed over ``warmup_steps``
    (a function of ``update.step``, the steps taken).
    """

    def step(batch, update):
        x, _ = batch
        x_mean, mu, logvar, _ = model(x)
        nll = ((x - x_mean) ** 2).flatten(1).sum(1).mean() / (2 * sigma**2)
        kl = losses.gaussian_kl(mu, logvar)
        loss = losses.negative_elbo(nll, kl, losses.kl_weight(update.step, warmup_steps, beta))
        update(loss)
        return {"loss": loss, "nll": nll, "kl": kl, "rmse": ((x - x_mean) ** 2).mean().sqrt()}

    return step


def timbre_split(notes: dict) -> np.ndarray:
    """Held-out mask of a timbre note set: every fourth pitch (the model never hears those pitches)."""
    return (notes["pitch"] % 4) == 1


def score_timbre(model, notes: dict, test: np.ndarray, k: int = 5) -> dict:
    """kNN instrument accuracy in latent space (train-pitch means -> held-out-pitch means), the same
    for the raw normalised log-mels (the baseline), and the held-out reconstruction RMSE."""
    from ..models import vae

    with torch.no_grad():
        mu, _ = model.encode(torch.from_numpy(notes["x"]))
        x_mean = model.decode(mu).cpu().numpy()
    mu = mu.cpu().numpy()
    labels = notes["program"]
    flat = notes["x"].reshape(len(labels), -1)
    return {"knn_latent": vae.knn_accuracy(mu[~test], labels[~test], mu[test], labels[test], k),
            "knn_log_mel": vae.knn_accuracy(flat[~test], labels[~test], flat[test], labels[test], k),
            "test_rmse": float(np.sqrt(((x_mean[test] - notes["x"][test]) ** 2).mean()))}


@dataclasses.dataclass(frozen=True)
class VaeTimbreSettings(TrainingSettings):
    """Training settings of ``vae-timbre`` (defaults: full mode; `VAE_TIMBRE_SETTINGS` holds both presets).

    Chapter: notebooks/06_vae.ipynb
    """

    steps: int = 4000
    batch_size: int = 64
    lr: float = 1e-3
    log_every: int = 25
    eval_every: int = 1000
    checkpoint_every: int = 1000
    beta: float = 1.0
    kl_warmup_steps: int = 500
    velocities: tuple = (60, 90, 120)


VAE_TIMBRE_SETTINGS = {"full": VaeTimbreSettings(),
                       "quick": VaeTimbreSettings(steps=300, eval_every=75, kl_warmup_steps=37, velocities=(90,))}


def train_vae_timbre(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True, data=None,
                     restart: bool = False, **settings) -> dict:
    """The chapter-6 timbre VAE on SoundFont one-shot notes of 8 instruments, or on 0.512 s segments of
    the recordings in ``data`` (see `datasets.user.read_audio_segments`; measured by the validation segments'
    reconstruction RMSE, as there are no instrument labels). ``settings``: fields of
    `VaeTimbreSettings` to change."""
    from ..models import vae

    start = time.perf_counter()
    settings = pick_settings("vae-timbre", VAE_TIMBRE_SETTINGS, steps, **settings)
    model_config = vae.TimbreVaeConfig()  # 256 hidden units: the weights stay small (about 5 MB)
    if data is None:
        notes = vae.timbre_note_set(model_config, velocities=settings.velocities)
        test = timbre_split(notes)
        evaluate = lambda: score_timbre(model, notes, test)
        description, skipped = (f"SoundFont TimGM6mb one-shot notes, programs {list(vae.TIMBRE_PROGRAMS)}, pitches "
                                "48-84 (held out: pitch % 4 == 1), velocities as in the settings; silent renders "
                                "dropped"), []
    else:
        segments, description, skipped = datasets.user.read_audio_segments(
            data, model_config.sr, model_config.n_frames * model_config.hop_length / model_config.sr, "the timbre VAE")
        notes = {"x": vae.timbre_log_mel(np.concatenate([segments["train"], segments["valid"]]), model_config)}
        test = np.arange(len(notes["x"])) >= len(segments["train"])
        notes["program"] = np.zeros(len(test), np.int64)  # no labels: the step ignores them

        def evaluate():
            with torch.no_grad():
                x_mean = model.decode(model.encode(torch.from_numpy(notes["x"][test]))[0]).cpu().numpy()
            return {"valid_rmse": float(np.sqrt(((x_mean - notes["x"][test]) ** 2).mean()))}
    x = torch.from_numpy(notes["x"][~test])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.from_numpy(notes["program"][~test])),
                                         batch_size=min(settings.batch_size, len(x)), shuffle=True, drop_last=True)
    model = vae.TimbreVAE(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    out_dir = Path(out_dir)
    history = train.fit(model, optimizer, vae_timbre_step(model, beta=settings.beta,
                                                          warmup_steps=settings.kl_warmup_steps),
                        loader, settings.steps, evaluate=evaluate, eval_every=settings.eval_every,
                        log_every=settings.log_every, seed=settings.seed, checkpoint_path=out_dir / "vae-timbre.pt",
                        checkpoint_every=settings.checkpoint_every, restart=restart,
                        identity=run_identity(settings, model_config, data, description), config=model_config,
                        started=start, progress=progress, desc="timbre VAE")
    metrics = {**{k: round(v, 4) for k, v in history[-1].items() if k != "step"}, "steps": settings.steps,
               "n_train_notes": int((~test).sum()), "n_test_notes": int(test.sum())}
    return _finish("vae-timbre", out_dir, model, model_config, settings, metrics, history, command, description,
                   **({"skipped": skipped} if skipped else {}))
