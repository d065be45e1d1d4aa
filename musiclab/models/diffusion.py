"""A conditional latent diffusion model of the chapter-3 instrument notes.

- The forward process, its closed form, the posterior and the two samplers (ancestral DDPM and
  deterministic DDIM) are pure functions in `models.diffusion_process`.
- `autoencoder.NoteAutoencoder` maps a log-mel [80 x 48] to a latent [latent_channels x 12] and
  back. Diffusion runs in this small latent space (as in latent diffusion, AudioLDM and Stable
  Audio): 20 times fewer numbers than the log-mel, and none of them spent on the fine texture a
  decoder learns once.
- `Denoiser`: a residual 1-D conv net over the latent's frames; instrument, pitch and timestep enter
  by FiLM (a learned scale and shift per channel). Index ``len(programs)`` and ``len(pitches)`` is
  the null condition of classifier-free guidance.
- `NoteDiffusion` holds both. Its ``forward(z, program_index, pitch_index)`` is the DDIM sampler
  started from the noise ``z``: a deterministic generator of normalised log-mels, called exactly
  like the GAN's `gan.Generator`, so that `gan.generate_log_mel` and the GAN chapter's evaluation
  apply unchanged.

The training losses are in `musiclab.losses` (diffusion section), the step functions and recipe in
`musiclab.recipes.diffusion`.

Chapter: notebooks/07_diffusion.ipynb
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .. import weights
from .autoencoder import NoteAutoencoder
from .diffusion_process import cosine_alpha_bar, guide, sample, split_prediction
from .gan import PITCHES, PROGRAMS, GanConfig


# Networks ----------------------------------------------------------------------------------------------


@dataclass
class DiffusionConfig:
    """The note representation of the GAN chapter (same fields and values as `gan.GanConfig`, so
    its data and evaluation functions apply) plus the autoencoder, denoiser and sampler settings.

    ``prediction`` is the denoiser's output (`diffusion_process.PREDICTIONS`); ``sampler_steps`` and
    ``guidance_scale`` are the recommended DDIM settings that ``NoteDiffusion.forward`` uses.

    Chapter: notebooks/07_diffusion.ipynb
    """

    programs: tuple = PROGRAMS
    pitches: tuple = PITCHES
    sr: int = GanConfig.sr
    n_fft: int = GanConfig.n_fft
    hop_length: int = GanConfig.hop_length
    n_mels: int = GanConfig.n_mels
    n_frames: int = GanConfig.n_frames
    fmax: float = GanConfig.fmax
    log_center: float = GanConfig.log_center
    log_scale: float = GanConfig.log_scale
    autoencoder_width: int = 128
    latent_channels: int = 16
    width: int = 128
    n_blocks: int = 4
    n_train_steps: int = 1000
    prediction: str = "v"
    sampler_steps: int = 20
    # measured (bench_diffusion.py --part curves): 3.0 keeps pitch and instrument, is less diverse, Frechet x2.5
    guidance_scale: float = 1.0

    @property
    def n_samples(self) -> int:
        return self.hop_length * (self.n_frames - 1)

    @property
    def latent_frames(self) -> int:
        return self.n_frames // 4

    @property
    def z_dim(self) -> int:
        """The size of the starting noise: one number per latent value."""
        return self.latent_channels * self.latent_frames


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of the diffusion time t / T in [0, 1]: [shape=(B, dim)].

    Chapter: notebooks/07_diffusion.ipynb
    """
    frequencies = torch.exp(torch.arange(dim // 2, device=t.device) * (-math.log(1000.0) / (dim // 2)))
    angles = 1000.0 * t[:, None].float() * frequencies
    return torch.cat([angles.sin(), angles.cos()], 1)


class ResidualBlock(nn.Module):
    """GroupNorm, SiLU, conv, FiLM by the condition vector, SiLU, conv, plus the input.

    Chapter: notebooks/07_diffusion.ipynb
    """

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.GroupNorm(8, width)
        self.conv1 = nn.Conv1d(width, width, 3, padding=1)
        self.film = nn.Linear(width, 2 * width)
        self.conv2 = nn.Conv1d(width, width, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, h, condition):
        scale, shift = self.film(condition)[:, :, None].chunk(2, 1)
        r = self.conv1(F.silu(self.norm(h))) * (1 + scale) + shift
        return h + self.conv2(F.silu(r))


class Denoiser(nn.Module):
    """The network of the reverse process: f(z_t, t, instrument, pitch) -> the ``config.prediction``.

    Parameters
    ----------
    z_t : Tensor [shape=(B, latent_channels, latent_frames)], a noisy standardised latent
    t : Tensor [shape=(B,)], the timestep in 0 .. n_train_steps
    program_index, pitch_index : LongTensor [shape=(B,)]; ``len(programs)`` and ``len(pitches)``
        are the null condition (classifier-free guidance)

    Returns
    -------
    output : Tensor [shape=(B, latent_channels, latent_frames)]

    Chapter: notebooks/07_diffusion.ipynb
    """

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.embed_program = nn.Embedding(len(config.programs) + 1, w)
        self.embed_pitch = nn.Embedding(len(config.pitches) + 1, w)
        self.embed_time = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.position = nn.Parameter(torch.zeros(1, w, config.latent_frames))
        self.inp = nn.Conv1d(config.latent_channels, w, 3, padding=1)
        self.blocks = nn.ModuleList([ResidualBlock(w) for _ in range(config.n_blocks)])
        self.out = nn.Sequential(nn.GroupNorm(8, w), nn.SiLU(), nn.Conv1d(w, config.latent_channels, 3, padding=1))

    def forward(self, z_t, t, program_index, pitch_index):
        time = self.embed_time(timestep_embedding(t / self.config.n_train_steps, self.config.width))
        condition = F.silu(time + self.embed_program(program_index) + self.embed_pitch(pitch_index))
        h = self.inp(z_t) + self.position
        for block in self.blocks:
            h = block(h, condition)
        return self.out(h)


class NoteDiffusion(nn.Module):
    """The autoencoder, the denoiser, and the latents' per-channel mean and spread (buffers set by
    the recipe once the autoencoder is trained).

    ``forward(z, program_index, pitch_index)`` samples: DDIM with ``config.sampler_steps`` steps and
    guidance ``config.guidance_scale`` from the noise ``z`` [shape=(B, z_dim)]; returns normalised
    log-mels [shape=(B, n_mels, n_frames)] in [-1, 1].

    Chapter: notebooks/07_diffusion.ipynb
    """

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = config
        self.autoencoder = NoteAutoencoder(config.n_mels, config.autoencoder_width, config.latent_channels)
        self.denoiser = Denoiser(config)
        self.register_buffer("latent_mean", torch.zeros(1, config.latent_channels, 1))
        self.register_buffer("latent_std", torch.ones(1, config.latent_channels, 1))
        self.register_buffer("alpha_bar", cosine_alpha_bar(config.n_train_steps).float())

    def encode(self, x):
        """Normalised log-mel -> standardised latent."""
        return (self.autoencoder.encode(x) - self.latent_mean) / self.latent_std

    def decode(self, latent):
        """Standardised latent -> normalised log-mel in [-1, 1]."""
        return self.autoencoder.decode(latent * self.latent_std + self.latent_mean).clamp(-1, 1)

    def estimate(self, z_t, t: int, program_index, pitch_index, guidance_scale: float):
        """(x0_hat, eps_hat) at step ``t``; guided by one batched pass with and without the condition,
        except at scale 1, which is the conditional model alone."""
        n = len(z_t)
        if guidance_scale == 1:
            output = self.denoiser(z_t, torch.full((n,), t, device=z_t.device), program_index, pitch_index)
        else:
            both = self.denoiser(torch.cat([z_t, z_t]), torch.full((2 * n,), t, device=z_t.device),
                                 torch.cat([program_index, torch.full_like(program_index, len(self.config.programs))]),
                                 torch.cat([pitch_index, torch.full_like(pitch_index, len(self.config.pitches))]))
            output = guide(both[:n], both[n:], guidance_scale)
        return split_prediction(z_t, output, self.alpha_bar[t], self.config.prediction)

    def generate(self, z, program_index, pitch_index, n_steps: int | None = None, sampler: str = "ddim",
                 guidance_scale: float | None = None, rng: torch.Generator | None = None, on_step=None):
        """Sample normalised log-mels [shape=(B, n_mels, n_frames)] from noise ``z`` [shape=(B, z_dim)];
        ``n_steps`` and ``guidance_scale`` default to the config's recommended values; ``on_step`` as in
        `diffusion_process.sample` (latents)."""
        config = self.config
        scale = config.guidance_scale if guidance_scale is None else guidance_scale
        z_T = z.view(-1, config.latent_channels, config.latent_frames)
        latent = sample(lambda z_t, t: self.estimate(z_t, t, program_index, pitch_index, scale), z_T,
                        self.alpha_bar, n_steps or config.sampler_steps, sampler, rng, on_step)
        return self.decode(latent)

    @torch.no_grad()
    def forward(self, z, program_index, pitch_index):
        return self.generate(z, program_index, pitch_index)


CLASSES = {"diffusion": (NoteDiffusion, DiffusionConfig), "recording-diffusion": (NoteDiffusion, DiffusionConfig)}


def load_pretrained(name: str = "diffusion", path=None) -> tuple[NoteDiffusion, dict]:
    """Load ``diffusion``: the shipped full-mode weights (``musiclab/checkpoints/diffusion.safetensors``)
    or your own trained ones at ``path`` (also ``recording-diffusion``, trained on your recording),
    checked by `weights.load_weights`. Returns
    ``(model in eval mode, sidecar)``.

    Chapter: notebooks/07_diffusion.ipynb
    """
    return weights.load_family(name, CLASSES, path)
