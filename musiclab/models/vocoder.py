"""A mel vocoder with an inverse-STFT head (Vocos, Siuzdak 2023): log-mel frames in, audio out.

Griffin-Lim guesses a phase that is consistent with the magnitudes by alternating projections; the
vocoder *predicts* each frame's complex spectrum, magnitude and phase, from the log-mel frames around
it, and one inverse STFT turns those into audio. Since its frames are the STFT's own frames (same
``n_fft`` and ``hop_length`` as the mel), the network works at the frame rate, not the sample rate,
which is what makes it fast on a CPU.

- `Vocoder`: a 1-D convolution over the log-mel frames, a stack of ConvNeXt blocks (depthwise
  convolution in time, layer norm, a pointwise MLP, a learned per-channel scale, residual), and a
  linear head to ``n_fft + 2`` numbers per frame: the log-magnitude of every bin and how far its
  phase advances from the previous frame (its instantaneous frequency, as in GANSynth); the phase is
  their running sum over frames. A steady partial of frequency f advances by 2 pi f hop / sr per
  frame whatever the time: a convolution over a steady input can output that constant, but not the
  absolute phase, which grows with time (predicting it directly, as Vocos does, leaves the network
  to find the growth in the context).
- `spectrum_to_audio`: magnitude and phase -> complex spectrum -> inverse STFT (Hann window,
  centred frames); on the STFT of a signal it gives the signal back exactly.

The book's log-mel settings (16 kHz, ``n_fft`` 1024, ``hop_length`` 256, 80 Slaney bands of
magnitudes, natural log floored at ``audio.LOG_FLOOR``: the GAN's and the CycleGAN's; the timbre VAE
uses 64 bands) are the defaults of `VocoderConfig`. Trained with `losses.multiscale_spectral_loss` by
`musiclab.recipes.synthesis.train_vocoder`.

Chapter: notebooks/10_neural_synthesis.ipynb
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import audio, weights
from ..errors import BadInputError

MAX_LOG_MAGNITUDE = 7.0  # exp(7) = 1097: above any bin of a full-scale signal (a sine peaks at n_fft / 4 = 256)


@dataclass
class VocoderConfig:
    sr: int = audio.DEFAULT_SR
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = None
    dim: int = 128
    n_blocks: int = 6
    kernel_size: int = 7
    expansion: int = 3
    # log-mel (natural log) -> about [-1, 1] inside the network: (log_mel - center) / scale
    log_center: float = -5.0
    log_scale: float = 4.0


def spectrum_to_audio(magnitude: torch.Tensor, phase: torch.Tensor, n_fft: int, hop_length: int,
                      length: int | None = None) -> torch.Tensor:
    """The inverse-STFT head: ``S = magnitude * exp(i phase)``, then the inverse STFT (Hann window,
    centred frames, overlap-add divided by the summed squared window).

    Parameters
    ----------
    magnitude, phase : Tensor [shape=(B, 1 + n_fft // 2, T)]
    length : int, optional; default ``hop_length * (T - 1)``

    Returns
    -------
    y : Tensor [shape=(B, length)]

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    spectrum = torch.polar(magnitude, phase)
    window = torch.hann_window(n_fft, device=magnitude.device, dtype=magnitude.dtype)
    return torch.istft(spectrum, n_fft, hop_length, window=window, center=True,
                       length=length if length is not None else hop_length * (magnitude.shape[-1] - 1))


class ConvNeXtBlock(nn.Module):
    """``x + gamma * W2 GELU(W1 LayerNorm(depthwise_conv(x)))`` on [shape=(B, dim, T)]."""

    def __init__(self, dim: int, kernel_size: int, expansion: int, layer_scale: float):
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, expansion * dim), nn.GELU(), nn.Linear(expansion * dim, dim))
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.depthwise(x).transpose(1, 2))
        return x + (self.gamma * self.mlp(h)).transpose(1, 2)


class Vocoder(nn.Module):
    """Log-mel [shape=(B, n_mels, T)] in nats -> ``y`` [shape=(B, hop_length * (T - 1))], the length
    of the audio whose centred STFT has T frames.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """

    def __init__(self, config: VocoderConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Conv1d(c.n_mels, c.dim, c.kernel_size, padding=c.kernel_size // 2)
        self.norm = nn.LayerNorm(c.dim)
        self.blocks = nn.ModuleList(ConvNeXtBlock(c.dim, c.kernel_size, c.expansion, 1.0 / c.n_blocks)
                                    for _ in range(c.n_blocks))
        self.final_norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.n_fft + 2)

    def spectrum(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(magnitude, phase)`` [shape=(B, 1 + n_fft // 2, T)] predicted for every frame."""
        c = self.config
        x = self.embed((log_mel - c.log_center) / c.log_scale)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        log_magnitude, phase_advance = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2).chunk(2, dim=1)
        return torch.exp(log_magnitude.clamp(max=MAX_LOG_MAGNITUDE)), torch.cumsum(phase_advance, dim=-1)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        magnitude, phase = self.spectrum(log_mel)
        return spectrum_to_audio(magnitude, phase, self.config.n_fft, self.config.hop_length)


def log_mel(y, config: VocoderConfig) -> np.ndarray:
    """`audio.log_mel` with the vocoder's settings: [shape=(..., n_mels, 1 + n // hop_length)].

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    return audio.log_mel(y, config.sr, n_fft=config.n_fft, hop_length=config.hop_length, n_mels=config.n_mels,
                         fmin=config.fmin, fmax=config.fmax)


def check_log_mel(log_mel_spec, config: VocoderConfig, name: str = "log_mel") -> torch.Tensor:
    """``log_mel_spec`` [shape=(n_mels, T)] or [shape=(B, n_mels, T)] as a float32 tensor [shape=(B,
    n_mels, T)], or ``BadInputError``: another number of bands, fewer than 2 frames (no audio between
    them), NaN or infinite values, or silence (every value at the floor ``log(audio.LOG_FLOOR)``).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    x = torch.as_tensor(log_mel_spec, dtype=torch.float32)
    x = x[None] if x.ndim == 2 else x
    if x.ndim != 3 or x.shape[1] != config.n_mels or x.shape[2] < 2:
        raise BadInputError(f"{name}: expected a log-mel [shape=({config.n_mels}, T)] with T >= 2 frames, "
                            f"got {tuple(np.shape(log_mel_spec))}")
    if not torch.isfinite(x).all():
        raise BadInputError(f"{name}: contains NaN or infinite values")
    if (x.amax(dim=(1, 2)) <= np.log(audio.LOG_FLOOR) + 1e-3).any():
        raise BadInputError(f"{name}: silent (every band at the floor log({audio.LOG_FLOOR:g})); nothing to play")
    return x


@torch.no_grad()
def log_mel_to_audio(model: Vocoder, log_mel_spec) -> np.ndarray:
    """Audio from a log-mel of the vocoder's settings, checked by `check_log_mel`: ``y``
    [shape=(hop_length * (T - 1),)] (or [shape=(B, ...)] for a batch), float32. The same mel through
    `audio.mel_to_audio` gives Griffin-Lim's answer.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    x = check_log_mel(log_mel_spec, model.config)
    y = model(x.to(next(model.parameters()).device)).cpu().numpy()
    return y[0] if np.ndim(log_mel_spec) == 2 else y


CLASSES = {"vocoder": (Vocoder, VocoderConfig)}


def load_pretrained(name: str = "vocoder", path=None) -> tuple[Vocoder, dict]:
    """Load the vocoder: the shipped weights (``musiclab/checkpoints/vocoder.safetensors``, when
    trained) or your own at ``path``, checked by `weights.load_weights`. Returns ``(model in eval
    mode, sidecar)``.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    return weights.load_family(name, CLASSES, path)


# The book's way back to sound -------------------------------------------------------------------------

METHODS = ("vocoder", "griffin-lim", "pseudo-inverse")


@functools.lru_cache(maxsize=1)
def shipped_vocoder() -> Vocoder:
    """The shipped vocoder (`load_pretrained`), loaded once per process and kept.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    return load_pretrained("vocoder")[0]


def convert_mel_bands(log_mel_spec, sr: int, fmin: float, fmax: float | None, config: VocoderConfig) -> np.ndarray:
    """A log-mel of other Slaney mel bands (another ``n_mels``, ``fmin`` or ``fmax``) as the log-mel
    of ``config``'s bands: each band's value is read off the source's log-mel, interpolated linearly
    between band centres on the mel scale. The bands of `audio.log_mel` are Slaney-normalised (each
    triangle divided by its width), so a band holds a weighted mean magnitude whatever its width,
    and wide and narrow bands over the same partial agree. Bands outside the source's ``[fmin, fmax]`` are silent (floor
    ``audio.LOG_FLOOR``); bands narrower than the source's come out blurred, as no conversion can
    add the detail the source pooled away.

    Parameters
    ----------
    log_mel_spec : array [shape=(..., n_mels_in, T)], natural log, at ``sr``

    Returns
    -------
    log_mel : ndarray [shape=(..., config.n_mels, T)], float32

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    x = np.asarray(log_mel_spec, dtype=np.float32)
    weights, outside = _mel_interpolation(x.shape[-2], fmin, fmax or sr / 2, config.n_mels, config.fmin,
                                          config.fmax or config.sr / 2)
    converted = np.einsum("om,...mt->...ot", weights, x)
    converted[..., outside, :] = np.log(audio.LOG_FLOOR)
    return converted.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _mel_interpolation(n_mels, fmin, fmax, n_mels_out, fmin_out, fmax_out) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    centres = librosa.hz_to_mel(librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax))[1:-1]
    edges_out = librosa.mel_frequencies(n_mels_out + 2, fmin=fmin_out, fmax=fmax_out)
    centres_out = librosa.hz_to_mel(edges_out)[1:-1]
    # column j: how much of source band j each output band takes (np.interp of the j-th unit vector)
    weights = np.stack([np.interp(centres_out, centres, unit) for unit in np.eye(n_mels)], axis=1)
    outside = (edges_out[2:] <= fmin) | (edges_out[:-2] >= fmax)
    return weights.astype(np.float32), outside


def to_audio(log_mel_spec, sr: int, n_fft: int = 1024, hop_length: int = 256, fmin: float = 0.0,
             fmax: float | None = None, method: str = "vocoder", n_iter: int = 32) -> np.ndarray:
    """Play a log-mel: the one way back to sound of every chapter, by one of three ``method``s.

    - ``"vocoder"`` (default): the shipped vocoder (`shipped_vocoder`), which predicts each frame's
      magnitude and phase. It serves its own ``sr``, ``n_fft`` and ``hop_length`` (16 kHz, 1024,
      256: its frames are the STFT's); mel bands of other settings (the timbre VAE's 64) are
      converted to its own by `convert_mel_bands` first.
    - ``"griffin-lim"``: magnitudes from the mel by non-negative least squares, then ``n_iter``
      iterations of fast Griffin-Lim (`audio.mel_to_audio`, ``inverse="nnls"``); any settings.
    - ``"pseudo-inverse"``: the same with the filterbank's pseudo-inverse clipped at zero
      (``inverse="pinv"``), about three times faster; any settings.

    Parameters
    ----------
    log_mel_spec : array [shape=(..., n_mels, T)], natural log, ``T >= 2``
    sr, n_fft, hop_length, fmin, fmax : the settings the log-mel was made with (`audio.log_mel`)

    Returns
    -------
    y : ndarray [shape=(..., hop_length * (T - 1))], float32

    Raises ``BadInputError`` for an unknown ``method``, a log-mel of the wrong shape, with NaN or
    infinite values, or (vocoder) silent or of settings the vocoder cannot serve.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    if method not in METHODS:
        raise BadInputError(f"method={method!r}: expected one of {', '.join(repr(m) for m in METHODS)}")
    x = np.asarray(log_mel_spec, dtype=np.float32)
    if x.ndim < 2 or x.shape[-1] < 2:
        raise BadInputError(f"log_mel: expected a log-mel [shape=(..., n_mels, T)] with T >= 2 frames, got {x.shape}")
    if not np.isfinite(x).all():
        raise BadInputError("log_mel: contains NaN or infinite values")
    if method != "vocoder":
        return audio.mel_to_audio(x, sr, n_fft=n_fft, hop_length=hop_length, fmin=fmin, fmax=fmax, n_iter=n_iter,
                                  inverse="nnls" if method == "griffin-lim" else "pinv")
    model = shipped_vocoder()
    c = model.config
    if (sr, n_fft, hop_length) != (c.sr, c.n_fft, c.hop_length):
        raise BadInputError(f"log_mel at sr={sr}, n_fft={n_fft}, hop_length={hop_length}: the vocoder plays "
                            f"sr={c.sr}, n_fft={c.n_fft}, hop_length={c.hop_length}; use method='griffin-lim'")
    if (x.shape[-2], fmin, fmax or sr / 2) != (c.n_mels, c.fmin, c.fmax or c.sr / 2):
        x = convert_mel_bands(x, sr, fmin, fmax, c)
    y = log_mel_to_audio(model, x.reshape(-1, *x.shape[-2:]))
    return y.reshape(*x.shape[:-2], y.shape[-1])
