"""Differentiable digital signal processing (DDSP, Engel et al. 2020): a network that *plays* a
synthesiser instead of writing samples.

- `harmonic_synth`: a bank of sinusoids at the multiples k f0 of the fundamental, each with its own
  amplitude; a harmonic at or above the Nyquist frequency sr/2 is silenced, sample by sample, so the
  bank never aliases.
- `filtered_noise`: white noise shaped, frame by frame, by a linear-phase FIR filter designed by
  frequency sampling from ``n_noise_bands`` magnitudes (the breath of a flute, the bow of a violin).
- `DDSP`: a small decoder (MLP, GRU, MLP) maps the frame-wise controls ``f0_hz`` and ``loudness_db``
  to an overall amplitude, a harmonic distribution and noise magnitudes, and plays both
  synthesisers. Trained per instrument with `losses.multiscale_spectral_loss` on a few minutes of
  audio: the synthesiser already knows what a periodic sound is, the network only learns the
  instrument's spectral envelope and how it moves with pitch and loudness.

Control frames are ``hop_length`` samples apart; frame ``t`` belongs to sample ``t * hop_length``
(centred frames, as `audio.a_weighted_loudness_db` and `audio.notes_to_f0_hz` compute them), and
``T`` frames play ``T * hop_length`` samples. The recipe is `musiclab.recipes.synthesis.train_ddsp`.

Chapter: notebooks/10_neural_synthesis.ipynb
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import audio, weights
from ..errors import BadInputError

INSTRUMENTS = {73: "flute", 71: "clarinet", 40: "violin"}  # General MIDI programs with shipped decoders


@dataclass
class DdspConfig:
    sr: int = audio.DEFAULT_SR
    hop_length: int = 128  # 8 ms control frames at 16 kHz
    loudness_n_fft: int = 1024
    n_harmonics: int = 40  # up to 7.8 kHz at G3 (196 Hz), about the lowest note of the folk tunes
    n_noise_bands: int = 65  # FIR filters of 2 * (65 - 1) = 128 taps
    hidden: int = 128
    instrument: str = "clarinet"  # what it learned: a General MIDI instrument, or "recording" (yours)
    # mean loudness of the training audio's voiced frames: a melody played by another instrument is
    # shifted to it before it drives this decoder (timbre transfer with the source's dynamics)
    mean_loudness_db: float = -30.0
    articulation_hidden: int = 64


def instrument_name(program: int | None) -> str:
    """What a decoder learned: ``clarinet`` for General MIDI program 71 (the names of `INSTRUMENTS`),
    ``program-N`` for another program, ``recording`` for None (your recordings). Its checkpoint is
    ``ddsp-NAME``.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    return "recording" if program is None else INSTRUMENTS.get(program, f"program-{program}")


# Synthesisers -------------------------------------------------------------------------------------------


def upsample_frames(x: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Frame-wise controls [shape=(..., T)] -> sample-wise [shape=(..., T * hop_length)], linearly
    interpolated between frame centres (sample ``t * hop_length`` takes frame ``t`` exactly); the
    last frame is held.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    shape, n = x.shape, x.shape[-1] * hop_length
    padded = torch.cat([x, x[..., -1:]], dim=-1).reshape(-1, 1, shape[-1] + 1)
    return F.interpolate(padded, size=n + 1, mode="linear", align_corners=True)[..., :n].reshape(*shape[:-1], n)


def harmonic_synth(f0_hz: torch.Tensor, harmonic_amplitudes: torch.Tensor, sr: int, hop_length: int) -> torch.Tensor:
    """A bank of harmonic oscillators: ``y[n] = sum_k a_k[n] sin(k phi[n])`` with
    ``phi[n] = 2 pi sum_{m<n} f0[m] / sr`` (so ``phi[0] = 0``); ``f0`` and ``a_k`` are the frame
    values linearly interpolated (`upsample_frames`).

    A harmonic at or above the Nyquist frequency would fold back (alias) to a frequency the
    instrument does not have, so ``a_k`` is set to 0 at every frame where ``k f0 >= sr / 2`` in that
    frame or a neighbouring one: between two frames f0 moves linearly from one to the other, so
    ``k f0[n] < sr / 2`` holds at every sample where ``a_k[n] > 0``.

    Parameters
    ----------
    f0_hz : Tensor [shape=(B, T)], frame-wise fundamental frequency in Hz
    harmonic_amplitudes : Tensor [shape=(B, T, K)], frame-wise amplitude of harmonics 1..K

    Returns
    -------
    y : Tensor [shape=(B, T * hop_length)]

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    neighbourhood_max = F.max_pool1d(f0_hz[:, None], 3, stride=1, padding=1)[:, 0]
    k = torch.arange(1, harmonic_amplitudes.shape[-1] + 1, device=f0_hz.device, dtype=f0_hz.dtype)
    audible = k[:, None] * neighbourhood_max[:, None] < sr / 2  # [shape=(B, K, T)]
    amplitudes = upsample_frames(harmonic_amplitudes.transpose(1, 2) * audible, hop_length)
    f0 = upsample_frames(f0_hz, hop_length).double()
    # the phase accumulates over the whole clip: float64 keeps it exact, the fractional part then fits float32
    cycles = torch.cumsum(f0 / sr, dim=1) - f0 / sr
    cycles = (cycles - torch.floor(cycles)).to(f0_hz.dtype)
    return (amplitudes * torch.sin((2 * math.pi) * k[:, None] * cycles[:, None])).sum(1)


def noise_filters(noise_magnitudes: torch.Tensor) -> torch.Tensor:
    """Frequency sampling: per-frame magnitudes at ``F`` equally spaced frequencies from 0 to sr/2
    [shape=(B, T, F)] -> linear-phase FIR filters [shape=(B, T, 2 (F - 1))]: the zero-phase impulse
    response (inverse real FFT of the magnitudes), centred (a delay of F - 1 samples) and tapered by a
    Hann window (the window smooths the sampled response between the sampled frequencies).

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    impulse = torch.fft.irfft(noise_magnitudes.to(torch.complex64))
    n_taps = impulse.shape[-1]
    # the periodic Hann window is symmetric about n_taps / 2, where the roll puts the impulse's centre
    window = torch.hann_window(n_taps, periodic=True, device=impulse.device, dtype=impulse.dtype)
    return torch.roll(impulse, n_taps // 2, dims=-1) * window


def filtered_noise(noise_magnitudes: torch.Tensor, hop_length: int, rng: torch.Generator | None = None) -> torch.Tensor:
    """White noise in [-1, 1], each ``hop_length`` block filtered by its frame's `noise_filters` FIR
    (FFT convolution), the blocks overlap-added and the filters' delay of ``F - 1`` samples removed.

    Parameters
    ----------
    noise_magnitudes : Tensor [shape=(B, T, F)], non-negative
    rng : torch.Generator, optional; the noise's random numbers

    Returns
    -------
    y : Tensor [shape=(B, T * hop_length)]

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    filters = noise_filters(noise_magnitudes)
    batch, n_frames, n_taps = filters.shape
    noise = torch.rand(batch, n_frames, hop_length, generator=rng, device=filters.device) * 2 - 1
    n_out = hop_length + n_taps - 1
    n_fft = 1 << (n_out - 1).bit_length()
    blocks = torch.fft.irfft(torch.fft.rfft(noise, n_fft) * torch.fft.rfft(filters, n_fft), n_fft)[..., :n_out]
    length = (n_frames - 1) * hop_length + n_out
    summed = F.fold(blocks.transpose(1, 2), output_size=(1, length), kernel_size=(1, n_out), stride=(1, hop_length))
    delay = n_taps // 2
    return summed[:, 0, 0, delay:delay + n_frames * hop_length]


def exp_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """DDSP's positive output nonlinearity ``2 sigmoid(x)^ln 10 + 1e-7``: amplitudes spread over
    several decades (about -140 to +6 dB) with well-behaved gradients at both ends.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    return 2 * torch.sigmoid(x) ** math.log(10) + 1e-7


# Articulation: how the instrument shapes a note's loudness ------------------------------------------

N_NOTE_FEATURES = 5
NOTE_CLOCK_FRAMES = 50.0  # the note clocks count in units of 50 frames (0.4 s at 8 ms)


def note_features(spans, n_frames: int, hop_length: int) -> np.ndarray:
    """What a player knows about the note under each control frame, from note ``spans`` (rows
    ``(on_sample, off_sample, pitch, ...)``, `audio.note_spans` or `audio.detect_note_spans`):
    the latest note started at or before the frame gives its time since the onset (clipped to
    [0, 2] in units of ``NOTE_CLOCK_FRAMES``), its time until the release ([-1, 2]: negative once
    released), its MIDI pitch / 127, and two flags: the onset falls in this frame, the note is held.
    Frames before the first note read as long released.

    Returns ``features`` [shape=(n_frames, N_NOTE_FEATURES)] float32.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    centres = np.arange(n_frames) * hop_length
    since_on, until_off = np.full(n_frames, 1e9), np.full(n_frames, -1e9)
    pitch = np.zeros(n_frames)
    for on, off, note_pitch, *_ in sorted(np.asarray(spans, dtype=np.int64).tolist()):
        later = centres >= on
        since_on[later], until_off[later], pitch[later] = (centres[later] - on) / hop_length, \
            (off - centres[later]) / hop_length, note_pitch
    return np.stack([np.clip(since_on / NOTE_CLOCK_FRAMES, 0, 2), np.clip(until_off / NOTE_CLOCK_FRAMES, -1, 2),
                     pitch / 127, (since_on < 1).astype(float), (until_off > 0).astype(float)], axis=1).astype(np.float32)


class Articulation(nn.Module):
    """Note features [shape=(B, T, N_NOTE_FEATURES)] (`note_features`) -> the loudness in dB
    [shape=(B, T)] this instrument gives those notes: its attack, sustain and release. A
    bidirectional GRU, since a release depends on when the next note comes. Trained on the
    instrument's own recordings only (their notes and their A-weighted loudness), it lets timbre
    transfer keep a melody's notes but play them with this instrument's articulation.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """

    def __init__(self, config: DdspConfig):
        super().__init__()
        self.mean_loudness_db = config.mean_loudness_db
        self.gru = nn.GRU(N_NOTE_FEATURES, config.articulation_hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * config.articulation_hidden, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # about 30 dB per unit around the instrument's mean: the output layer starts near its mean loudness
        return self.out(self.gru(features)[0])[..., 0] * 30.0 + self.mean_loudness_db


# Decoder -----------------------------------------------------------------------------------------------


class DDSP(nn.Module):
    """Decoder and synthesisers: ``(f0_hz, loudness_db) -> y``.

    The inputs are scaled to about [0, 1] (MIDI pitch / 127, (loudness_db + 100) / 100), embedded by
    an MLP, read in order by a GRU (a note's timbre depends on how it got there: attack, decay), and
    an MLP of the GRU's state and the embedding gives per frame: the overall amplitude, the harmonic
    distribution (normalised over the harmonics below Nyquist) and the noise band magnitudes.
    ``articulation`` (`Articulation`) predicts the loudness this instrument would give a melody's notes.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """

    def __init__(self, config: DdspConfig):
        super().__init__()
        self.config = config
        h = config.hidden

        def mlp(n_in):
            return nn.Sequential(nn.Linear(n_in, h), nn.LayerNorm(h), nn.LeakyReLU(),
                                 nn.Linear(h, h), nn.LayerNorm(h), nn.LeakyReLU())

        self.embed = mlp(2)
        self.gru = nn.GRU(h, h, batch_first=True)
        self.head = mlp(2 * h)
        self.out = nn.Linear(h, 1 + config.n_harmonics + config.n_noise_bands)
        self.articulation = Articulation(config)

    def controls(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor) -> dict[str, torch.Tensor]:
        """The synthesisers' controls for ``f0_hz``, ``loudness_db`` [shape=(B, T)]: ``amplitude``
        [shape=(B, T)], ``harmonic_distribution`` [shape=(B, T, n_harmonics)] (sums to 1 over the
        harmonics below sr/2), ``noise_magnitudes`` [shape=(B, T, n_noise_bands)]."""
        c = self.config
        pitch = (12 * torch.log2(f0_hz.clamp_min(1.0) / 440.0) + 69) / 127
        features = torch.stack([pitch, (loudness_db + 100) / 100], dim=-1)
        h = self.embed(features)
        h = self.head(torch.cat([self.gru(h)[0], h], dim=-1))
        raw = self.out(h)
        amplitude = exp_sigmoid(raw[..., 0])
        k = torch.arange(1, c.n_harmonics + 1, device=f0_hz.device)
        distribution = exp_sigmoid(raw[..., 1:1 + c.n_harmonics]) * (k * f0_hz[..., None] < c.sr / 2)
        distribution = distribution / distribution.sum(-1, keepdim=True).clamp_min(1e-7)
        return {"amplitude": amplitude, "harmonic_distribution": distribution,
                "noise_magnitudes": exp_sigmoid(raw[..., 1 + c.n_harmonics:] - 5.0)}

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
        """``f0_hz``, ``loudness_db`` [shape=(B, T)] -> ``y`` [shape=(B, T * hop_length)]."""
        c = self.config
        controls = self.controls(f0_hz, loudness_db)
        harmonic_amplitudes = controls["amplitude"][..., None] * controls["harmonic_distribution"]
        return (harmonic_synth(f0_hz, harmonic_amplitudes, c.sr, c.hop_length)
                + filtered_noise(controls["noise_magnitudes"], c.hop_length, rng))


def check_controls(f0_hz, loudness_db, name: str = "controls") -> tuple[torch.Tensor, torch.Tensor]:
    """``f0_hz`` and ``loudness_db`` [shape=(T,)] or [shape=(B, T)] as float32 tensors [shape=(B, T)],
    or ``BadInputError``: different shapes, fewer than 2 frames, NaN or infinite values, f0 <= 0.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    f0 = torch.atleast_2d(torch.as_tensor(f0_hz, dtype=torch.float32))
    loud = torch.atleast_2d(torch.as_tensor(loudness_db, dtype=torch.float32))
    if f0.shape != loud.shape or f0.ndim != 2 or f0.shape[1] < 2:
        raise BadInputError(f"{name}: expected f0_hz and loudness_db of one shape (B, T) with T >= 2 frames, "
                            f"got {tuple(f0.shape)} and {tuple(loud.shape)}")
    if not (torch.isfinite(f0).all() and torch.isfinite(loud).all()):
        raise BadInputError(f"{name}: f0_hz or loudness_db contains NaN or infinite values")
    if not (f0 > 0).all():
        raise BadInputError(f"{name}: f0_hz must be > 0 Hz in every frame (hold the last pitch through rests)")
    return f0, loud


@torch.no_grad()
def synthesise(model: DDSP, f0_hz, loudness_db, seed: int = 0) -> np.ndarray:
    """Play controls [shape=(T,)] (or [shape=(B, T)]) through ``model``, checked by `check_controls`.
    Returns ``y`` [shape=(T * hop_length,)] (or [shape=(B, T * hop_length)]) float32; ``seed``
    fixes the noise.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    f0, loud = check_controls(f0_hz, loudness_db)
    device = next(model.parameters()).device
    rng = torch.Generator(device=device).manual_seed(seed)
    y = model(f0.to(device), loud.to(device), rng=rng).cpu().numpy()
    return y[0] if np.ndim(f0_hz) == 1 else y


# Shipped weights ---------------------------------------------------------------------------------------

CLASSES = {f"ddsp-{instrument_name(program)}": (DDSP, DdspConfig) for program in (*range(128), None)}


def load_pretrained(name: str = "ddsp-clarinet", path=None) -> tuple[DDSP, dict]:
    """Load a decoder: ``ddsp-flute``, ``ddsp-clarinet``, ``ddsp-violin`` (shipped weights, when
    trained) or ``ddsp-recording``, or your own trained ones at ``path``, checked by
    `weights.load_weights`. Returns ``(model in eval mode, sidecar)``.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    return weights.load_family(name, CLASSES, path)
