"""The Chinese edition's message catalogues (locale/zh_CN/LC_MESSAGES): one for every page of the
book, each at least 95 % translated and at most 2 % fuzzy (a message whose English changed since it
was translated), every translation keeping its message's code, roles, math and link targets; and the
Markdown translation of the student edition finds every message of a chapter in its notebook.
"""
import json
import re

import pytest
import yaml

from conftest import ROOT
from musiclab import book, i18n
from musiclab.errors import BadInputError

LANGUAGE = "zh_CN"
LOCALE = ROOT / "locale"
MIN_TRANSLATED, MAX_FUZZY = 0.95, 0.02
UPDATE = "make po writes the catalogues of new pages and marks changed messages fuzzy"


def _toc_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"], *(chapter["file"] for part in toc["parts"] for chapter in part["chapters"])]


CATALOGUES = i18n.catalogue_paths(LOCALE, LANGUAGE)


def test_every_page_has_a_catalogue_and_every_catalogue_a_page():
    pages = _toc_pages()
    assert not [p for p in pages if p not in CATALOGUES], f"pages without a catalogue ({UPDATE})"
    assert not [p for p in CATALOGUES if p not in pages], "catalogues of pages no longer in _toc.yml"


def test_every_page_is_translated():
    statuses = [i18n.read_catalogue_status(page, path) for page, path in CATALOGUES.items()]
    need_work = [str(s) for s in statuses if s.translated_share < MIN_TRANSLATED or s.fuzzy_share > MAX_FUZZY]
    assert not need_work, (f"pages below {MIN_TRANSLATED:.0%} translated or above {MAX_FUZZY:.0%} fuzzy "
                           f"(locale/{LANGUAGE}/LC_MESSAGES/<page>.po):\n" + "\n".join(need_work))


def test_translations_keep_the_markup():
    problems = []
    for page, path in CATALOGUES.items():
        for msgid, msgstr in i18n.read_translations(path).items():
            missing, extra = i18n.markup_differences(msgid, msgstr)
            if missing or extra:
                problems.append(f"{page}: {msgid[:70]!r} lost {missing[:3]}, added {extra[:3]}")
    assert not problems, f"{len(problems)} translations changed code, roles, math or links:\n" + "\n".join(problems)


def _display_math(text):
    """The display math of a cell's text: $$...$$ and {math} blocks, which the catalogue may also hold."""
    return re.findall(r"\$\$(.+?)\$\$", text, flags=re.S) + re.findall(r"[`:]{3,}\{math\}(.*?)[`:]{3,}", text, flags=re.S)


@pytest.mark.parametrize("page", [p for p in CATALOGUES if p.startswith("notebooks/")])
def test_the_student_edition_translates_every_message(page):
    """Each message of the chapter's catalogue, given a stand-in translation, replaces its English
    text in the notebook (display math aside, which is not prose): otherwise either the catalogue is
    out of date or `i18n.translate_markdown` misses a kind of block."""
    notebook = json.loads((ROOT / f"{page}.ipynb").read_text())
    msgids = [e.msgid for e in i18n.read_entries(CATALOGUES[page])]
    translated, used = book.translate_notebook(notebook, {m: f"译文{n}" for n, m in enumerate(msgids)})
    markdown = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")
    math = " ".join(" ".join(block.split()) for block in _display_math(markdown))
    missed = [m for m in msgids if m not in used and " ".join(m.split()) not in math]
    assert not missed, f"{page}: messages not found standing alone in the notebook ({UPDATE}): {missed[:5]}"
    code = [c["source"] for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code == [c["source"] for c in translated["cells"] if c["cell_type"] == "code"]


# musiclab.i18n on small examples ----------------------------------------------------------------------

def test_markup_differences_name_what_a_translation_lost():
    msgid = "The loss {cite}`c03-goodfellow2014` is $\\log D(x)$, see [the code](../musiclab/losses.py) and `gan_loss`."
    assert i18n.markup_differences(msgid, "损失 {cite}`c03-goodfellow2014` 为 $\\log D(x)$，见[代码](../musiclab/losses.py)和 `gan_loss`。") == ([], [])
    missing, extra = i18n.markup_differences(msgid, "损失 {cite}`c03-goodfellow2014` 为 $\\log D(y)$，见[代码](losses.py)。")
    assert sorted(missing) == ["$\\log D(x)$", "](../musiclab/losses.py)", "`gan_loss`"]
    assert sorted(extra) == ["$\\log D(y)$", "](losses.py)"]


def test_catalogue_status_counts_translated_and_fuzzy_messages(tmp_path):
    import polib

    catalogue = polib.POFile()
    catalogue.append(polib.POEntry(msgid="Summary", msgstr="小结"))
    catalogue.append(polib.POEntry(msgid="Exercises", msgstr="练习", flags=["fuzzy"]))
    catalogue.append(polib.POEntry(msgid="Old text", msgstr="旧", obsolete=True))
    catalogue.append(polib.POEntry(msgid="References", msgstr=""))
    catalogue.save(str(tmp_path / "page.po"))
    status = i18n.read_catalogue_status("page", tmp_path / "page.po")
    assert (status.n_messages, status.n_translated, status.n_fuzzy) == (3, 1, 1)
    assert status.translated_share == pytest.approx(1 / 3) and status.fuzzy_share == pytest.approx(1 / 3)
    assert i18n.read_translations(tmp_path / "page.po") == {"Summary": "小结"}


def test_a_broken_catalogue_is_a_named_error(tmp_path):
    (tmp_path / "bad.po").write_text('msgid "a"\nmsgstr "b"\nnot a catalogue\n')
    with pytest.raises(BadInputError, match="bad.po"):
        i18n.read_catalogue_status("bad", tmp_path / "bad.po")


def test_translate_markdown_replaces_whole_blocks_only():
    text = ("## Summary\n\nThe generator learns\nto fool the discriminator.\n\n- Summary of the loss\n"
            "- Summary\n\n| model | Summary |\n| --- | --- |\n\n:::{exercise} Summary\n:label: e\nWrite a Summary.\n:::\n")
    translations = {"Summary": "小结", "The generator learns to fool the discriminator.": "生成器学会骗过判别器。"}
    translated, used = i18n.translate_markdown(text, translations)
    assert translated == ("## 小结\n\n生成器学会骗过判别器。\n\n- Summary of the loss\n- 小结\n\n| model | 小结 |\n"
                          "| --- | --- |\n\n:::{exercise} 小结\n:label: e\nWrite a Summary.\n:::\n")
    assert used == set(translations)


def test_markup_inside_roles_and_between_them_is_not_mistaken_for_code_or_tags():
    msgid = "German {glue:text}`a:.0%` and Irish {glue:text}`b:.0%`; small ($\\tau < 1$) or large ($\\tau > 1$)."
    assert i18n.markup_tokens(msgid) == sorted(["{glue:text}`a:.0%`", "{glue:text}`b:.0%`", "$\\tau < 1$", "$\\tau > 1$"])


def test_chinese_student_edition_from_the_command_line(tmp_path):
    from musiclab import cli

    notebook = tmp_path / "notebooks" / "01_x.ipynb"
    notebook.parent.mkdir()
    notebook.write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["# Summary\n", "\n", ":::{exercise}\n", "Why?\n", ":::\n",
                                                                         "\n", ":::{solution}\n", "Because.\n", ":::\n"]},
        {"cell_type": "code", "id": "b", "metadata": {}, "source": ["x = 1"], "outputs": [], "execution_count": None}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    args = ["student", "--notebooks", str(notebook.parent), "--language", "zh_CN", "--locale", str(tmp_path / "locale"),
            "--out", str(tmp_path / "out")]
    assert cli.main(args) == 2  # no catalogue for the notebook

    import polib

    catalogue = tmp_path / "locale" / "zh_CN" / "LC_MESSAGES" / "notebooks" / "01_x.po"
    catalogue.parent.mkdir(parents=True)
    po = polib.POFile()
    for msgid, msgstr in [("Summary", "小结"), ("Why?", "为什么？"), ("Because.", "因为。")]:
        po.append(polib.POEntry(msgid=msgid, msgstr=msgstr))
    po.save(str(catalogue))
    assert cli.main(args) == 0
    cells = json.loads((tmp_path / "out" / "01_x.ipynb").read_text())["cells"]
    assert "".join(cells[0]["source"]) == "# 小结\n\n:::{exercise}\n为什么？\n:::\n\n" and cells[1]["source"] == ["x = 1"]
