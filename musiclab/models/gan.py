"""A conditional SpecGAN: one-shot instrument notes as log-mel spectrograms, conditioned on pitch and
instrument, turned into audio by the neural vocoder (`vocoder.to_audio`).

- Data: SoundFont notes with honest within-condition variation (velocity = level, hold time,
  onset offset), as 80 x 48 log-mel spectrograms (16 kHz, 0.75 s), scaled to [-1, 1].
- `Generator`: z and the two conditions -> a linear layer to a 5 x 3 grid of feature maps, then four
  (upsample x2, 3x3 conv, class-conditional batch norm, ReLU) blocks, tanh.
- `Discriminator`: four strided 4x4 convs (spectral norm optional) -> features h, and the
  *projection* output ``w . h + <e_pitch, h> + <e_instrument, h>`` (Miyato and Koyama 2018).

The losses are in `musiclab.losses` (GAN section); the step function and recipe in
`musiclab.recipes.gan` (``gan_step``, ``train_gan``); `load_pretrained` loads the shipped generators.

Chapter: notebooks/03_gan.ipynb
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import audio, weights
from ..errors import BadInputError
from . import vocoder

PROGRAMS = (0, 19, 24, 40, 71, 73)  # piano, church organ, nylon guitar, violin, clarinet, flute
PITCHES = tuple(range(55, 80))  # G3 .. G5: two octaves, every preset above sounds on all of them


@dataclass
class GanConfig:
    programs: tuple = PROGRAMS
    pitches: tuple = PITCHES
    z_dim: int = 64
    embed_dim: int = 32
    width: int = 32  # channels of the last generator block; earlier blocks have 2x, 4x, 8x
    spectral_norm: bool = True
    sr: int = audio.DEFAULT_SR
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    n_frames: int = 48
    fmax: float = 8000.0
    # log-mel (natural log) -> [-1, 1]: (log_mel - center) / scale, clipped
    log_center: float = -5.5
    log_scale: float = 6.0

    @property
    def n_samples(self) -> int:
        return self.hop_length * (self.n_frames - 1)


# Conditions -----------------------------------------------------------------------------------------


def condition_indices(config: GanConfig, programs, pitches) -> tuple[torch.Tensor, torch.Tensor]:
    """Map General MIDI programs and MIDI pitches to the model's (program, pitch) indices.

    Returns two LongTensors [shape=(B,)]. A program or pitch the model was not trained on raises
    ``BadInputError`` naming it and listing the valid ones.

    Chapter: notebooks/03_gan.ipynb
    """
    programs, pitches = np.atleast_1d(programs), np.atleast_1d(pitches)
    program_list, pitch_list = list(config.programs), list(config.pitches)
    bad_programs = sorted({int(p) for p in programs if p not in program_list})
    if bad_programs:
        names = ", ".join(f"{p} ({audio.program_name(p)})" for p in program_list)
        raise BadInputError(f"program {bad_programs}: this GAN knows only programs {names}")
    bad_pitches = sorted({int(p) for p in pitches if p not in pitch_list})
    if bad_pitches:
        raise BadInputError(f"pitch {bad_pitches}: this GAN knows only MIDI pitches "
                            f"{pitch_list[0]}..{pitch_list[-1]}")
    program_index = torch.tensor([program_list.index(int(p)) for p in programs])
    pitch_index = torch.tensor([pitch_list.index(int(p)) for p in pitches])
    if len(program_index) != len(pitch_index):
        if 1 not in (len(program_index), len(pitch_index)):
            raise BadInputError(f"{len(program_index)} programs for {len(pitch_index)} pitches: "
                                "give one of each per note, or a single one to share")
        program_index, pitch_index = torch.broadcast_tensors(program_index, pitch_index)
    return program_index, pitch_index


# Data -------------------------------------------------------------------------------------------------


def normalise(log_mel, config: GanConfig):
    """log-mel (nats) -> the generator's range [-1, 1]."""
    return ((log_mel - config.log_center) / config.log_scale).clip(-1, 1)


def denormalise(x, config: GanConfig):
    """The generator's [-1, 1] -> log-mel in nats."""
    return x * config.log_scale + config.log_center


def render_note_variations(config: GanConfig, n_per_condition: int, seed: int = 0, programs=None,
                           pitches=None) -> dict:
    """Render ``n_per_condition`` varied notes for every (program, pitch) of ``config``.

    The SoundFont plays one recorded sample per (instrument, pitch), so without variation each
    condition would be a single point and a GAN could only copy it. Each note draws:

    - velocity uniform in [40, 127] (in TimGM6mb this changes the level only),
    - hold time uniform in [0.15, 0.5] s before the note-off (then the release rings),
    - onset offset uniform in [0, 40] ms (silence before the attack).

    Returns a dict: ``y`` [shape=(N, n_samples)] float32, ``log_mel`` [shape=(N, n_mels,
    n_frames)], ``program``, ``pitch``, ``velocity`` (int64 [shape=(N,)]), ``hold_s``,
    ``onset_s`` (float [shape=(N,)]).

    Chapter: notebooks/03_gan.ipynb
    """
    rng = np.random.default_rng(seed)
    programs = config.programs if programs is None else programs
    pitches = config.pitches if pitches is None else pitches
    condition_indices(config, programs, config.pitches[0])  # refuse unknown conditions early
    condition_indices(config, config.programs[0], pitches)
    rows, clips = [], []
    for program in programs:
        for pitch in pitches:
            for _ in range(n_per_condition):
                velocity = int(rng.integers(40, 128))
                hold_s, onset_s = float(rng.uniform(0.15, 0.5)), float(rng.uniform(0.0, 0.04))
                y = audio.render_note(int(pitch), int(program), velocity, duration_s=hold_s,
                                      release_s=config.n_samples / config.sr, sr=config.sr)
                y = np.concatenate([np.zeros(round(onset_s * config.sr), np.float32), y])
                clips.append(y[:config.n_samples])
                rows.append((program, pitch, velocity, hold_s, onset_s))
    y = np.stack(clips)
    table = np.array(rows, dtype=np.float64)
    return {"y": y, "log_mel": log_mel(y, config), "program": table[:, 0].astype(np.int64),
            "pitch": table[:, 1].astype(np.int64), "velocity": table[:, 2].astype(np.int64),
            "hold_s": table[:, 3], "onset_s": table[:, 4]}


def log_mel(y, config: GanConfig) -> np.ndarray:
    """`audio.log_mel` with the model's settings: [shape=(..., n_mels, n_frames)]."""
    return audio.log_mel(y, config.sr, n_fft=config.n_fft, hop_length=config.hop_length,
                         n_mels=config.n_mels, fmax=config.fmax)


def log_mel_to_audio(log_mel_spec, config: GanConfig, method: str = "vocoder", n_iter: int = 32) -> np.ndarray:
    """Log-mel -> audio with the model's settings by `vocoder.to_audio`: the neural vocoder by
    default; ``method="pseudo-inverse"`` is the filterbank's pseudo-inverse and ``n_iter`` iterations
    of Griffin-Lim, the way back to sound of the GAN's evaluation (`recipes.gan.evaluate_gan`).

    ``log_mel_spec`` [shape=(..., n_mels, n_frames)] in nats. Returns ``y`` [shape=(...,
    n_samples)], float32.

    Chapter: notebooks/03_gan.ipynb
    """
    return vocoder.to_audio(log_mel_spec, config.sr, n_fft=config.n_fft, hop_length=config.hop_length,
                            fmax=config.fmax, method=method, n_iter=n_iter)


# Models -----------------------------------------------------------------------------------------------


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose gain and bias come from the condition vector: gamma(c) x_hat + beta(c)."""

    def __init__(self, channels: int, condition_dim: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(condition_dim, channels)
        self.bias = nn.Linear(condition_dim, channels)
        nn.init.zeros_(self.gain.weight)
        nn.init.ones_(self.gain.bias)
        nn.init.zeros_(self.bias.weight)
        nn.init.zeros_(self.bias.bias)

    def forward(self, x, condition):
        return self.gain(condition)[:, :, None, None] * self.norm(x) + self.bias(condition)[:, :, None, None]


class Generator(nn.Module):
    """G(z, pitch, instrument) -> a log-mel spectrogram in [-1, 1].

    Parameters
    ----------
    z : Tensor [shape=(B, z_dim)], standard normal
    program_index, pitch_index : LongTensor [shape=(B,)] (see `condition_indices`)

    Returns
    -------
    x : Tensor [shape=(B, n_mels, n_frames)]
    """

    def __init__(self, config: GanConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.channels = [8 * w, 4 * w, 2 * w, w]
        self.start = (config.n_mels // 16, config.n_frames // 16)
        self.embed_program = nn.Embedding(len(config.programs), config.embed_dim)
        self.embed_pitch = nn.Embedding(len(config.pitches), config.embed_dim)
        condition_dim = 2 * config.embed_dim
        self.project = nn.Linear(config.z_dim + condition_dim, self.channels[0] * self.start[0] * self.start[1])
        self.norms = nn.ModuleList([ConditionalBatchNorm(c, condition_dim) for c in self.channels])
        self.convs = nn.ModuleList([nn.Conv2d(c_in, c_out, 3, padding=1)
                                    for c_in, c_out in zip(self.channels, self.channels[1:] + [w])])
        self.out = nn.Conv2d(w, 1, 3, padding=1)

    def forward(self, z, program_index, pitch_index):
        condition = torch.cat([self.embed_program(program_index), self.embed_pitch(pitch_index)], 1)
        h = self.project(torch.cat([z, condition], 1)).view(-1, self.channels[0], *self.start)
        for norm, conv in zip(self.norms, self.convs):
            h = F.interpolate(F.relu(norm(h, condition)), scale_factor=2.0, mode="nearest")
            h = conv(h)
        return torch.tanh(self.out(F.relu(h)))[:, 0]


class Discriminator(nn.Module):
    """D(x, pitch, instrument) -> one logit (score) per example, by projection.

    ``D = w . h(x) + <e_pitch, h(x)> + <e_instrument, h(x)> + b`` with ``h`` the summed conv
    features: the conditions enter as inner products with learned class vectors, which is the form
    the optimal discriminator's log-ratio takes for a log-linear class model (Miyato and Koyama 2018).

    Parameters
    ----------
    x : Tensor [shape=(B, n_mels, n_frames)]
    program_index, pitch_index : LongTensor [shape=(B,)]

    Returns
    -------
    logits : Tensor [shape=(B,)]
    """

    def __init__(self, config: GanConfig):
        super().__init__()
        self.config = config
        norm = nn.utils.parametrizations.spectral_norm if config.spectral_norm else (lambda m: m)
        w = config.width
        channels = [1, w, 2 * w, 4 * w, 8 * w]
        self.convs = nn.ModuleList([norm(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))
                                    for c_in, c_out in zip(channels, channels[1:])])
        self.linear = norm(nn.Linear(8 * w, 1))
        self.embed_program = norm(nn.Embedding(len(config.programs), 8 * w))
        self.embed_pitch = norm(nn.Embedding(len(config.pitches), 8 * w))

    def features(self, x):
        h = x[:, None]
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
        return h.sum((2, 3))

    def forward(self, x, program_index, pitch_index):
        h = self.features(x)
        projection = (self.embed_program(program_index) * h).sum(1) + (self.embed_pitch(pitch_index) * h).sum(1)
        return self.linear(h)[:, 0] + projection


# Sampling ---------------------------------------------------------------------------------------------


def latent(seeds, z_dim: int) -> torch.Tensor:
    """One standard-normal latent vector per integer seed: [shape=(len(seeds), z_dim)]."""
    return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(int(s)))
                        for s in np.atleast_1d(seeds)])


@torch.no_grad()
def generate_log_mel(generator: Generator, programs, pitches, z: torch.Tensor) -> np.ndarray:
    """Log-mel spectrograms (nats) [shape=(B, n_mels, n_frames)] for conditions and latents ``z``.

    ``programs`` and ``pitches`` are General MIDI programs and MIDI pitches (scalars broadcast).

    Chapter: notebooks/03_gan.ipynb
    """
    config = generator.config
    program_index, pitch_index = condition_indices(config, programs, pitches)
    if len(program_index) == 1 and len(z) > 1:
        program_index, pitch_index = program_index.expand(len(z)), pitch_index.expand(len(z))
    if len(program_index) != len(z):
        raise BadInputError(f"{len(program_index)} conditions for {len(z)} latent vectors")
    device = next(generator.parameters()).device
    x = generator.eval()(z.to(device), program_index.to(device), pitch_index.to(device))
    return denormalise(x.float().cpu().numpy(), config)


CLASSES = {name: (Generator, GanConfig) for name in ("gan", "recording-gan")}


def load_pretrained(name: str = "gan", path=None) -> tuple[Generator, dict]:
    """Load the generator of ``gan`` (chapter 3) or ``recording-gan`` (chapter 14): the shipped
    full-mode weights (``musiclab/checkpoints/NAME.safetensors``) or your own trained ones at
    ``path``, checked by `weights.load_weights`. Returns ``(generator in eval mode, sidecar)``.

    Chapter: notebooks/03_gan.ipynb
    """
    return weights.load_family(name, CLASSES, path)
