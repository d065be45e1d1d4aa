"""A chapter opened in a real JupyterLab (with jupyterlab-myst, installed by the ``lab`` extras) shows
its MyST markup rendered: no raw ``:::{exercise}``, ``:::{solution}`` or ``{cite}`` text is visible, the
solutions are collapsed until the reader opens them, and glued values show as values, not as their
names (jupyterlab-myst knows no ``{glue}``: it shows the name, and "Unknown Directive" for a glued figure).
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

pytestmark = pytest.mark.html

CHAPTER = ROOT / "notebooks" / "02_learning_to_generate.ipynb"
TOKEN = "musiclab-lab-test"
# raw markup, and what jupyterlab-myst shows for a directive it does not know (e.g. {glue:figure})
RAW_MARKUP = (":::{exercise", ":::{solution", "{cite}", "Unknown Directive")


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
    shutil.copy(CHAPTER, home / CHAPTER.name)
    # Render every cell, not only those in view, so that the whole chapter's text can be read.
    settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port = _free_port()
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={home}",
               f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
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
def chapter_page(lab):
    from playwright.sync_api import sync_playwright

    url, state = lab
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Chromium missing: `make browser` installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/lab/tree/{CHAPTER.name}?token={TOKEN}", wait_until="load")
        page.wait_for_selector(".jp-Notebook .jp-MarkdownCell", timeout=120_000)
        # a markdown cell is rendered once its source editor is replaced by the rendered output
        page.wait_for_function("""() => {
            const cells = [...document.querySelectorAll('.jp-Notebook .jp-MarkdownCell')];
            return cells.length > 0 && cells.every(c => c.querySelector('.jp-RenderedMarkdown, .jp-RenderedMySTMarkdown, .myst'));
        }""", timeout=120_000)
        page.wait_for_timeout(2000)  # let the last renderers settle
        yield page, state
        browser.close()


def _visible_notebook_text(page) -> str:
    return page.evaluate("() => document.querySelector('.jp-Notebook').innerText")


def test_no_raw_myst_markup_is_visible(chapter_page):
    page, state = chapter_page
    source = CHAPTER.read_text()
    assert all(markup in source for markup in (":::{exercise", ":::{solution", "{cite}`"))  # the check can fail
    text = _visible_notebook_text(page)
    assert "Maximum likelihood" in text or "maximum likelihood" in text, "the chapter's text did not render"
    raw = [markup for markup in RAW_MARKUP if markup in text]
    assert not raw, f"raw MyST markup visible in JupyterLab ({state}): {raw}"


def test_solutions_are_collapsed(chapter_page):
    page, _ = chapter_page
    solution_text = "the MSE itself"  # from the second solution of the chapter
    assert solution_text in CHAPTER.read_text()
    assert solution_text not in _visible_notebook_text(page), "a solution is visible before it is opened"
    exercise_text = "maximum-likelihood"  # the exercise itself stays visible
    assert exercise_text in _visible_notebook_text(page)


def test_glued_values_are_not_shown_by_name(chapter_page):
    page, _ = chapter_page
    source = "".join("".join(cell["source"]) for cell in json.loads(CHAPTER.read_text())["cells"]
                     if cell["cell_type"] == "markdown")
    names = set(re.findall(r"\{glue(?::\w+)?\}`([^`]+)`", source)) | set(re.findall(r"\{glue:\w+\}\s+(\S+)", source))
    if not names:
        pytest.skip(f"{CHAPTER.name} glues no values into its text")
    text = _visible_notebook_text(page)
    shown = sorted(name for name in names if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text))
    assert not shown, f"JupyterLab shows these glued values by name, not value: {shown}"
