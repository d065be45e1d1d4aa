"""Atomic file writes: the one way `musiclab` saves anything (caches, audio, MIDI, checkpoints).

A file is written under a temporary name in the same folder and then renamed over the target, which
the operating system does in one step: an interrupted or failed write never leaves a half-written
file, and the previous version stays intact until the new one is complete.

Chapter: notebooks/01_music_as_data.ipynb
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def write_atomic(path, write: Callable[[str], None]) -> Path:
    """Call ``write(temporary_path)``, then move the temporary file onto ``path``.

    The temporary path ends with the target's suffix, so writers that pick a format from the
    extension (soundfile, numpy) behave as they would for ``path`` itself.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a saved file is an ordinary readable file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
