"""The latent diffusion model of instrument notes: ``python -m musiclab train diffusion``.

Two trainings in one run, each resumable on its own: the autoencoder of the log-mels
(``diffusion-autoencoder.pt``), then the denoiser on its standardised latents (``diffusion.pt``).
The data are exactly the GAN chapter's notes and conditions, and the final model is measured with
the GAN chapter's evaluation (`recipes.gan.evaluate_gan`), so the numbers of both chapters compare.
With ``--data`` (your recording, or a folder of them) the same two trainings run on 0.75-s slices of
it with a single condition, as the GAN's ``--data`` does, written as ``recording-diffusion``.

Chapter: notebooks/07_diffusion.ipynb
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch

from .. import config, datasets, losses, train
from .common import TrainingSettings, _finish, pick_settings, run_identity
from .gan import evaluate_gan, gan_batches

log = logging.getLogger(__name__)


def autoencoder_step(model, latent_noise: float = 0.1):
    """The step function of the autoencoder: mean squared reconstruction error of normalised log-mels.

    The decoder sees the latent plus Gaussian noise of ``latent_noise`` times the batch's latent
    spread, so that it decodes the slightly-off latents a sampler produces as well as exact ones.

    Chapter: notebooks/07_diffusion.ipynb
    """

    def step(batch, update):
        x = batch[0]
        latent = model.autoencoder.encode(x)
        noisy = latent + latent_noise * latent.detach().std() * torch.randn_like(latent)
        loss = ((model.autoencoder.decode(noisy) - x) ** 2).mean()  # a fixed-variance Gaussian decoder
        update(loss)
        return {"reconstruction_mse": loss}

    return step


def diffusion_step(model, ema=None, ema_decay: float = 0.999, p_unconditional: float = 0.1):
    """The step function of the denoiser: `losses.diffusion_loss` at a uniformly drawn step t, the
    target set by ``config.prediction``; the condition is replaced by the null token with
    probability ``p_unconditional`` (one network learns both the conditional and the unconditional
    model, as classifier-free guidance needs). ``ema`` tracks a moving average of the denoiser.

    Chapter: notebooks/07_diffusion.ipynb
    """
    from ..models import diffusion_process

    config = model.config

    def step(batch, update):
        x, program_index, pitch_index = batch
        with torch.no_grad():
            z0 = model.encode(x)
        t = torch.randint(1, config.n_train_steps + 1, (len(x),), device=x.device)
        alpha_bar = model.alpha_bar[t][:, None, None]
        noise = torch.randn_like(z0)
        drop = torch.rand(len(x), device=x.device) < p_unconditional
        program_index = program_index.masked_fill(drop, len(config.programs))
        pitch_index = pitch_index.masked_fill(drop, len(config.pitches))
        output = model.denoiser(diffusion_process.q_sample(z0, alpha_bar, noise), t, program_index, pitch_index)
        target = diffusion_process.prediction_target(z0, noise, alpha_bar, config.prediction)
        loss = losses.diffusion_loss(output, target)
        update(loss)
        if ema is not None:
            with torch.no_grad():
                for averaged, current in zip(ema.parameters(), model.denoiser.parameters()):
                    averaged.lerp_(current, 1 - ema_decay)
        return {"diffusion_loss": loss}

    return step


def _last(history, key: str) -> float:
    """The last logged value of ``key`` in a `train.History`."""
    return float([row[key] for row in history if key in row][-1])


@torch.no_grad()
def standardise_latents(model, x: torch.Tensor, batch_size: int = 256) -> None:
    """Set the model's latent mean and spread per channel from the autoencoder's latents of ``x``, so
    that the diffusion sees data of unit scale, as its noise schedule assumes.

    Chapter: notebooks/07_diffusion.ipynb
    """
    latents = torch.cat([model.autoencoder.encode(chunk) for chunk in x.split(batch_size)])
    model.latent_mean.copy_(latents.mean((0, 2), keepdim=True))
    model.latent_std.copy_(latents.std((0, 2), keepdim=True))


@torch.no_grad()
def time_sampling(model, n_notes: int = 16, repeats: int = 3) -> float:
    """Seconds to sample ``n_notes`` log-mels with the model's recommended sampler settings on one
    CPU thread (the best of ``repeats``, so that a busy machine counts less).

    Chapter: notebooks/07_diffusion.ipynb
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = model.cpu().eval()
        z = torch.randn(n_notes, model.config.z_dim)
        index = torch.zeros(n_notes, dtype=torch.long)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            model(z, index, index)
            best = min(best, time.perf_counter() - start)
        return best
    finally:
        torch.set_num_threads(threads)


@dataclasses.dataclass(frozen=True)
class DiffusionSettings(TrainingSettings):
    """Training settings of ``diffusion`` (defaults: full mode; `DIFFUSION_SETTINGS` holds both presets).

    ``steps`` trains the denoiser, ``autoencoder_steps`` the autoencoder before it;
    ``n_per_condition`` rendered notes per (instrument, pitch) as in the GAN chapter;
    ``eval_per_condition`` held-out notes per condition for the GAN chapter's evaluation (0: skip it).

    Chapter: notebooks/07_diffusion.ipynb
    """

    steps: int = 8000
    autoencoder_steps: int = 2500
    batch_size: int = 64
    lr: float = 1e-3
    log_every: int = 50
    checkpoint_every: int = 500
    ema_decay: float = 0.999
    p_unconditional: float = 0.1
    latent_noise: float = 0.1
    width: int = 128
    latent_channels: int = 16
    n_per_condition: int = 16
    eval_per_condition: int = 4


DIFFUSION_SETTINGS = {
    "full": DiffusionSettings(),
    "quick": DiffusionSettings(steps=300, autoencoder_steps=150, width=64, n_per_condition=4, eval_per_condition=0),
}
# Your recording: one condition, a few hundred slices, so a shorter run; nothing to evaluate against
RECORDING_DIFFUSION_SETTINGS = {
    "full": DiffusionSettings(steps=3000, autoencoder_steps=1500, eval_per_condition=0),
    "quick": DiffusionSettings(steps=300, autoencoder_steps=150, width=64, eval_per_condition=0),
}
RECORDING_NEEDS = "the diffusion model cuts a few seconds of music into training slices"


def train_diffusion(out_dir="runs", steps: int | None = None, command: str = "", data=None, progress: bool = True,
                    restart: bool = False, **settings) -> dict:
    """A conditional latent diffusion model of the GAN chapter's notes (6 instruments x 25 pitches),
    written as ``diffusion``; with ``data`` (a recording or a folder of them, read by
    `datasets.user.read_recordings`) a single-condition one of its 0.75-s slices, as the GAN's
    ``--data`` trains the recording GAN of chapter 14, written as ``recording-diffusion``.
    ``settings``: fields of `DiffusionSettings` to change (e.g. ``autoencoder_steps=500``).

    Chapter: notebooks/07_diffusion.ipynb
    """
    from ..models import diffusion, gan

    start = time.perf_counter()
    if data is None:
        settings = pick_settings("diffusion", DIFFUSION_SETTINGS, steps, **settings)
        model_config = diffusion.DiffusionConfig(width=settings.width, latent_channels=settings.latent_channels)
        notes = gan.render_note_variations(model_config, n_per_condition=settings.n_per_condition, seed=0)
        description = (f"SoundFont TimGM6mb, programs {list(model_config.programs)}, pitches "
                       f"{model_config.pitches[0]}-{model_config.pitches[-1]}, {settings.n_per_condition} notes per "
                       "condition (seed 0): velocity 40-127, hold 0.15-0.5 s, onset 0-40 ms")
        return _train_latent_diffusion("diffusion", notes, model_config, settings, description, None, out_dir,
                                       command, progress, restart, start)
    from .recording import recording_slices

    settings = pick_settings("recording-diffusion", RECORDING_DIFFUSION_SETTINGS, steps, **settings)
    model_config = diffusion.DiffusionConfig(programs=(0,), pitches=(0,), width=settings.width,
                                             latent_channels=settings.latent_channels)
    recordings, skipped = datasets.user.read_recordings(data, model_config.sr, needed_for=RECORDING_NEEDS)
    parts = [recording_slices(y, model_config) for y in recordings]
    slices = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    description = (f"{data}: {len(recordings)} recording(s), {len(skipped)} skipped, {len(slices['y'])} slices of "
                   f"{model_config.n_samples / model_config.sr:.2f} s, a quarter slice apart")
    log.info("recording-diffusion: %s", description)
    return _train_latent_diffusion("recording-diffusion", slices, model_config, settings, description, data, out_dir,
                                   command, progress, restart, start, skipped=skipped)


def _train_latent_diffusion(name: str, notes: dict, model_config, settings, description: str, data, out_dir,
                            command: str, progress: bool, restart: bool, start: float, **extra) -> dict:
    """Train the autoencoder, then the denoiser on its standardised latents, for the log-mels in
    ``notes`` (`gan.render_note_variations`' keys); write ``out_dir/NAME.safetensors`` and its sidecar."""
    from ..models import diffusion, gan

    batches = gan_batches(notes, model_config, min(settings.batch_size, len(notes["pitch"])))
    model = diffusion.NoteDiffusion(model_config)
    out_dir = Path(out_dir)
    fit_options = dict(log_every=settings.log_every, seed=settings.seed, checkpoint_every=settings.checkpoint_every,
                       restart=restart, identity=run_identity(settings, model_config, data, description),
                       config=model_config, progress=progress)
    autoencoder_run = train.fit(
        {"autoencoder": model.autoencoder}, torch.optim.Adam(model.autoencoder.parameters(), lr=settings.lr),
        autoencoder_step(model, settings.latent_noise), batches, settings.autoencoder_steps,
        checkpoint_path=out_dir / f"{name}-autoencoder.pt", started=start, desc=f"{name} (autoencoder)",
        lr_schedule=lambda step: train.linear_decay(step, settings.autoencoder_steps, 0.1), **fit_options)
    autoencoder_s = autoencoder_run.wall_time_s()
    device = config.get_device()
    model.to(device).autoencoder.eval()
    standardise_latents(model, torch.from_numpy(gan.normalise(notes["log_mel"], model_config)).float().to(device))
    ema = copy.deepcopy(model.denoiser)
    run = train.fit(
        {"denoiser": model.denoiser, "ema": ema}, torch.optim.Adam(model.denoiser.parameters(), lr=settings.lr),
        diffusion_step(model, ema, settings.ema_decay, settings.p_unconditional), batches, settings.steps,
        checkpoint_path=out_dir / f"{name}.pt", desc=f"{name} (denoiser)",
        lr_schedule=lambda step: train.linear_decay(step, settings.steps, 0.1), **fit_options)
    model.denoiser.load_state_dict(ema.state_dict())
    model.eval()
    metrics = {"reconstruction_mse": round(_last(autoencoder_run, "reconstruction_mse"), 5),
               "diffusion_loss": round(_last(run, "diffusion_loss"), 5), "steps": settings.steps,
               "autoencoder_steps": settings.autoencoder_steps, "n_training_clips": len(notes["pitch"]),
               "sampling_time_16_notes_s": round(time_sampling(model), 3),
               "parameters": train.count_parameters(model)}
    if settings.eval_per_condition:
        metrics.update(evaluate_gan(model, n_per_condition=settings.eval_per_condition, progress=progress))
    run.earlier_s += autoencoder_s
    return _finish(name, out_dir, model, model_config, settings, metrics, run, command, description,
                   weights=f"autoencoder, and the exponential moving average of the denoiser (decay {settings.ema_decay})",
                   sampler=f"DDIM, {model_config.sampler_steps} steps, guidance {model_config.guidance_scale}", **extra)
