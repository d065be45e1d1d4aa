"""Chapter 7's diffusion explorer: choose an instrument, a pitch, the guidance weight and the number of
DDIM steps, then step through the sampler and watch (and hear) a note emerge from noise.

A run of the sampler is computed once per choice of condition, guidance, steps and seed (a few
milliseconds on one thread); stepping through it only redraws.

Chapter: notebooks/07_diffusion.ipynb
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from .. import audio, plot
from ..models import gan

VMIN, VMAX = -11.5, 1.0  # the log-mel range (nats) of the GAN chapter's figures


@dataclass
class Trajectory:
    """One sampler run: the steps t it visited, the decoded estimate of the clean note at each
    (x0_hat, log-mel in nats [shape=(n_steps, n_mels, n_frames)]), and the noisy latents z_t
    [shape=(n_steps, latent_channels, latent_frames)].

    Chapter: notebooks/07_diffusion.ipynb
    """

    steps: list
    x0_log_mels: np.ndarray
    latents: np.ndarray

    @property
    def final(self) -> np.ndarray:
        return self.x0_log_mels[-1]


@torch.no_grad()
def sample_trajectory(model, program: int, pitch: int, guidance_scale: float = 1.0, n_steps: int = 20,
                      seed: int = 0) -> Trajectory:
    """Sample one note with DDIM and keep every step (`models.diffusion.NoteDiffusion.generate`'s ``on_step``).

    Chapter: notebooks/07_diffusion.ipynb
    """
    config = model.config
    program_index, pitch_index = gan.condition_indices(config, program, pitch)
    seen = []
    model.generate(gan.latent([seed], config.z_dim), program_index, pitch_index, n_steps=n_steps,
                   guidance_scale=guidance_scale, on_step=lambda t, z_t, x0_hat: seen.append((t, z_t, x0_hat)))
    decoded = model.decode(torch.cat([x0_hat for _, _, x0_hat in seen]))
    return Trajectory([t for t, _, _ in seen], gan.denormalise(decoded.numpy(), config),
                      torch.cat([z_t for _, z_t, _ in seen]).numpy())


def step_figure(trajectory: Trajectory, index: int, title: str = ""):
    """The noisy latent z_t and the decoded estimate of the note at step ``index``, side by side
    (plain imshow: fast enough for an interaction; the axes are bins and frames, not Hz and seconds).

    Chapter: notebooks/07_diffusion.ipynb
    """
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 2.3), gridspec_kw={"width_ratios": [1, 2]})
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.2, top=0.83, wspace=0.25)
    axes[0].imshow(trajectory.latents[index], origin="lower", aspect="auto", cmap="coolwarm", vmin=-3, vmax=3)
    axes[0].set(title=f"noisy latent z_t, t = {trajectory.steps[index]}", xlabel="latent frame", ylabel="channel")
    axes[1].imshow(trajectory.x0_log_mels[index], origin="lower", aspect="auto", cmap="magma", vmin=VMIN, vmax=VMAX)
    axes[1].set(title=f"decoded estimate of the note {title}", xlabel="frame", ylabel="mel band")
    return fig


def explorer(model):
    """The live widget: instrument, pitch, guidance weight, steps and seed choose a sampler run;
    the step slider walks through it; the player plays the estimate at that step (the vocoder).

    Chapter: notebooks/07_diffusion.ipynb
    """
    import ipywidgets as w

    config = model.config
    program = w.Dropdown(options=[(audio.program_name(p), p) for p in config.programs], value=40,
                         description="instrument")
    pitch = w.IntSlider(value=67, min=config.pitches[0], max=config.pitches[-1], description="pitch")
    guidance = w.FloatSlider(value=config.guidance_scale, min=0.0, max=5.0, step=0.5, description="guidance")
    n_steps = w.IntSlider(value=config.sampler_steps, min=1, max=50, description="DDIM steps")
    seed = w.IntSlider(value=0, min=0, max=99, description="seed")
    step = w.IntSlider(value=config.sampler_steps - 1, min=0, max=config.sampler_steps - 1, description="step")
    out = w.Output()
    state = {}

    def resample(*_):
        state["run"] = sample_trajectory(model, program.value, pitch.value, guidance.value, n_steps.value, seed.value)
        step.unobserve(redraw, "value")  # one redraw per choice, not one per changed slider bound
        step.max = n_steps.value - 1
        step.value = step.max
        step.observe(redraw, "value")
        redraw()

    def redraw(*_):
        run = state["run"]
        index = min(step.value, len(run.steps) - 1)
        with out:
            out.clear_output(wait=True)
            fig = step_figure(run, index, f"({audio.program_name(program.value)}, {plot.pitch_name(pitch.value)})")
            display(fig)
            plt.close(fig)
            display(audio.player(gan.log_mel_to_audio(run.x0_log_mels[index], config), config.sr))

    for control in (program, pitch, guidance, n_steps, seed):
        control.observe(resample, "value")
    step.observe(redraw, "value")
    resample()
    return w.VBox([w.HBox([program, pitch]), w.HBox([guidance, n_steps]), w.HBox([seed, step]), out])


def gallery_items(model, program: int = 40, pitch: int = 67, seed: int = 0, show_steps=(0, 5, 10, 19),
                  guidance_scales=(0.0, 1.0, 3.0)) -> list[dict]:
    """The static gallery of the explorer: one note emerging at a few of the recommended run's steps,
    then the finished note at a few guidance weights; each card an image and a player.

    Chapter: notebooks/07_diffusion.ipynb
    """
    config = model.config
    name = f"{audio.program_name(program)}, {plot.pitch_name(pitch)}"
    items = []
    run = sample_trajectory(model, program, pitch, config.guidance_scale, config.sampler_steps, seed)
    for index in show_steps:
        fig = step_figure(run, index, f"(step {index + 1} of {len(run.steps)})")
        items.append({"title": f"{name}, guidance {config.guidance_scale:g}: step {index + 1} of {len(run.steps)}",
                      "image": plot.figure_to_png_base64(fig, dpi=60),
                      "audio": audio.player(gan.log_mel_to_audio(run.x0_log_mels[index], config), config.sr)})
        plt.close(fig)
    for scale in guidance_scales:
        final = sample_trajectory(model, program, pitch, scale, config.sampler_steps, seed)
        fig = step_figure(final, len(final.steps) - 1, f"(guidance {scale:g})")
        items.append({"title": f"{name}, guidance {scale:g}: the finished note",
                      "image": plot.figure_to_png_base64(fig, dpi=60),
                      "audio": audio.player(gan.log_mel_to_audio(final.final, config), config.sr)})
        plt.close(fig)
    return items
