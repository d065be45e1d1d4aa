"""A notebook opened alone installs musiclab in its first cell and runs.

Every chapter's first code cell is `musiclab.book.SETUP_CELL` (fast check). The slow check copies
chapter 2 alone into an empty folder, makes a fresh virtual environment *without* musiclab, and
executes the notebook there: its first cell must pip-install musiclab (here from a wheel built from
this checkout, given as ``MUSICLAB_SOURCE``; published, the default is the repository's git URL,
`book.PUBLIC_SOURCE`). The data cache is the user's (``~/.cache/musiclab``, not part of the
repository); with a cold one the chapter first parses its corpus (about 30 s). About 90 s in all on a
busy 2-core machine.

What the fresh environment is given: the book's third-party dependencies (torch, music21, librosa,
...), linked from the project's ``.venv`` as a Colab runtime has them pre-installed. Installing
those too fetched about 6 GB here (pip picked the CUDA build of torch) in 2 min 54 s, and the test
must run offline (``PIP_NO_INDEX=1``). musiclab itself, the thing under test, is not there until the
notebook's first cell installs it.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import ROOT
from musiclab import book

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_setup_cell(path):
    cell = book.first_code_cell(json.loads(path.read_text()))
    assert cell is not None and "".join(cell["source"]) == book.SETUP_CELL, (
        f"run `python -m musiclab setup-cell {path.relative_to(ROOT)}`")


def test_setup_cell_is_inserted_once_and_updated_in_place(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": ["# T"]},
                                          {"cell_type": "code", "id": "c", "metadata": {}, "outputs": [],
                                           "execution_count": None, "source": ["import musiclab"]}],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert book.set_setup_cell(path) and not book.set_setup_cell(path)
    cells = json.loads(path.read_text())["cells"]
    assert [c["id"] for c in cells] == ["m", book.SETUP_CELL_ID, "c"]


def _dependencies_without_musiclab(target: Path) -> Path:
    """A folder of links to everything installed in this environment except musiclab itself."""
    target.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if "musiclab" not in entry.name.lower() and not entry.name.endswith(".pth"):
            (target / entry.name).symlink_to(entry)
    return target


@pytest.mark.notebooks
def test_chapter_runs_alone_in_a_fresh_environment(tmp_path):
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    wheel_dir, source = tmp_path / "wheel", tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "musiclab", source / "musiclab", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(wheel_dir), str(source)], check=True)
    (wheel,) = wheel_dir.glob("musiclab-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # Python 3.11's venv bundles an old setuptools that would hide the one torch requires (as 3.12's
    # venvs do, keep only pip)
    subprocess.run([python, "-m", "pip", "uninstall", "--quiet", "--yes", "setuptools"], check=True)
    fresh_site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                capture_output=True, text=True, check=True).stdout.strip()
    (Path(fresh_site) / "book_dependencies.pth").write_text(f"{_dependencies_without_musiclab(tmp_path / 'deps')}\n")
    probe = subprocess.run([python, "-c", "import importlib.util, torch, music21; "
                                          "print(importlib.util.find_spec('musiclab'))"],
                           capture_output=True, text=True, cwd=tmp_path, check=True)
    assert probe.stdout.strip() == "None", "the fresh environment must not see musiclab before the set-up cell"

    kernels = tmp_path / "jupyter" / "kernels" / "fresh"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh venv", "language": "python"}))
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(ROOT / "notebooks" / "02_learning_to_generate.ipynb", alone)

    env = {"JUPYTER_PATH": str(tmp_path / "jupyter"), "MUSICLAB_SOURCE": str(wheel),
           "MUSICLAB_MODE": "quick",
           "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1"}
    old = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        notebook = nbformat.read(alone / "02_learning_to_generate.ipynb", as_version=4)
        nbclient.NotebookClient(notebook, kernel_name="fresh", timeout=300,
                                resources={"metadata": {"path": str(alone)}}).execute()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    installed = subprocess.run([python, "-m", "pip", "show", "--files", "musiclab"], capture_output=True,
                               text=True, cwd=tmp_path).stdout
    assert fresh_site in installed, "the set-up cell installed musiclab into the fresh environment"
