"""The built HTML book in headless Chromium, both editions (English in _build/html, Chinese in
_build/html-zh): pages load without console errors or outside requests, math is typeset by the
MathJax served from the site, audio players hold playable data, images load, galleries are present
where a chapter has a widget, internal links resolve (the language switch to the other edition's
page included), every player a chapter displayed reaches its page, each site is at most 24 MB, and
no paragraph of the Chinese edition is left in English.
"""
import functools
import http.server
import json
import re
import shutil
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from conftest import BUILD_HTML, BUILD_HTML_ZH, ROOT

pytestmark = pytest.mark.html

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
SKIP_PAGES = {"genindex.html", "search.html", "_static", "_sources", "_images"}


# language -> the edition's folder, and the make target that builds it
EDITIONS = {"en": (BUILD_HTML, "make book"), "zh_CN": (BUILD_HTML_ZH, "make book-zh")}
BUILDS = BUILD_HTML.parent  # the server serves both editions, so the language switch can be followed


def _pages(build):
    if not build.exists():
        return []
    return sorted(p for p in build.rglob("*.html")
                  if not (set(p.relative_to(build).parts) & SKIP_PAGES) and p.name not in SKIP_PAGES)


PAGES = [(language, page) for language, (build, _) in EDITIONS.items() for page in _pages(build)]


def _page_id(case):
    return case if isinstance(case, str) else case.relative_to(BUILDS).as_posix()


@pytest.mark.parametrize("language", EDITIONS)
def test_book_was_built(language):
    build, command = EDITIONS[language]
    assert (build / "index.html").exists(), f"run `{command}` first (make test does)"
    names = {p.name for p in _pages(build)}
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        assert f"{nb.stem}.html" in names, f"{nb.name} has no page in the book"
        page = (build / "notebooks" / f"{nb.stem}.html").read_text()
        assert f"_sources/notebooks/{nb.stem}.ipynb" in page, f"{nb.stem} has no download-notebook button"


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(_QuietHandler, directory=str(BUILDS))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Chromium missing: `make browser` installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# A paragraph of the Chinese edition is left in English when it holds no Chinese character but at
# least this many lower-case English words once code, math and outputs are set aside (names such as
# Transformer, MIDI or Bach are capitalised, and a short label is not a paragraph). A table is read
# by rows, so that the glossary's English column stands beside its Chinese one.
ENGLISH_WORDS = 4
PROSE = "p, h1, h2, h3, h4, dt, figcaption, caption, li:not(:has(p))"
NOT_PROSE = "pre, code, .math, mjx-container, .cell_output, .output, .highlight, .citation, .bibliography"


def _paragraphs_in_english(page):
    return page.evaluate("""([prose, notProse, minWords]) =>
        [...new Set([...document.querySelectorAll('article.bd-article')].flatMap(a => [...a.querySelectorAll(prose)])
        .filter(el => !el.closest(notProse)).map(el => el.closest('tr') || el))].map(el => {
            const copy = el.cloneNode(true);
            copy.querySelectorAll(notProse).forEach(c => c.remove());
            return copy.textContent.replace(/\\s+/g, ' ').trim();
        }).filter(text => !/[\\u3400-\\u9fff]/.test(text)
                  && (text.match(/\\b[a-z]{2,}\\b/g) || []).length >= minWords)
        .map(text => text.slice(0, 100))""", [PROSE, NOT_PROSE, ENGLISH_WORDS])


@pytest.mark.parametrize("language,page_path", PAGES, ids=_page_id)
def test_page_in_chromium(language, page_path, server, browser):
    page = browser.new_page()
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))

    def outside(request):
        if not request.url.startswith((server, "data:", "blob:", "about:")):
            problems.append(f"request outside the site: {request.url}")

    page.on("request", outside)
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    url = f"{server}/{page_path.relative_to(BUILDS).as_posix()}"
    page.goto(url, wait_until="load")
    redirect = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"', page_path.read_text())
    if redirect:  # a redirect stub (the site's index.html): wait until the page it leads to has loaded
        target = (page_path.parent.relative_to(BUILDS) / redirect.group(1)).as_posix()
        page.wait_for_url(f"{server}/{target}", wait_until="load")

    if page.locator(".math").count():
        page.wait_for_selector("mjx-container", timeout=20_000)
        assert page.locator("mjx-merror").count() == 0, "MathJax reports a TeX error"
        unrendered = page.evaluate("""() => [...document.querySelectorAll('.math')]
            .filter(el => !el.querySelector('mjx-container')).length""")
        assert unrendered == 0, f"{unrendered} math elements were not typeset"

    broken_images = page.evaluate("""() => [...document.images]
        .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src.slice(0, 80))""")
    assert not broken_images, f"images that do not load: {broken_images}"

    n_audio = page.locator("audio").count()
    if n_audio:
        durations = page.evaluate("""async () => Promise.all([...document.querySelectorAll('audio')].map(a =>
            new Promise(resolve => {
                if (a.readyState >= 1) return resolve(a.duration);
                a.addEventListener('loadedmetadata', () => resolve(a.duration));
                a.addEventListener('error', () => resolve(-1));
                a.load();
                setTimeout(() => resolve(-2), 15000);
            })))""")
        bad = [i for i, d in enumerate(durations) if not (d and d > 0)]
        assert not bad, f"audio players {bad} of {n_audio} have no playable data ({durations})"
    english = _paragraphs_in_english(page) if language != "en" else []
    page.close()
    assert not english, f"{len(english)} paragraphs not translated: {english}"
    assert not problems, "\n".join(problems)


def _chapter_pages_with_widgets():
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if "widgets.show(" in nb.read_text():
            yield nb.stem


@pytest.mark.parametrize("language", EDITIONS)
@pytest.mark.parametrize("stem", list(_chapter_pages_with_widgets()))
def test_widget_chapters_have_a_static_gallery(stem, language):
    html = (EDITIONS[language][0] / "notebooks" / f"{stem}.html").read_text()
    assert "musiclab-gallery" in html and ("<audio" in html or "<img" in html)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.hrefs.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(errors="replace"))
    return parser


@pytest.mark.parametrize("language,page_path", PAGES, ids=_page_id)
def test_internal_links_resolve(language, page_path):
    broken = []
    for href in _parse(page_path).hrefs:
        parts = urlparse(href)
        if parts.scheme or href.startswith(("mailto:", "data:", "//")):
            continue
        target = page_path if not parts.path else (page_path.parent / unquote(parts.path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            broken.append(href)
        elif parts.fragment and target.suffix == ".html" and not re.fullmatch(r"top|", parts.fragment):
            if parts.fragment not in _parse(target).ids:
                broken.append(href)
    assert not broken, f"broken internal links: {broken}"


# Size: the whole site, audio included, fits in 24 MB -------------------------------------------------

MAX_SITE_BYTES = 24_000_000  # 14 chapters (20 MB held 12)


@pytest.mark.parametrize("language", EDITIONS)
def test_site_is_at_most_24_mb(language):
    build = EDITIONS[language][0]
    sizes = {path: path.stat().st_size for path in build.rglob("*") if path.is_file()}
    total = sum(sizes.values())
    largest = ", ".join(f"{path.relative_to(build)} {sizes[path] / 1e6:.1f} MB"
                        for path in sorted(sizes, key=sizes.get)[-5:])
    assert 0 < total <= MAX_SITE_BYTES, f"{build} is {total / 1e6:.1f} MB; largest files: {largest}"


@pytest.mark.parametrize("language", EDITIONS)
@pytest.mark.parametrize("stem", [nb.stem for nb in sorted((ROOT / "notebooks").glob("*.ipynb"))])
def test_every_player_reaches_its_page(stem, language):
    """As many players on the page as the executed chapter displayed, each with its sound embedded."""
    executed = json.loads((BUILD_HTML.parent / "jupyter_execute" / "notebooks" / f"{stem}.ipynb").read_text())
    displayed = sum("".join(output.get("data", {}).get("text/html", "")).count("<audio")
                    for cell in executed["cells"] for output in cell.get("outputs", []))
    page = (EDITIONS[language][0] / "notebooks" / f"{stem}.html").read_text()
    players = re.findall(r'<audio[^>]*src="data:audio/', page)  # tags, not the text of a saved output
    assert len(players) == displayed


@pytest.mark.parametrize("language", EDITIONS)
@pytest.mark.parametrize("stem", [nb.stem for nb in sorted((ROOT / "notebooks").glob("*.ipynb"))])
def test_every_glued_number_reaches_its_page(stem, language):
    """Each ``{glue:text}`` role of the chapter's text is a pasted value on the page, in both
    editions: a value the build cannot find or format leaves a hole in the sentence and only a
    warning in the build log."""
    chapter = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())
    roles = sum(len(re.findall(r"\{glue:text\}`", "".join(cell["source"])))
                for cell in chapter["cells"] if cell["cell_type"] == "markdown")
    page = (EDITIONS[language][0] / "notebooks" / f"{stem}.html").read_text()
    assert page.count('class="pasted-text"') == roles
