"""Run mode, device, seeds and the cache folder: chosen once, read everywhere.

- ``MUSICLAB_MODE=quick|full`` picks small or real configs. Without the variable the mode is
  ``full`` when a CUDA GPU is present and ``quick`` otherwise.
- ``MUSICLAB_CACHE`` moves the data cache (default ``~/.cache/musiclab``).
- ``MUSICLAB_DEVICE`` forces a device (``cpu``, ``cuda``, ``mps``); otherwise cuda, then mps, then cpu.

Chapter: notebooks/01_music_as_data.ipynb
"""
from __future__ import annotations

import functools
import os
import random
from pathlib import Path

import numpy as np
import torch

from .errors import BadInputError

MODES = ("quick", "full")


def get_mode() -> str:
    """Return the run mode, ``"quick"`` or ``"full"`` (see module docstring)."""
    mode = os.environ.get("MUSICLAB_MODE", "").strip().lower()
    if not mode:
        return "full" if torch.cuda.is_available() else "quick"
    if mode not in MODES:
        raise BadInputError(f"MUSICLAB_MODE={mode!r}: expected one of {MODES}")
    return mode


def pick(quick, full):
    """Return ``quick`` in quick mode and ``full`` in full mode (for sizes, steps, subsets)."""
    return quick if get_mode() == "quick" else full


@functools.lru_cache(maxsize=None)
def get_device() -> torch.device:
    """Return the one device every model and batch goes to: cuda, then mps, then cpu."""
    forced = os.environ.get("MUSICLAB_DEVICE", "").strip().lower()
    if forced:
        if forced not in ("cpu", "cuda", "mps"):
            raise BadInputError(f"MUSICLAB_DEVICE={forced!r}: expected cpu, cuda or mps")
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so that a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cache_dir() -> Path:
    """Return (and create) the folder for data caches and downloaded-nothing artefacts."""
    path = Path(os.environ.get("MUSICLAB_CACHE", Path.home() / ".cache" / "musiclab")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
