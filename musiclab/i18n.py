"""The book's translations: its gettext message catalogues, how complete they are, whether a
translation kept the markup of its English message, and Markdown text translated with them.

The catalogues live in ``locale/<language>/LC_MESSAGES/<page>.po``, one per page of the book
(``book/intro.po``, ``notebooks/03_gan.po``); ``make po`` writes them from the English text with
Sphinx's gettext builder and ``sphinx-intl``, ``make book-zh`` builds the Chinese edition from them.
A message is a paragraph, heading, list item, table cell or caption, in its MyST source form.

- `read_catalogue_status`: how many messages a catalogue has, how many are translated, how many
  are fuzzy (their English changed after they were translated, so they need a look).
- `markup_tokens` / `markup_differences`: inline code, roles, math, link targets and HTML tags must
  come through a translation unchanged, since they are code, not prose.
- `translate_markdown`: the text of a notebook's Markdown cell with every message replaced by its
  translation (the Chinese student edition, ``python -m musiclab student --language zh_CN``).

Chapter: book/intro.md
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import BadInputError

# Inline markup that is code or a target, not prose: it must come through a translation unchanged.
# Each kind is taken out of the text before the next is looked for, so that the text between two
# roles is not read as inline code, nor "a < b ... c > d" in math as an HTML tag.
MARKUP_PATTERNS = (
    r"\{[a-z:-]+\}`[^`]*`",           # roles: {cite}`key`, {glue:text}`name:.2f`, {numref}`fig`
    r"``.+?``",                       # inline code holding a backtick (or written with two)
    r"`[^`]+`",                       # inline code
    r"\$\$.+?\$\$",                   # display math
    r"\$[^$\n]+\$",                   # inline math
    r"\]\([^)]*\)",                   # link targets
    r"</?[A-Za-z][^<>]*>",            # HTML tags
)


def catalogue_paths(locale_dir, language: str) -> dict[str, Path]:
    """The catalogues of ``language`` under ``locale_dir``, by page (``"notebooks/03_gan"``).

    Chapter: book/intro.md
    """
    folder = Path(locale_dir) / language / "LC_MESSAGES"
    return {path.relative_to(folder).with_suffix("").as_posix(): path for path in sorted(folder.rglob("*.po"))}


def read_entries(path) -> list:
    """The messages (`polib.POEntry`) of the catalogue at ``path``, obsolete ones left out; a
    catalogue that cannot be read is a BadInputError naming it.

    Chapter: book/intro.md
    """
    import polib

    try:
        return [entry for entry in polib.pofile(str(path)) if not entry.obsolete]
    except (OSError, ValueError) as error:  # polib raises OSError for a file it cannot parse
        raise BadInputError(f"{path}: not a readable message catalogue ({error})") from None


@dataclass(frozen=True)
class CatalogueStatus:
    """How far a page's catalogue is translated.

    Chapter: book/intro.md
    """
    page: str
    n_messages: int
    n_translated: int  # translated and not fuzzy
    n_fuzzy: int

    @property
    def translated_share(self) -> float:
        return self.n_translated / self.n_messages if self.n_messages else 1.0

    @property
    def fuzzy_share(self) -> float:
        return self.n_fuzzy / self.n_messages if self.n_messages else 0.0

    def __str__(self) -> str:
        return (f"{self.page}: {self.n_translated}/{self.n_messages} translated "
                f"({100 * self.translated_share:.1f} %), {self.n_fuzzy} fuzzy ({100 * self.fuzzy_share:.1f} %)")


def read_catalogue_status(page: str, path) -> CatalogueStatus:
    """The `CatalogueStatus` of the catalogue at ``path`` (a .po file), reported under ``page``.

    Chapter: book/intro.md
    """
    entries = read_entries(path)
    return CatalogueStatus(page, len(entries), sum(1 for e in entries if e.msgstr and "fuzzy" not in e.flags),
                           sum(1 for e in entries if "fuzzy" in e.flags))


def markup_tokens(text: str) -> list[str]:
    """The inline markup of a message (`MARKUP_PATTERNS`), sorted, so two texts compare as multisets.

    Chapter: book/intro.md
    """
    tokens = []
    for pattern in MARKUP_PATTERNS:
        tokens += re.findall(pattern, text, flags=re.S)
        text = re.sub(pattern, " ", text, flags=re.S)
    return sorted(tokens)


def markup_differences(msgid: str, msgstr: str) -> tuple[list[str], list[str]]:
    """``(missing, extra)``: markup of ``msgid`` that ``msgstr`` lost, and markup only ``msgstr`` has.

    Chapter: book/intro.md
    """
    original, translated = markup_tokens(msgid), markup_tokens(msgstr)
    missing, extra = list(original), []
    for token in translated:
        if token in missing:
            missing.remove(token)
        else:
            extra.append(token)
    return missing, extra


def read_translations(path) -> dict[str, str]:
    """msgid -> msgstr of the translated, not fuzzy messages of the catalogue at ``path``.

    Chapter: book/intro.md
    """
    return {e.msgid: e.msgstr for e in read_entries(path) if e.msgstr and "fuzzy" not in e.flags}


# A message starts a line after Markdown's block markup only (indentation, heading marks, quote,
# list marker, a directive's opening fence), or after a table's "|", and ends its line or table cell.
_LINE_PREFIX = re.compile(r"[ \t]*(?:(?:#{1,6}|>|[-*+]|\d+[.)])[ \t]+)*(?:[:`]{3,}\{[\w:-]+\}[ \t]*)?")
_CELL_PREFIX = re.compile(r"[ \t]*\|.*\|[ \t]*|[ \t]*\|[ \t]*")
_LINE_REST = re.compile(r"[ \t]*(?:\|.*)?")


def _message_pattern(msgid: str) -> re.Pattern:
    # the catalogue keeps a paragraph's words; the cell may break its lines anywhere between them
    return re.compile(r"\s+".join(map(re.escape, msgid.split())))


def _stands_alone(text: str, start: int, end: int) -> bool:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    prefix, rest = text[line_start:start], text[end:len(text) if line_end < 0 else line_end]
    in_table = text[line_start:].lstrip().startswith("|")
    return bool((_CELL_PREFIX if in_table else _LINE_PREFIX).fullmatch(prefix) and _LINE_REST.fullmatch(rest))


def translate_markdown(text: str, translations: dict[str, str]) -> tuple[str, set[str]]:
    """``text`` (MyST Markdown) with each message of ``translations`` (msgid -> msgstr) that stands
    alone in it (a whole paragraph, heading, list item, table cell or directive title) replaced by
    its translation; also the msgids that were replaced. Code blocks are never messages.

    Longer messages go first, so a short one ("Summary") is never replaced inside a longer one.

    Chapter: book/intro.md
    """
    used = set()
    for msgid in sorted(translations, key=len, reverse=True):
        pieces, position = [], 0
        for match in _message_pattern(msgid).finditer(text):
            if _stands_alone(text, match.start(), match.end()):
                pieces += [text[position:match.start()], translations[msgid]]
                position = match.end()
                used.add(msgid)
        text = "".join(pieces) + text[position:]
    return text, used
