"""Sphinx extension: the English and the Chinese edition of the book link to each other.

Both editions are built from the same sources into sibling folders of ``_build`` (``make book``
writes ``_build/html``, ``make book-zh`` writes ``_build/html-zh`` with ``language = zh_CN``). Every
page gets a link in its header to the same page of the other edition(s), so ``X.html`` of one leads
to ``X.html`` of the other, on disk and on a server that serves the two folders side by side.

The book's title is text of the root page, so the translators translate it there: an edition whose
catalogues hold a translation of ``html_title`` shows that as its title (header, browser tab). The
part captions of ``_toc.yml`` are messages of the root page's catalogue too, but sphinx-external-toc
inserts its toctrees after Sphinx has translated the page, so `TranslateTocCaptions` translates them.
Sphinx parses each translated message as a document of its own, without the notebook's outputs, so
`retrieve_glue_data` finds a translation's ``{glue:text}`` values in the page's glue data.
"""
from pathlib import Path
from typing import NamedTuple

from myst_nb import sphinx_ as myst_nb_sphinx
from myst_nb.core.variables import VariableOutput
from myst_nb.ext.glue import crossref as glue_crossref, directives as glue_directives, roles as glue_roles
from myst_nb.ext.glue import utils as glue_utils
from sphinx import addnodes
from sphinx.locale import init as init_locale
from sphinx.transforms import SphinxTransform
from sphinx.util.i18n import docname_to_domain


class Edition(NamedTuple):
    label: str  # the link to this edition, in its own language
    folder: str  # its output folder, beside the other editions' in _build
    search_text: str  # the search field's placeholder


EDITIONS = {"en": Edition("English", "html", "Search this book..."),
            "zh_CN": Edition("中文", "html-zh", "搜索本书……")}
TEMPLATE = "language-switch.html"


def _edition_language(language: str | None) -> str:
    return language if language in EDITIONS else "en"


def translate_title(app, config):
    """Give the edition its translated title, read from its own catalogues (the root page's heading)."""
    language = _edition_language(config.language)
    if language == "en":
        return
    from babel.messages.pofile import read_po

    for locale_dir in config.locale_dirs:
        for catalogue_path in sorted((Path(app.srcdir) / locale_dir / language / "LC_MESSAGES").rglob("*.po")):
            with catalogue_path.open("rb") as handle:
                message = read_po(handle).get(config.html_title)
            if message is not None and message.string and not message.fuzzy:
                config.html_title = config.project = message.string
                return


def add_switch_to_header(app, config):
    """Put the language switch in front of the theme's buttons at the top right of every page."""
    config.templates_path.append(str(Path(__file__).parent / "templates"))
    config.html_static_path.append(str(Path(__file__).parent / "static"))
    app.add_css_file("editions.css")
    options = config.html_theme_options
    options["search_bar_text"] = EDITIONS[_edition_language(config.language)].search_text
    buttons = options.get("article_header_end", ["article-header-buttons.html"])
    buttons = [b.strip() for b in buttons.split(",")] if isinstance(buttons, str) else list(buttons)
    options["article_header_end"] = [TEMPLATE, *[b for b in buttons if b != TEMPLATE]]


def link_other_editions(app, pagename, templatename, context, doctree):
    """``other_editions``: (label, language, URL) of this page in each other edition."""
    own = _edition_language(app.config.language)
    to_build_root = "../" * (pagename.count("/") + 1)  # from this page up to _build/
    context["other_editions"] = [
        (edition.label, language.replace("_", "-"), f"{to_build_root}{edition.folder}/{pagename}.html")
        for language, edition in EDITIONS.items() if language != own]


def keep_executed_notebooks_apart(app):
    """Write another edition's copies of the executed notebooks to ``_build/jupyter_execute-<language>``.

    myst-nb writes each page's notebook to ``jupyter_execute`` beside the output folder, and a
    notebook it takes from the execution cache is written there without its outputs (it renders the
    page from a merged copy). The English build executes, so its copies keep the outputs; the other
    editions, which only read the cache, must not overwrite them.
    """
    language = _edition_language(app.config.language)
    if language != "en" and hasattr(app.env, "mystnb_config"):
        folder = Path(app.outdir).parent / f"jupyter_execute-{language}"
        app.env.mystnb_config = app.env.mystnb_config.copy(output_folder=str(folder.resolve()))


class TranslateTocCaptions(SphinxTransform):
    """Translate the captions of the toctrees that sphinx-external-toc inserted (priority 100) with
    the page's catalogue, as Sphinx's own `Locale` transform (priority 20) does for written ones."""

    default_priority = 110

    def apply(self, **kwargs):
        if _edition_language(self.config.language) == "en":
            return
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        locale_dirs = [str(Path(self.env.srcdir) / d) for d in self.config.locale_dirs]
        catalogue, found = init_locale(locale_dirs, self.config.language, domain)
        if not found:
            return
        for toctree in self.document.findall(addnodes.toctree):
            if toctree.get("caption"):
                toctree["caption"] = catalogue.gettext(toctree.get("rawcaption") or toctree["caption"])


_retrieve_glue_data = glue_utils.retrieve_glue_data
_load_renderer = myst_nb_sphinx.load_renderer
_PAGE_RENDERERS = {}  # docname -> the page's notebook renderer (a translated message has its own, empty one)


def load_renderer(name: str):
    """myst-nb's `load_renderer`, remembering the renderer made for each page (not for a message)."""
    create = _load_renderer(name)

    def create_and_remember(mdit_renderer, logger):
        renderer = create(mdit_renderer, logger)
        document = mdit_renderer.md.options["document"]
        if not str(document.get("source", "")).endswith("<translated>"):
            _PAGE_RENDERERS[document.settings.env.docname] = renderer
        return renderer

    return create_and_remember


def retrieve_glue_data(document, key: str):
    """myst-nb's `retrieve_glue_data`, also for a translated message of a notebook page: Sphinx
    parses the message as a document of its own, whose notebook renderer holds no outputs, so a
    key it lacks is read from the glue data myst-nb wrote for the page (``<page>.glue.json``)."""
    try:
        return _retrieve_glue_data(document, key)
    except glue_utils.RetrievalError:
        env = getattr(document.settings, "env", None)
        if env is None:
            raise
        glued = glue_crossref.read_glue_cache(env.mystnb_config.output_folder, env.docname)
        if key not in glued:
            raise
        return VariableOutput(data=glued[key]["data"], metadata=glued[key].get("metadata", {}),
                              nb_renderer=_PAGE_RENDERERS.get(env.docname, document.get("nb_renderer")), vtype="glue")


def setup(app):
    app.connect("config-inited", translate_title)
    app.connect("config-inited", add_switch_to_header)
    app.connect("html-page-context", link_other_editions)
    app.connect("builder-inited", keep_executed_notebooks_apart, priority=900)  # after myst-nb's
    app.add_transform(TranslateTocCaptions)
    glue_roles.retrieve_glue_data = glue_directives.retrieve_glue_data = retrieve_glue_data
    myst_nb_sphinx.load_renderer = load_renderer
    return {"parallel_read_safe": True, "parallel_write_safe": True}
