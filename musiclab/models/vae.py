"""Variational autoencoders: a MusicVAE-style melody VAE and a spectrogram (timbre) VAE.

- `MelodyVAE`: 2-bar slices of the event grid (32 tokens) -> bidirectional GRU encoder ->
  q(z|x) = N(mu, diag sigma^2) -> autoregressive GRU decoder that sees z at every step (its initial
  state is a function of z, and z is concatenated to each input token).
- `TimbreVAE`: one-shot SoundFont notes as log-mel spectrograms -> MLP encoder -> z -> MLP decoder
  giving the mean of a fixed-variance Gaussian over the (normalised) log-mel.

Both return tensors, never a loss; the ELBO pieces are in `musiclab.losses` (VAE section), the
step functions and recipes in `musiclab.recipes.vae` (``vae_melody_step``, ``train_vae_melody``, ...).

Chapter: notebooks/06_vae.ipynb
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import audio, symbolic, weights
from ..errors import BadInputError
from . import vocoder


# Melody VAE -----------------------------------------------------------------------------------------


@dataclass
class MelodyVaeConfig:
    vocab_size: int = symbolic.VOCAB_SIZE
    seq_len: int = 32
    embed_dim: int = 32
    encoder_dim: int = 128  # per direction
    decoder_dim: int = 256
    z_dim: int = 64


class MelodyVAE(nn.Module):
    """MusicVAE-style ("flat", one decoder level) VAE of 2-bar melodies.

    The decoder input at step t is [embedding of x_{t-1}; z], with x_0 a start token (index
    ``vocab_size``); its initial hidden state is tanh(W z + b). During training, *word dropout*
    replaces a random share of the previous tokens by a "missing" token (index ``vocab_size + 1``),
    so that the decoder must take what it needs from z rather than from the true past it will not
    have when it decodes on its own (Bowman et al. 2016).
    """

    def __init__(self, config: MelodyVaeConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size + 2, c.embed_dim)  # + start and missing tokens
        self.encoder = nn.GRU(c.embed_dim, c.encoder_dim, batch_first=True, bidirectional=True)
        self.to_posterior = nn.Linear(2 * c.encoder_dim, 2 * c.z_dim)
        self.z_to_state = nn.Linear(c.z_dim, c.decoder_dim)
        self.decoder = nn.GRU(c.embed_dim + c.z_dim, c.decoder_dim, batch_first=True)
        self.to_logits = nn.Linear(c.decoder_dim, c.vocab_size)

    @property
    def start_token(self) -> int:
        return self.config.vocab_size

    def _check(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = torch.as_tensor(tokens)
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.ndim != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise BadInputError(f"tokens: expected integer tokens [shape=(B, T)], got {tuple(tokens.shape)} "
                                f"{tokens.dtype}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.config.vocab_size):
            raise BadInputError(f"tokens: values must lie in [0, {self.config.vocab_size}), got "
                                f"{int(tokens.min())}..{int(tokens.max())}")
        return tokens.long()

    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [shape=(B, T)] -> (mu, logvar), each [shape=(B, z_dim)]."""
        tokens = self._check(tokens).to(self.embed.weight.device)
        _, h = self.encoder(self.embed(tokens))  # h [shape=(2, B, encoder_dim)]: both final states
        mu, logvar = self.to_posterior(torch.cat([h[0], h[1]], dim=-1)).chunk(2, dim=-1)
        return mu, logvar

    def decode_teacher_forced(self, z: torch.Tensor, tokens: torch.Tensor, word_dropout: float = 0.0) -> torch.Tensor:
        """Logits [shape=(B, vocab_size, T)] of each token given z and the *true* previous tokens
        (a share ``word_dropout`` of them replaced by the missing token)."""
        tokens = self._check(tokens).to(z.device)
        previous = torch.cat([torch.full_like(tokens[:, :1], self.start_token), tokens[:, :-1]], dim=1)
        if word_dropout > 0:
            drop = torch.rand(previous.shape, device=z.device) < word_dropout
            previous = previous.masked_fill(drop, self.config.vocab_size + 1)
        inputs = torch.cat([self.embed(previous), z[:, None].expand(-1, tokens.shape[1], -1)], dim=-1)
        h0 = torch.tanh(self.z_to_state(z))[None]
        out, _ = self.decoder(inputs, h0)
        return self.to_logits(out).transpose(1, 2)

    def forward(self, tokens: torch.Tensor, sample: bool = True, word_dropout: float = 0.0):
        """Teacher-forced pass: returns ``(logits [B, V, T], mu, logvar, z)``; z = mu + sigma * eps
        (the reparameterisation) when ``sample``, else z = mu."""
        mu, logvar = self.encode(tokens)
        z = reparameterize(mu, logvar) if sample else mu
        return self.decode_teacher_forced(z, tokens, word_dropout), mu, logvar, z

    @torch.no_grad()
    def decode(self, z: torch.Tensor, temperature: float = 0.0, n_steps: int | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode with the model's own outputs fed back: greedy (``temperature=0``) or sampled.

        z [shape=(B, z_dim)] -> tokens LongTensor [shape=(B, n_steps)].
        """
        if temperature < 0:
            raise BadInputError(f"temperature={temperature}: must be >= 0 (0 = greedy)")
        z = torch.as_tensor(z, dtype=torch.float32, device=self.embed.weight.device)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.config.z_dim:
            raise BadInputError(f"z: expected shape (B, {self.config.z_dim}), got {tuple(z.shape)}")
        n_steps = n_steps or self.config.seq_len
        h = torch.tanh(self.z_to_state(z))[None]
        token = torch.full((len(z),), self.start_token, dtype=torch.long, device=z.device)
        out = []
        for _ in range(n_steps):
            step_out, h = self.decoder(torch.cat([self.embed(token), z], dim=-1)[:, None], h)
            logits = self.to_logits(step_out[:, 0])
            if temperature == 0:
                token = logits.argmax(-1)
            else:
                probs = torch.softmax(logits.float() / temperature, dim=-1)
                token = torch.multinomial(probs, 1, generator=generator)[:, 0]
            out.append(token)
        return torch.stack(out, dim=1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): a sample of N(mu, sigma^2) that is differentiable in mu, sigma."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


@torch.no_grad()
def reconstruction_accuracy(model: MelodyVAE, tokens: torch.Tensor, batch_size: int = 2048) -> dict:
    """Held-out reconstruction from the posterior mean z = mu(x).

    Returns token accuracies (fractions in [0, 1]) with teacher forcing and with greedy decoding
    (the decoder's own outputs fed back, as when generating), each over all tokens and over the
    note-on tokens only (where a new note starts, token >= 2), plus the always-hold baseline's.
    """
    tokens = model._check(tokens)
    device = next(model.parameters()).device
    sums = {"teacher_forced": 0, "greedy": 0, "teacher_forced_note_on": 0, "greedy_note_on": 0,
            "always_hold": 0}
    n_tokens, n_onsets = 0, 0
    for i in range(0, len(tokens), batch_size):
        x = tokens[i:i + batch_size].to(device)
        mu, _ = model.encode(x)
        forced = model.decode_teacher_forced(mu, x).argmax(1)
        greedy = model.decode(mu, n_steps=x.shape[1])
        onset = x >= symbolic.HOLD + 1
        sums["teacher_forced"] += (forced == x).sum().item()
        sums["greedy"] += (greedy == x).sum().item()
        sums["teacher_forced_note_on"] += (forced == x)[onset].sum().item()
        sums["greedy_note_on"] += (greedy == x)[onset].sum().item()
        sums["always_hold"] += (x == symbolic.HOLD).sum().item()
        n_tokens += x.numel()
        n_onsets += onset.sum().item()
    result = {k: v / (n_onsets if k.endswith("note_on") else n_tokens) for k, v in sums.items()}
    result["n_slices"] = len(tokens)
    return result


@torch.no_grad()
def posterior_statistics(model: MelodyVAE, tokens: torch.Tensor, threshold: float = 0.01,
                         batch_size: int = 2048) -> dict:
    """KL per latent dimension (nats, averaged over the data) and the *active units*.

    A unit is active when Cov_x(E_q[z_d | x]) > ``threshold`` (Burda et al. 2016): its posterior mean
    moves with the input. An inactive unit carries no information about x (posterior collapse).
    Returns ``{"kl_per_dim": ndarray [z_dim], "mean_variance": ndarray [z_dim], "active_units": int}``.
    """
    from .. import losses

    mus, kls = [], []
    tokens = torch.as_tensor(tokens)
    for i in range(0, len(tokens), batch_size):
        mu, logvar = model.encode(tokens[i:i + batch_size])
        mus.append(mu.cpu())
        kls.append(losses.gaussian_kl_per_dim(mu, logvar).cpu())
    mu, kl = torch.cat(mus), torch.cat(kls)
    variance = mu.var(0).numpy()
    return {"kl_per_dim": kl.mean(0).numpy(), "mean_variance": variance,
            "active_units": int((variance > threshold).sum())}


def interpolate(z_a: torch.Tensor, z_b: torch.Tensor, n: int, spherical: bool = True) -> torch.Tensor:
    """``n`` points from z_a to z_b [shape=(z_dim,)] -> [shape=(n, z_dim)].

    ``spherical`` (slerp) keeps the norm near that of typical N(0, I) samples, where the decoder
    was trained; a straight line between two typical points passes through the less typical middle.
    """
    if n < 2:
        raise BadInputError(f"n={n}: an interpolation needs at least 2 points")
    t = torch.linspace(0, 1, n)[:, None]
    z_a, z_b = torch.as_tensor(z_a).float(), torch.as_tensor(z_b).float()
    if not spherical:
        return (1 - t) * z_a + t * z_b
    cos = (z_a @ z_b / (z_a.norm() * z_b.norm()).clamp_min(1e-8)).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:
        return (1 - t) * z_a + t * z_b
    return (torch.sin((1 - t) * omega) * z_a + torch.sin(t * omega) * z_b) / torch.sin(omega)



# Timbre VAE ------------------------------------------------------------------------------------------

TIMBRE_PROGRAMS = (0, 6, 19, 24, 40, 56, 71, 73)  # piano, harpsichord, organ, guitar, violin, trumpet, clarinet, flute


@dataclass
class TimbreVaeConfig:
    n_mels: int = 64
    n_frames: int = 32
    hidden_dim: int = 256
    z_dim: int = 8
    sr: int = audio.DEFAULT_SR
    n_fft: int = 1024
    hop_length: int = 256
    # log-mel (natural log) -> roughly [-1, 1]: (log_mel - center) / scale, clipped to [-1.5, 1.5]
    log_center: float = -5.0
    log_scale: float = 6.0


class TimbreVAE(nn.Module):
    """MLP VAE of normalised log-mel spectrograms [shape=(B, n_mels, n_frames)].

    Decoder: p(x|z) = N(x; decoder(z), sigma^2 I) with sigma fixed (the recipe's ``sigma``), so the
    reconstruction term is a scaled squared error.
    """

    def __init__(self, config: TimbreVaeConfig):
        super().__init__()
        self.config = config
        d, h = config.n_mels * config.n_frames, config.hidden_dim
        self.encoder = nn.Sequential(nn.Linear(d, h), nn.SiLU(), nn.Linear(h, h // 2), nn.SiLU(),
                                     nn.Linear(h // 2, 2 * config.z_dim))
        self.decoder = nn.Sequential(nn.Linear(config.z_dim, h // 2), nn.SiLU(), nn.Linear(h // 2, h), nn.SiLU(),
                                     nn.Linear(h, d))

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32)
        shape = (self.config.n_mels, self.config.n_frames)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or tuple(x.shape[1:]) != shape:
            raise BadInputError(f"x: expected log-mels [shape=(B, {shape[0]}, {shape[1]})], got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise BadInputError("x: contains NaN or inf")
        return x.to(next(self.parameters()).device)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(self._check(x).flatten(1)).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        z = torch.as_tensor(z, dtype=torch.float32, device=next(self.parameters()).device)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.config.z_dim:
            raise BadInputError(f"z: expected shape (B, {self.config.z_dim}), got {tuple(z.shape)}")
        return self.decoder(z).view(len(z), self.config.n_mels, self.config.n_frames)

    def forward(self, x: torch.Tensor, sample: bool = True):
        """Returns ``(x_mean [B, n_mels, n_frames], mu, logvar, z)``."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar) if sample else mu
        return self.decode(z), mu, logvar, z


def timbre_log_mel(y: np.ndarray, config: TimbreVaeConfig) -> np.ndarray:
    """Audio [shape=(N, n)] -> normalised log-mel [shape=(N, n_mels, n_frames)] (cropped or padded)."""
    spec = audio.log_mel(np.asarray(y), sr=config.sr, n_fft=config.n_fft, hop_length=config.hop_length,
                         n_mels=config.n_mels)
    spec = spec[..., :config.n_frames]
    if spec.shape[-1] < config.n_frames:
        pad = [(0, 0)] * (spec.ndim - 1) + [(0, config.n_frames - spec.shape[-1])]
        spec = np.pad(spec, pad, constant_values=spec.min())
    return np.clip((spec - config.log_center) / config.log_scale, -1.5, 1.5).astype(np.float32)


def timbre_to_audio(x: np.ndarray, config: TimbreVaeConfig, method: str = "vocoder", n_iter: int = 16) -> np.ndarray:
    """A normalised log-mel [shape=(n_mels, n_frames)] -> audio by `vocoder.to_audio`: the neural
    vocoder, after its `vocoder.convert_mel_bands` from these 64 bands to its own 80, by default;
    ``method="pseudo-inverse"`` with ``n_iter`` iterations is Griffin-Lim.
    """
    log_mel_spec = np.asarray(x, dtype=np.float32) * config.log_scale + config.log_center
    return vocoder.to_audio(log_mel_spec, config.sr, n_fft=config.n_fft, hop_length=config.hop_length,
                            method=method, n_iter=n_iter)


def timbre_note_set(config: TimbreVaeConfig, programs=TIMBRE_PROGRAMS, pitches=range(48, 85),
                    velocities=(60, 90, 120)) -> dict:
    """One-shot notes of ``programs`` x ``pitches`` x ``velocities`` as normalised log-mels.

    Returns the dict of `audio.one_shot_note_set` plus ``x`` [shape=(N, n_mels, n_frames)].
    """
    duration_s = (config.n_frames - 1) * config.hop_length / config.sr
    notes = audio.one_shot_note_set(programs, list(pitches), velocities, duration_s=duration_s * 0.7,
                                    release_s=duration_s * 0.3, sr=config.sr, drop_silent=True)
    notes["x"] = timbre_log_mel(notes["y"], config)
    return notes


def knn_accuracy(train_z: np.ndarray, train_labels: np.ndarray, test_z: np.ndarray, test_labels: np.ndarray,
                 k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour vote (Euclidean) from ``train_z`` labels to ``test_z``."""
    train_z, test_z = np.asarray(train_z, dtype=np.float64), np.asarray(test_z, dtype=np.float64)
    if not len(train_z) or not len(test_z):
        raise BadInputError("knn_accuracy: empty train or test set")
    distances = ((test_z[:, None] - train_z[None]) ** 2).sum(-1)
    nearest = np.argsort(distances, axis=1)[:, :k]
    votes = np.asarray(train_labels)[nearest]
    predicted = np.array([np.bincount(v).argmax() for v in votes])
    return float((predicted == np.asarray(test_labels)).mean())


# Shipped weights ---------------------------------------------------------------------------------

CLASSES = {"vae-melody": (MelodyVAE, MelodyVaeConfig), "vae-timbre": (TimbreVAE, TimbreVaeConfig)}


def load_pretrained(name: str = "vae-melody", path=None) -> tuple[MelodyVAE | TimbreVAE, dict]:
    """Load ``vae-melody`` or ``vae-timbre``: the shipped full-mode weights
    (``musiclab/checkpoints/NAME.safetensors``) or your own trained ones at ``path``, checked by
    `weights.load_weights`. Returns ``(model in eval mode, sidecar)``.

    Chapter: notebooks/06_vae.ipynb
    """
    return weights.load_family(name, CLASSES, path)
