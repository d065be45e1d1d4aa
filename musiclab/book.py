"""The chapter notebooks as files: the set-up cell each one opens with, glued values, and the
Lab and student editions.

- `SETUP_CELL`: the first code cell of every chapter. In the book's repository (``make lab``,
  ``make book``) `musiclab` is installed and the cell does nothing; in a notebook opened alone
  (Colab, a fresh Jupyter) it pip-installs `musiclab` from ``MUSICLAB_SOURCE`` (any pip
  requirement: a git URL, a wheel, a folder), so that the notebook runs. `set_setup_cell` writes it
  into a notebook (``python -m musiclab setup-cell notebooks/NN_name.ipynb``); a test checks that
  every chapter carries exactly this text. Until the repository has a public address,
  `PUBLIC_SOURCE` is empty and a notebook opened alone asks the reader to set ``MUSICLAB_SOURCE``.
- `glue`: what the chapters glue values into their text with. The HTML book pastes them where
  the text says ``{glue:text}`name:fmt``` (myst-nb); JupyterLab's MyST renderer (jupyterlab-myst)
  knows no ``{glue}`` roles, so `glue` also keeps each value for `glued`.
- `lab_edition`: a notebook whose glue roles are ``{eval}`` roles calling `glued`, which
  jupyterlab-myst evaluates in the kernel when the text cell is run (before that, the text reads
  `NOT_RUN`). ``make lab`` opens this edition of the chapters, written by `write_lab_edition` to
  ``_build/lab``.
- `write_student_edition`: Lab editions of the notebooks with the exercise solutions
  (sphinx-exercise's ``{solution}`` blocks, and ``{solution-start}`` ... ``{solution-end}`` spans)
  removed and nothing else changed (``make student`` writes them to ``_build/student``); with a
  language, the text cells translated from the book's message catalogues (`translate_notebook`,
  ``_build/student-zh_CN``).

Chapter: book/intro.md
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from . import fileio
from .errors import BadInputError

# When the repository is published, put its pip address here (e.g.
# "git+https://github.com/OWNER/REPO.git") and rewrite the notebooks' first cells with
# `python -m musiclab setup-cell notebooks/*.ipynb`.
PUBLIC_SOURCE = ""
SETUP_CELL_ID = "setup-musiclab"
SETUP_CELL = f'''\
# Set-up. In the book's repository this does nothing. Opened alone (Colab, a fresh Jupyter), it
# installs the book's package, musiclab, from MUSICLAB_SOURCE: a git URL, a wheel or a folder.
import importlib.util
import os
import subprocess
import sys

MUSICLAB_SOURCE = os.environ.get("MUSICLAB_SOURCE", "{PUBLIC_SOURCE}")
if importlib.util.find_spec("musiclab") is None:
    if not MUSICLAB_SOURCE:
        raise RuntimeError("musiclab is not installed: set MUSICLAB_SOURCE in this cell to the book's "
                           "repository (git+https://...), a musiclab wheel or a folder, and run it again")
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    # tinysoundfont's pyaudio dependency (live playback only) needs C headers: install without it
    subprocess.run(pip + ["--no-deps", "tinysoundfont==0.3.7"], check=True)
    subprocess.run(pip + [MUSICLAB_SOURCE], check=True)
    importlib.invalidate_caches()'''


def _read(path) -> dict:
    path = Path(path)
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        notebook["cells"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BadInputError(f"{path}: not a readable notebook ({error.__class__.__name__})") from None
    return notebook


def _write(path, notebook: dict) -> None:
    text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"  # the layout Jupyter and jupytext write
    fileio.write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _as_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


# The set-up cell ---------------------------------------------------------------------------------

def first_code_cell(notebook: dict) -> dict | None:
    """The notebook's first code cell, or None."""
    return next((c for c in notebook["cells"] if c["cell_type"] == "code"), None)


def set_setup_cell(path) -> bool:
    """Make `SETUP_CELL` the first code cell of the notebook at ``path``: replace the one there
    (recognised by its id) or insert it before the first code cell. Returns whether the file changed."""
    notebook = _read(path)
    cell = {"cell_type": "code", "execution_count": None, "id": SETUP_CELL_ID, "metadata": {}, "outputs": [],
            "source": _as_lines(SETUP_CELL)}
    cells = notebook["cells"]
    first = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), len(cells))
    if first < len(cells) and cells[first].get("id") == SETUP_CELL_ID:
        if cells[first] == cell:
            return False
        cells[first] = cell
    else:
        cells.insert(first, cell)
    _write(path, notebook)
    return True


# Glued values -----------------------------------------------------------------------------------

_GLUED: dict = {}  # name -> value, for the {eval} roles of the Lab edition
NOT_RUN = "[run the code cells above]"  # a Lab-edition value before its text cell is run
NOT_YET_GLUED = "[computed by a code cell below: run it, then this text cell]"
# {glue}`name`, {glue:text}`name:format`, {glue:any}`name`, {glue:md}`name` (myst-nb's inline roles)
_GLUE_ROLE = re.compile(r"\{glue(?::(\w+))?\}`([^`]+)`")
_GLUE_DIRECTIVE = re.compile(r"^ {0,3}(`{3,}|:{3,})\{glue(?::\w+)?\}", re.MULTILINE)


def glue(name: str, value, display: bool = True) -> None:
    """Glue ``value`` under ``name``: myst-nb's `glue` (the HTML book pastes it into the text), and
    kept in this kernel for `glued` (the Lab edition's text). Without myst-nb (a notebook opened
    alone) only the latter.

    A NumPy scalar is glued as the Python number it holds, so that ``{glue:text}`name:.2f``` can
    format it (its text would be ``np.float64(0.5)``).

    Chapter: book/intro.md
    """
    if isinstance(value, np.generic):
        value = value.item()
    _GLUED[name] = value
    try:
        from myst_nb import glue as publish
    except ImportError:
        return
    publish(name, value, display)


def glued(name: str, format_spec: str = "", markdown: bool = False):
    """The value glued under ``name`` as the Lab edition's ``{eval}`` roles show it: formatted with
    ``format_spec`` (as ``{glue:text}`name:format_spec``` does), or as Markdown; `NOT_YET_GLUED`
    when no cell has glued it yet in this kernel.

    Chapter: book/intro.md
    """
    from IPython.display import Markdown, Pretty

    if name not in _GLUED:
        return Pretty(NOT_YET_GLUED)
    value = _GLUED[name]
    if markdown:
        return Markdown(value.data if isinstance(value, Markdown) else str(value))
    return Pretty(format(value, format_spec))  # Pretty: shown as the text itself, without quotes


def _eval_role(match: re.Match) -> str:
    kind, content = match[1] or "any", match[2]
    name, _, format_spec = content.partition(":")
    if kind in ("any", "text"):
        arguments = ", ".join(map(json.dumps, (name, format_spec) if format_spec else (name,)))
    elif kind == "md" and not format_spec:
        arguments = f"{json.dumps(name)}, markdown=True"
    else:
        raise BadInputError(f"{match[0]}: the Lab edition cannot show this glue role")
    # self-contained, so that it also evaluates in a text cell above the cell that imports `glue`
    return f'{{eval}}`__import__("musiclab.book").book.glued({arguments})`'


# the chapters are stored without kernel metadata; without it JupyterLab asks for a kernel
LAB_KERNEL = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def lab_edition(notebook: dict) -> dict:
    """A copy of ``notebook`` whose text cells show glued values in JupyterLab: each glue role
    becomes an ``{eval}`` role calling `glued`, with `NOT_RUN` recorded as its value until the
    cell is run (jupyterlab-myst shows the recorded value); other cells unchanged. It runs on
    ipykernel's Python kernel (`LAB_KERNEL`) unless the notebook names one.
    """
    cells = []
    for cell in notebook["cells"]:
        text = _source(cell)
        if cell["cell_type"] != "markdown" or "{glue" not in text:
            cells.append(cell)
            continue
        if _GLUE_DIRECTIVE.search(text):
            raise BadInputError(f"cell {cell.get('id')}: the Lab edition cannot show glue directives")
        text = _GLUE_ROLE.sub(_eval_role, text)
        expressions = re.findall(r"\{eval\}`([^`]+)`", text)
        not_run = {"status": "ok", "data": {"text/plain": NOT_RUN}, "metadata": {}}
        metadata = {**cell["metadata"], "user_expressions": [{"expression": e, "result": not_run} for e in expressions]}
        cells.append({**cell, "metadata": metadata, "source": _as_lines(text)})
    return {**notebook, "metadata": {"kernelspec": LAB_KERNEL, **notebook["metadata"]}, "cells": cells}


def write_lab_edition(notebooks, out_dir) -> list[Path]:
    """Write the `lab_edition` of each notebook in ``notebooks`` (paths) to ``out_dir``, except
    where the copy there is newer than its source (the reader's own edits stay); return the paths
    written.

    Chapter: book/intro.md
    """
    return _write_editions(notebooks, out_dir, lab_edition, keep_newer=True)


def _write_editions(notebooks, out_dir, make_edition, keep_newer: bool = False) -> list[Path]:
    """Write ``make_edition(notebook)`` of each notebook in ``notebooks`` (paths) to ``out_dir``
    under its own name (with ``keep_newer``, not over a copy newer than its source); a
    BadInputError names the notebook. Returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in map(Path, notebooks):
        target = out_dir / path.name
        if keep_newer and target.exists() and target.stat().st_mtime >= path.stat().st_mtime:
            continue
        try:
            edition = make_edition(_read(path))
        except BadInputError as error:
            raise BadInputError(f"{path}: {error}") from None
        _write(target, edition)
        written.append(target)
    return written


# The student edition -----------------------------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(`{3,}|:{3,})(.*?)\s*$")


def _fence(line: str):
    """``(fence, info)`` of a MyST fence line (``:::{solution} x`` -> (":::", "{solution} x")), or None."""
    m = _FENCE.match(line)
    return (m[1], m[2].strip()) if m else None


def _block_end(lines: list[str], start: int) -> int:
    """Index just past the fenced block opened at ``lines[start]``, nested fences respected.

    A fence closes on a line of the same character, at least as long, with nothing after it. Inside
    a literal code block (info not starting with ``{``) other fence lines are text; inside a
    directive they open nested blocks.
    """
    stack = [_fence(lines[start])]
    for i in range(start + 1, len(lines)):
        found = _fence(lines[i])
        if found is None:
            continue
        (fence, info), (top, top_info) = found, stack[-1]
        if not info and fence[0] == top[0] and len(fence) >= len(top):
            stack.pop()
            if not stack:
                return i + 1
        elif info and top_info.startswith("{"):
            stack.append(found)
    raise BadInputError(f"unclosed fence {lines[start].strip()!r}")


def _directive(line: str) -> str | None:
    found = _fence(line)
    m = found and re.match(r"\{([\w-]+)\}", found[1])
    return m[1] if m else None


def strip_solutions(notebook: dict) -> dict:
    """A copy of ``notebook`` without its exercise solutions; every other cell and line unchanged.

    Removes each ``{solution}`` directive block of a markdown cell (with the blank line after it),
    and each gated ``{solution-start}`` ... ``{solution-end}`` span, cells in between included;
    a markdown cell left empty is dropped.
    """
    cells, in_gated = [], False
    for cell in notebook["cells"]:
        if cell["cell_type"] != "markdown":
            if not in_gated:
                cells.append(cell)
            continue
        lines, kept, i, changed = _as_lines(_source(cell)), [], 0, in_gated
        while i < len(lines):
            name = _directive(lines[i])
            if in_gated:
                in_gated = name != "solution-end"
                i = _block_end(lines, i) if name == "solution-end" else i + 1
            elif name == "solution":
                i, changed = _block_end(lines, i), True
                if i < len(lines) and not lines[i].strip() and (not kept or not kept[-1].strip()):
                    i += 1
            elif name == "solution-start":
                i, in_gated, changed = _block_end(lines, i), True, True
            else:
                kept.append(lines[i])
                i += 1
        if not changed:
            cells.append(cell)
        elif "".join(kept).strip():
            text = "".join(kept).rstrip("\n") if not _source(cell).endswith("\n") else "".join(kept)
            cells.append({**cell, "source": _as_lines(text)})
    if in_gated:
        raise BadInputError("a {solution-start} has no {solution-end}")
    return {**notebook, "cells": cells}


def translate_notebook(notebook: dict, translations: dict[str, str]) -> tuple[dict, set[str]]:
    """A copy of ``notebook`` whose Markdown cells are translated with ``translations`` (msgid ->
    msgstr of its catalogue, see `musiclab.i18n.translate_markdown`); code cells unchanged. Also
    the msgids used.

    Chapter: book/intro.md
    """
    from . import i18n

    cells, used = [], set()
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            text, cell_used = i18n.translate_markdown(_source(cell), translations)
            cell, used = {**cell, "source": _as_lines(text)}, used | cell_used
        cells.append(cell)
    return {**notebook, "cells": cells}, used


def write_student_edition(notebooks, out_dir, language: str | None = None, locale_dir="locale") -> list[Path]:
    """Write the `lab_edition` of each notebook in ``notebooks`` (paths) to ``out_dir`` without its
    solutions; return the paths. With ``language`` (``"zh_CN"``), its text cells are first
    translated with the notebook's catalogue, ``<locale_dir>/<language>/LC_MESSAGES/notebooks/<name>.po``
    (messages without a translation stay English); a notebook without a catalogue is an error."""
    if language is None:
        return _write_editions(notebooks, out_dir, lambda notebook: lab_edition(strip_solutions(notebook)))
    from . import i18n

    written = []
    for path in map(Path, notebooks):
        catalogue = Path(locale_dir) / language / "LC_MESSAGES" / path.parent.name / f"{path.stem}.po"
        if not catalogue.exists():
            raise BadInputError(f"{catalogue}: no catalogue for {path} (make po writes it)")
        translations = i18n.read_translations(catalogue)
        written += _write_editions(
            [path], out_dir, lambda notebook: lab_edition(strip_solutions(translate_notebook(notebook, translations)[0])))
    return written
