"""Every chapter notebook: listed in the book, stripped in git, shaped like a chapter, and executed
by the book build (``make book``) without error, each within the quick-mode time budget.

``make test`` builds the book first; the build executes every notebook with a fail-on-error policy
(``nb_execution_raise_on_error``), and jupyter-cache records how long each one took.
"""
import json
import re

import pytest
import yaml

from conftest import JUPYTER_CACHE, ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
QUICK_BUDGET_S = 120

pytestmark = pytest.mark.notebooks


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return {c["file"] for part in toc["parts"] for c in part["chapters"]}


def _cells(path):
    return json.loads(path.read_text())["cells"]


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_in_the_table_of_contents(path):
    assert f"notebooks/{path.stem}" in _toc_files()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_stripped_in_git(path):
    for cell in _cells(path):
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None, "strip outputs (the build executes)"


MAX_CELL_LINES = 40


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_are_short(path):
    """A notebook shows music and models; plumbing (widget builders, layouts) lives in musiclab."""
    long_cells = [(cell.get("id"), len("".join(cell["source"]).splitlines())) for cell in _cells(path)
                  if cell["cell_type"] == "code" and len("".join(cell["source"]).splitlines()) > MAX_CELL_LINES]
    assert not long_cells, f"code cells over {MAX_CELL_LINES} lines (id, lines): {long_cells}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_anatomy(path):
    text = "\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown")
    for heading in ("What you will learn", "Code map", "Summary", "Exercises", "References"):
        assert heading in text, f"{path.name} lacks a '{heading}' section"
    assert "{cite}" in text, "a chapter cites its sources"
    assert ":::{solution}" in text or "```{solution}" in text, "exercises have solutions"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executed_in_build_within_budget(path):
    from jupyter_cache import get_cache

    assert JUPYTER_CACHE.exists(), "run `make book` first (make test does)"
    cache = get_cache(str(JUPYTER_CACHE))
    record = cache.get_cached_project_nb(str(path))
    assert record is not None, f"{path.name}: no successful execution cached (did it fail in the build?)"
    seconds = record.data.get("execution_seconds")
    assert seconds is not None and seconds <= QUICK_BUDGET_S, f"{path.name} took {seconds:.0f} s"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_citations_are_local_to_the_chapter(path):
    """Each chapter cites with its own key prefix and its bibliography declares it, so that a work cited
    in several chapters is listed in each, and each citation links into its own chapter (without
    prefixes sphinxcontrib-bibtex links every citation to the first chapter that listed the work)."""
    text = "\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown")
    prefix = f"c{path.stem[:2]}-"
    assert f":keyprefix: {prefix}" in text, f"{path.name}: the bibliography needs ':keyprefix: {prefix}'"
    bib_keys = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(), re.M))
    for keys in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text):
        for key in (k.strip() for k in keys.split(",")):
            assert key.startswith(prefix), f"{path.name}: cite {key!r} as {prefix}{key}"
            assert key[len(prefix):] in bib_keys, f"{path.name}: {key!r} is not in book/references.bib"
