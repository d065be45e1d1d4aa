"""The Lab edition of a chapter opened in a real JupyterLab (with jupyterlab-myst, installed by the ``lab``
extras) shows its MyST markup rendered: no raw ``:::{exercise}``, ``:::{solution}`` or ``{cite}`` text is
visible and the solutions are collapsed until the reader opens them. Glued values (jupyterlab-myst knows
no ``{glue}``: it would show the name, and "Unknown Directive" for a glued figure) show as a placeholder
until the notebook is run, and as their values after Run All: checked on a small notebook that glues
as the chapters do.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT
from musiclab import book

pytestmark = pytest.mark.html

CHAPTER = ROOT / "notebooks" / "02_learning_to_generate.ipynb"
TOKEN = "musiclab-lab-test"
# raw markup, and what jupyterlab-myst shows for a directive or role it does not know
RAW_MARKUP = (":::{exercise", ":::{solution", "{cite}", "{glue", "{eval}", "Unknown Directive", "Unknown Role")
GLUING = "gluing.ipynb"
# (code cell, text cell quoting its values, the values as the text shows them) as the chapters glue
GLUED = ('from musiclab.book import glue\nfrom IPython.display import Markdown\n\n'
         'glue("gap_nats", 0.123456, display=False)\nglue("n_tunes", 12345, display=False)\n'
         'glue("verdict", Markdown("**clearly** smaller"), display=False)',
         "Gap {glue:text}`gap_nats:.3f` nats over {glue:text}`n_tunes:,` tunes: {glue:md}`verdict`.",
         ("Gap 0.123 nats over 12,345 tunes:", "clearly smaller"))
# A value quoted above the cell that glues it, as chapters 1, 8 and 11 do once each: Run All sends every
# code cell to the kernel before jupyterlab-myst sends the text cells' expressions, so it shows too.
FORWARD = ("Quoted before its cell: {glue:text}`gap_nats:.2f`.", "Quoted before its cell: 0.12.")


def _gluing_notebook() -> dict:
    """The Lab edition of a notebook that glues as the chapters do, and quotes one value before its cell."""
    code, text, _ = GLUED
    cells = [("markdown", FORWARD[0]), ("code", code), ("markdown", text)]
    notebook = {"cells": [{"cell_type": kind, "id": f"cell{i}", "metadata": {}, "source": source,
                           **({"outputs": [], "execution_count": None} if kind == "code" else {})}
                          for i, (kind, source) in enumerate(cells)],
                "metadata": {},
                "nbformat": 4, "nbformat_minor": 5}
    return book.lab_edition(notebook)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _myst_extension_state() -> str:
    """jupyterlab-myst as `jupyter labextension list` reports it ("" when it is not installed)."""
    listing = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True,
                             text=True, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)  # without its colours
    return next((line.strip() for line in text.splitlines() if "jupyterlab-myst" in line and " v" in line), "")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    state = _myst_extension_state()
    if not state:
        pytest.skip("jupyterlab-myst is not installed: `pip install -e '.[lab]'` installs it")
    home = tmp_path_factory.mktemp("lab")
    book.write_lab_edition([CHAPTER], home)  # what `make lab` opens
    (home / GLUING).write_text(json.dumps(_gluing_notebook()))
    # Render every cell, not only those in view, so that the whole chapter's text can be read.
    settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port = _free_port()
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={home}",
               f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.expose_app_in_browser=True"]  # window.jupyterapp, to run all cells
    if hasattr(os, "getuid") and os.getuid() == 0:
        command.append("--allow-root")
    log = open(home / "lab.log", "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=home)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                assert server.poll() is None, (home / "lab.log").read_text()[-3000:]
                time.sleep(0.5)
        yield url, state
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Chromium missing: `make browser` installs Debian's chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def _open(browser, lab, name):
    """A page showing the notebook ``name`` once every text cell is rendered."""
    url, _ = lab
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    # ?reset: a fresh workspace, so that only this notebook is open
    page.goto(f"{url}/lab/tree/{name}?reset&token={TOKEN}", wait_until="load")
    page.wait_for_selector(".jp-Notebook .jp-MarkdownCell", timeout=120_000)
    # a markdown cell is rendered once its source editor is replaced by the rendered output
    page.wait_for_function("""() => {
        const cells = [...document.querySelectorAll('.jp-Notebook .jp-MarkdownCell')];
        return cells.length > 0 && cells.every(c => c.querySelector('.jp-RenderedMarkdown, .jp-RenderedMySTMarkdown, .myst'));
    }""", timeout=120_000)
    page.wait_for_timeout(2000)  # let the last renderers settle
    return page


@pytest.fixture(scope="module")
def chapter_page(lab, browser):
    page = _open(browser, lab, CHAPTER.name)
    yield page, lab[1]
    page.close()


def _visible_notebook_text(page) -> str:
    return page.evaluate("() => document.querySelector('.jp-Notebook').innerText")


def _visible_text_cells(page) -> str:
    """What the rendered text (markdown) cells show, without the code cells' source."""
    return page.evaluate("() => [...document.querySelectorAll('.jp-Notebook .jp-MarkdownCell')]"
                         ".map(cell => cell.innerText).join('\\n')")


def test_no_raw_myst_markup_is_visible(chapter_page):
    page, state = chapter_page
    source = CHAPTER.read_text()
    assert all(markup in source for markup in (":::{exercise", ":::{solution", "{cite}`"))  # the check can fail
    text = _visible_notebook_text(page)
    assert "Maximum likelihood" in text or "maximum likelihood" in text, "the chapter's text did not render"
    _assert_no_raw_markup(text, state)


def test_solutions_are_collapsed(chapter_page):
    page, _ = chapter_page
    solution_text = "the MSE itself"  # from the second solution of the chapter
    assert solution_text in CHAPTER.read_text()
    assert solution_text not in _visible_notebook_text(page), "a solution is visible before it is opened"
    exercise_text = "maximum-likelihood"  # the exercise itself stays visible
    assert exercise_text in _visible_notebook_text(page)


def _assert_no_raw_markup(text, state):
    raw = [markup for markup in RAW_MARKUP if markup in text]
    assert not raw, f"raw MyST markup visible in JupyterLab ({state}): {raw}"


def test_glued_values_show_after_run_all(lab, browser, tmp_path):
    _, text_cell, values = GLUED
    page = _open(browser, lab, GLUING)
    page.screenshot(path=str(tmp_path / "before-run.png"), full_page=True)  # to look at
    before = _visible_text_cells(page)
    _assert_no_raw_markup(before, lab[1])
    assert before.count(book.NOT_RUN) == 4, "before the run, each glued value should read as the placeholder"
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    try:
        page.wait_for_function("""(values) => {
            const cells = [...document.querySelectorAll('.jp-Notebook .jp-MarkdownCell')];
            const text = cells.map(cell => cell.innerText).join('\\n');
            return values.every(v => text.includes(v));
        }""", arg=[*values, FORWARD[1]], timeout=90_000)
    finally:
        page.screenshot(path=str(tmp_path / "after-run-all.png"), full_page=True)
    after = _visible_text_cells(page)
    _assert_no_raw_markup(after, lab[1])
    names = re.findall(r"`(\w+)", text_cell + FORWARD[0])
    assert names and not [name for name in names if name in after], f"glued values shown by name: {after!r}"
    assert book.NOT_RUN not in after and book.NOT_YET_GLUED not in after
    page.close()
