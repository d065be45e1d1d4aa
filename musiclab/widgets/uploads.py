"""Files from an ipywidgets ``FileUpload``, for the explorers that take the reader's own file.

Chapter: notebooks/09_style_transfer_gan.ipynb
"""
from __future__ import annotations

from pathlib import Path


def save_first_upload(upload, folder) -> Path | None:
    """Write the first file of ``upload`` (ipywidgets 8 holds a tuple of dicts, 7 a dict by name) to
    ``folder`` under its own name and return its path; None while nothing is uploaded.

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """
    files = upload.value
    if not files:
        return None
    item = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
    name = item["name"] if "name" in item else item["metadata"]["name"]
    path = Path(folder) / Path(name).name
    path.write_bytes(bytes(item["content"]))
    return path
