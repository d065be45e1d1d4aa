"""Sphinx extension: a book that works offline and without console errors.

- MathJax 3 is served from the built site: the files come from the ``django-static-mathjax`` wheel
  (an extra of ``musiclab[book]``), are copied to ``_static/mathjax`` when the HTML build finishes,
  and ``mathjax_path`` in ``_config.yml`` points there. Only the parts ``tex-chtml.js`` loads are
  copied (its fonts and the TeX extensions it loads on demand), about 2 MB of the wheel's 24 MB.
- The site stays small: figures become palette PNGs (`musiclab.plot.compress_png`), and the
  theme's source maps and translation catalogues, which no page loads, are left out.
- sphinx-thebe (loaded by Jupyter Book) registers its inline configuration script once per read
  of the environment, so pages can carry it twice, and the second copy throws "Identifier
  'THEBE_JS_URL' has already been declared". Each page keeps one copy.
- Pages leave out the saved state of the chapters' ipywidgets (the book has no widget JavaScript to
  read it; each chapter shows a static gallery instead), which repeats figures and sounds.
"""
import shutil
from pathlib import Path


def _mathjax_source() -> Path:
    import mathjax  # the django-static-mathjax package

    source = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (source / "tex-chtml.js").exists():
        raise RuntimeError(f"MathJax not found at {source}; pip install django-static-mathjax")
    return source


MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions")


def copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        source, target = _mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
        shutil.rmtree(target, ignore_errors=True)  # no parts left over from an earlier build
        for part in MATHJAX_PARTS:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            if (source / part).is_dir():
                shutil.copytree(source / part, target / part, dirs_exist_ok=True)
            else:
                shutil.copy2(source / part, target / part)


def shrink_site(app, exception):
    if exception is None and app.builder.format == "html":
        from musiclab.plot import compress_png

        static = Path(app.outdir) / "_static"
        for unused in [*static.rglob("*.map"), static / "locales"]:
            shutil.rmtree(unused) if unused.is_dir() else unused.unlink(missing_ok=True)
        for image in (Path(app.outdir) / "_images").glob("*.png"):
            image.write_bytes(compress_png(image.read_bytes()))


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        if getattr(script, "attributes", {}).get("type") == "application/vnd.jupyter.widget-state+json":
            continue
        key = (getattr(script, "filename", None) or "", repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    _mathjax_source()  # fail at the start of a build, not at its end
    app.connect("build-finished", copy_mathjax)
    app.connect("build-finished", shrink_site)
    app.connect("html-page-context", drop_duplicate_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
