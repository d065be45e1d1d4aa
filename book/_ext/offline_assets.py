"""Sphinx extension: serve MathJax 3 from the built site so math renders without a network.

The MathJax files come from the ``django-static-mathjax`` wheel (an extra of ``musiclab[book]``);
they are copied to ``_static/mathjax`` when the HTML build finishes, and ``mathjax_path`` in
``_config.yml`` points there.
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


def setup(app):
    _mathjax_source()  # fail at the start of a build, not at its end
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
