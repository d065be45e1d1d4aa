"""A small convolutional autoencoder of log-mel spectrograms: the latent space of the diffusion model.

Chapter: notebooks/07_diffusion.ipynb
"""
from __future__ import annotations

from torch import nn


class NoteAutoencoder(nn.Module):
    """Normalised log-mel [shape=(B, n_mels, n_frames)] <-> latent [shape=(B, latent_channels, n_frames / 4)].

    1-D convolutions over time frames with the mel bands as channels (``n_frames`` divisible by 4).
    Two stride-2 convolutions over time down, two transposed ones up; deterministic (no KL term):
    the recipe standardises the latents instead, and trains the decoder on slightly noisy latents so
    that it tolerates a sampler's small errors.

    Chapter: notebooks/07_diffusion.ipynb
    """

    def __init__(self, n_mels: int = 80, width: int = 128, latent_channels: int = 16):
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            nn.Conv1d(n_mels, w, 3, padding=1), nn.GELU(),
            nn.Conv1d(w, w, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(w, w, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(w, latent_channels, 3, padding=1))
        self.decoder = nn.Sequential(
            nn.Conv1d(latent_channels, w, 3, padding=1), nn.GELU(),
            nn.ConvTranspose1d(w, w, 4, stride=2, padding=1), nn.GELU(),
            nn.ConvTranspose1d(w, w, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(w, n_mels, 3, padding=1))

    def encode(self, x):
        """x [shape=(B, n_mels, n_frames)] -> latent [shape=(B, latent_channels, n_frames / 4)]."""
        return self.encoder(x)

    def decode(self, latent):
        """latent [shape=(B, latent_channels, n_frames / 4)] -> x [shape=(B, n_mels, n_frames)]."""
        return self.decoder(latent)
