"""Sphinx extension: a book that works offline and without console errors.

- MathJax 3 is served from the built site: the files come from the ``django-static-mathjax`` wheel
  (an extra of ``musiclab[book]``), are copied to ``_static/mathjax`` when the HTML build finishes,
  and ``mathjax_path`` in ``_config.yml`` points there.
- sphinx-thebe (loaded by Jupyter Book) registers its inline configuration script once per read
  of the environment, so pages can carry it twice, and the second copy throws "Identifier
  'THEBE_JS_URL' has already been declared". Each page keeps one copy.
"""
import shutil
from pathlib import Path


def _mathjax_source() -> Path:
    import mathjax  # the django-static-mathjax package

    source = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (source / "tex-chtml.js").exists():
        raise RuntimeError(f"MathJax not found at {source}; pip install django-static-mathjax")
    return source


def copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        shutil.copytree(_mathjax_source(), Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (getattr(script, "filename", None) or "", repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    _mathjax_source()  # fail at the start of a build, not at its end
    app.connect("build-finished", copy_mathjax)
    app.connect("html-page-context", drop_duplicate_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
