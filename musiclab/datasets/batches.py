"""Batches for the book's models: windows of melodies as a torch Dataset, (context, next token) pairs.

Chapter: notebooks/01_music_as_data.ipynb
"""
from __future__ import annotations

import numpy as np
import torch

from .. import symbolic
from ..errors import BadInputError


def _shift_options(transpose, low, high, lowest, highest) -> tuple[np.ndarray, np.ndarray]:
    """The shifts of ``transpose`` (only 0 for None) and which of them keep each item's range
    ``[low, high]`` [shape=(N,)] inside ``[lowest, highest]``: ``(shifts [shape=(S,)], allowed
    [shape=(N, S)])``."""
    shifts = np.array(sorted(transpose) if transpose is not None else [0], dtype=np.int64)
    return shifts, (low[:, None] + shifts >= lowest) & (high[:, None] + shifts <= highest)


def _draw_shift(shifts: np.ndarray, allowed: np.ndarray) -> int | None:
    """One of the ``allowed`` ``shifts``, drawn uniformly with torch's generator; None if none is."""
    options = np.flatnonzero(allowed)
    return int(shifts[options[torch.randint(len(options), ()).item()]]) if options.size else None


class GridSliceDataset(torch.utils.data.Dataset):
    """Windows of ``n_bars`` bars cut from tunes' grids, randomly transposed at each access.

    A "bar" is a fixed ``steps_per_bar`` = 16 sixteenths whatever the tune's meter, as in MusicVAE;
    windows follow the rules of `symbolic.slice_grid`. Each access draws a shift from ``transpose``
    (uniformly, with torch's generator, so `config.seed_everything` repeats it) among the shifts
    that keep every pitch in ``[PITCH_LOW, PITCH_HIGH]``; ``transpose=None`` turns this off.
    Items are LongTensor [shape=(n_bars * steps_per_bar,)] of tokens in ``[0, VOCAB_SIZE)``.

    Chapter: notebooks/01_music_as_data.ipynb
    """

    def __init__(self, tunes, n_bars: int = 2, transpose=range(-5, 7), steps_per_bar: int = 16,
                 hop_bars: int = 1):
        parts = [symbolic.slice_grid(t.grid, n_bars, steps_per_bar, hop_bars) for t in tunes]
        width = n_bars * steps_per_bar
        self.windows = np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.int64)
        self.tune_index = np.repeat(np.arange(len(parts)), [len(p) for p in parts])  # window -> tune
        has_note = self.windows >= 2
        low = np.where(has_note, self.windows, 10 ** 6).min(axis=1, initial=10 ** 6) + symbolic.PITCH_LOW - 2
        high = np.where(has_note, self.windows, -1).max(axis=1, initial=-1) + symbolic.PITCH_LOW - 2
        self.shifts, self.allowed = _shift_options(transpose, low, high, symbolic.PITCH_LOW, symbolic.PITCH_HIGH)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> torch.Tensor:
        window = torch.from_numpy(self.windows[i].copy())
        shift = _draw_shift(self.shifts, self.allowed[i])
        if shift is not None:
            window[window >= 2] += shift
        return window


class TransposedRolls(torch.utils.data.Dataset):
    """Piano rolls, each randomly transposed at each access, so a model learns every key.

    Each access draws a shift from ``transpose`` (uniformly, with torch's generator) among the
    shifts that keep every sounding key inside the roll; ``transpose=None`` turns this off. Items
    are uint8 arrays [shape=(T, n_keys)].

    Chapter: notebooks/04_rnn.ipynb
    """

    def __init__(self, rolls, transpose=range(-6, 7)):
        self.rolls = [np.asarray(r) for r in rolls]
        used = [np.flatnonzero(r.any(axis=0)) for r in self.rolls]
        low = np.array([k[0] if k.size else 0 for k in used])
        high = np.array([k[-1] if k.size else 0 for k in used])
        last_key = np.array([r.shape[1] - 1 for r in self.rolls])[:, None]
        self.shifts, self.allowed = _shift_options(transpose, low, high, 0, last_key)

    def __len__(self) -> int:
        return len(self.rolls)

    def __getitem__(self, i: int) -> np.ndarray:
        return symbolic.transpose_pianoroll(self.rolls[i], _draw_shift(self.shifts, self.allowed[i]) or 0)


def next_token_windows(tunes, context_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (context, next token) pair of the tunes' grids, for next-token models.

    Each grid is preceded by ``context_len`` RESTs, so that every token, the first included, is a
    target once and a model also learns how melodies begin.

    Returns
    -------
    contexts : LongTensor [shape=(N, context_len)]
    targets : LongTensor [shape=(N,)]
        N = the total length of the grids.

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    if context_len < 1:
        raise BadInputError(f"context_len={context_len}: expected >= 1")
    contexts, targets = [], []
    for t in tunes:
        padded = np.concatenate([np.full(context_len, symbolic.REST, dtype=np.int64), t.grid])
        contexts.append(np.lib.stride_tricks.sliding_window_view(padded, context_len)[:-1])
        targets.append(t.grid.astype(np.int64))
    if not targets:
        return torch.zeros((0, context_len), dtype=torch.long), torch.zeros(0, dtype=torch.long)
    return torch.from_numpy(np.concatenate(contexts)), torch.from_numpy(np.concatenate(targets))
