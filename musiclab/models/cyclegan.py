"""CycleGAN for music: two generators G: A -> B and F: B -> A trained on *unpaired* examples.

Both the audio (timbre) and the symbolic (melody) model are the same network over time:

- a sequence is ``x [shape=(B, C, T)]``: C channels per time step (mel bands of a log-mel frame, or
  the one-hot tokens of an event grid) over T steps;
- `Generator`: a 1-D fully convolutional residual network, so it translates sequences of any length;
  its output is added to its input (it learns the *change*, and the identity is easy to express);
- `Discriminator`: a 1-D PatchGAN, a stack of strided convolutions giving one score per patch of
  time steps, so it judges local texture, not whole pieces.

Timbre: log-mel frames of melodies rendered on instrument A (``program_a``) and B (``program_b``);
`encode_log_mel` / `decode_log_mel` map log-mel in nats (floored at ``FLOOR_DB``) to about [-1, 1].
Symbolic: 4-bar event grids (`symbolic`) as one-hot channels; the generator's output are logits, and a
straight-through one-hot (`hard_tokens`) is what the discriminator and the cycle see.

The losses are in `musiclab.losses` (style-transfer section); step functions and recipes in
`musiclab.recipes.cyclegan`.

Chapter: notebooks/09_style_transfer_gan.ipynb
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import audio, symbolic, weights
from ..errors import BadInputError
from . import vocoder

# Timbre representation: 16 kHz, 1024-point STFT, hop 256 (16 ms), 80 mel bands.
SR, N_FFT, HOP_LENGTH, N_MELS = audio.DEFAULT_SR, 1024, 256, 80
FLOOR_DB = -80.0  # quieter mel bands are clamped here: inaudible differences then do not count
TIMBRE_QPM = 120
_FLOOR = FLOOR_DB / 20 * np.log(10)  # in nats: log(1e-4) = -9.21
_CENTER, _SCALE = _FLOOR / 2, -_FLOOR / 2  # [floor, 0] nats -> [-1, 1]


@dataclass
class CycleGanConfig:
    n_channels: int = N_MELS  # mel bands, or symbolic.VOCAB_SIZE for event grids
    hidden: int = 96
    n_blocks: int = 4  # residual blocks, dilations 1, 2, 4, 8, ...: 4 blocks of kernel 3 see 33 steps
    kernel_size: int = 3
    disc_hidden: int = 64
    kind: str = "timbre"  # "timbre" (log-mel in, log-mel out) or "symbolic" (one-hot in, logits out)
    domain_a: str = "73"  # a General MIDI program (timbre) or a region (symbolic)
    domain_b: str = "71"


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv_1 = nn.Conv1d(channels, channels, kernel_size, padding=padding, dilation=dilation)
        self.conv_2 = nn.Conv1d(channels, channels, 1)

    def forward(self, h):
        return h + self.conv_2(F.leaky_relu(self.conv_1(F.leaky_relu(h, 0.2)), 0.2))


class Generator(nn.Module):
    """x [shape=(B, C, T)] -> x + s g(x) [shape=(B, C, T)] (timbre) or logits 5 x + s g(x) (symbolic).

    For symbolic grids the skip connection scales the one-hot input by ``skip_logit`` (5 nats), so that
    an untrained generator already copies its input with probability about 0.7 per step. The
    ``strength`` s (1 in training) scales the learned change: 0 gives the input back, values between
    interpolate, values above 1 exaggerate the change.
    """

    skip_logit = 5.0

    def __init__(self, config: CycleGanConfig):
        super().__init__()
        self.config = config
        self.input = nn.Conv1d(config.n_channels, config.hidden, config.kernel_size, padding=config.kernel_size // 2)
        self.blocks = nn.Sequential(*[_ResidualBlock(config.hidden, config.kernel_size, 2 ** i)
                                      for i in range(config.n_blocks)])
        self.output = nn.Conv1d(config.hidden, config.n_channels, 1)
        nn.init.zeros_(self.output.weight)  # start as the identity map (plus the skip)
        nn.init.zeros_(self.output.bias)

    def forward(self, x: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.config.n_channels:
            raise BadInputError(f"generator input: expected shape (batch, {self.config.n_channels}, time), "
                                f"got {tuple(x.shape)}")
        change = self.output(F.leaky_relu(self.blocks(self.input(x)), 0.2))
        skip = x * self.skip_logit if self.config.kind == "symbolic" else x
        return skip + strength * change


class Discriminator(nn.Module):
    """A 1-D PatchGAN: x [shape=(B, C, T)] -> scores [shape=(B, T // 4)], one per patch of time steps.

    Two stride-2 convolutions (spectral norm keeps it Lipschitz-bounded, Miyato et al. 2018) and a
    last convolutions: each score sees 26 input steps.
    """

    def __init__(self, config: CycleGanConfig):
        super().__init__()
        sn, h = nn.utils.parametrizations.spectral_norm, config.disc_hidden
        self.layers = nn.Sequential(
            sn(nn.Conv1d(config.n_channels, h, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            sn(nn.Conv1d(h, 2 * h, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            sn(nn.Conv1d(2 * h, 2 * h, 3, padding=1)), nn.LeakyReLU(0.2),
            sn(nn.Conv1d(2 * h, 1, 3, padding=1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(1)


class CycleGAN(nn.Module):
    """The two generators that are shipped: ``a_to_b`` (G) and ``b_to_a`` (F)."""

    def __init__(self, config: CycleGanConfig):
        super().__init__()
        self.config = config
        self.a_to_b, self.b_to_a = Generator(config), Generator(config)

    def generator(self, direction: str) -> Generator:
        """``"a_to_b"`` or ``"b_to_a"``."""
        if direction not in ("a_to_b", "b_to_a"):
            raise BadInputError(f"direction={direction!r}: expected 'a_to_b' or 'b_to_a'")
        return getattr(self, direction)


# Timbre data -----------------------------------------------------------------------------------------


def encode_log_mel(log_mel) -> np.ndarray:
    """log-mel in nats [shape=(..., n_mels, T)] -> the model's range: floor at FLOOR_DB, [floor, 0] -> [-1, 1]."""
    return ((np.maximum(np.asarray(log_mel, dtype=np.float32), _FLOOR) - _CENTER) / _SCALE).astype(np.float32)


def decode_log_mel(x) -> np.ndarray:
    """The model's range -> log-mel in nats (values below the floor are clamped to it)."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return np.maximum(x * _SCALE + _CENTER, _FLOOR).astype(np.float32)


def melody_log_mel(notes, program: int, max_quarters: float | None = None) -> np.ndarray:
    """Render ``notes`` on ``program`` at TIMBRE_QPM and return its log-mel in nats [shape=(N_MELS, T)].

    ``max_quarters`` keeps the notes that start before it (the rendering rings out 0.5 s after).
    """
    if max_quarters is not None:
        notes = [n for n in notes if n.start < max_quarters]
    y = audio.render_notes(notes, program=program, qpm=TIMBRE_QPM, sr=SR)
    return audio.log_mel(y, sr=SR, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS)


def log_mel_to_audio(log_mel, method: str = "vocoder", n_iter: int = 32) -> np.ndarray:
    """Back to audio at SR (16 kHz) from a log-mel of this module's settings by `vocoder.to_audio`
    (the neural vocoder; ``method`` and ``n_iter`` choose Griffin-Lim instead)."""
    return vocoder.to_audio(log_mel, SR, n_fft=N_FFT, hop_length=HOP_LENGTH, method=method, n_iter=n_iter)


@torch.no_grad()
def translate_log_mel(model: CycleGAN, log_mel, direction: str = "a_to_b", strength: float = 1.0) -> np.ndarray:
    """Translate a log-mel in nats [shape=(N_MELS, T)] with the timbre generator at ``strength``."""
    x = torch.from_numpy(encode_log_mel(log_mel))[None]
    return decode_log_mel(model.generator(direction)(x, strength).clamp(-1, 1)[0])


# Symbolic data ---------------------------------------------------------------------------------------


def grids_to_one_hot(grids) -> torch.Tensor:
    """Event grids [shape=(B, T)] (tokens) -> one-hot float [shape=(B, VOCAB_SIZE, T)]."""
    grids = torch.as_tensor(np.asarray(grids), dtype=torch.long)
    if grids.dim() != 2 or grids.numel() == 0 or grids.min() < 0 or grids.max() >= symbolic.VOCAB_SIZE:
        raise BadInputError(f"grids: expected a (batch, time) array of tokens in [0, {symbolic.VOCAB_SIZE}), "
                            f"got shape {tuple(grids.shape)}")
    return F.one_hot(grids, symbolic.VOCAB_SIZE).permute(0, 2, 1).float()


def hard_tokens(logits: torch.Tensor) -> torch.Tensor:
    """Straight-through one-hot: forward the argmax as one-hot, backward the softmax's gradient.

    logits [shape=(B, C, T)] -> [shape=(B, C, T)]; what the discriminator and the cycle see is always a
    real grid, so the discriminator cannot tell fakes by their softness (Bengio et al. 2013).
    """
    soft = logits.softmax(1)
    hard = F.one_hot(soft.argmax(1), soft.shape[1]).permute(0, 2, 1).to(soft.dtype)
    return hard + soft - soft.detach()


@torch.no_grad()
def translate_grids(model: CycleGAN, grids, direction: str = "a_to_b", strength: float = 1.0) -> np.ndarray:
    """Translate event grids [shape=(B, T)] with the symbolic generator at ``strength``; the most likely
    token per step, as tokens [shape=(B, T)]."""
    return model.generator(direction)(grids_to_one_hot(grids), strength).argmax(1).numpy()


CLASSES = {name: (CycleGAN, CycleGanConfig) for name in ("cyclegan-timbre", "cyclegan-symbolic")}


def load_pretrained(name: str = "cyclegan-timbre", path=None) -> tuple[CycleGAN, dict]:
    """Load ``cyclegan-timbre`` or ``cyclegan-symbolic``: the shipped weights
    (``musiclab/checkpoints/NAME.safetensors``) or your own trained ones at ``path``, checked by
    `weights.load_weights`. Returns ``(model in eval mode, sidecar)``.

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """
    return weights.load_family(name, CLASSES, path)
