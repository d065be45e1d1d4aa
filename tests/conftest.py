import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD_HTML = ROOT / "_build" / "html"
BUILD_HTML_ZH = ROOT / "_build" / "html-zh"  # the Chinese edition (make book-zh)
JUPYTER_CACHE = ROOT / "_build" / ".jupyter_cache"


@pytest.fixture(autouse=True)
def _quick_mode(monkeypatch):
    """Unit tests run in quick mode whatever the machine, and never build the book."""
    monkeypatch.setenv("MUSICLAB_MODE", os.environ.get("MUSICLAB_TEST_MODE", "quick"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
