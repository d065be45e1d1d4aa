"""The student and Lab editions: glue roles made {eval} roles that JupyterLab evaluates; in the student
edition exercise solutions removed, exercises kept, every other cell as in the Lab edition."""
import json
import os
import re

import pytest

from conftest import ROOT
from musiclab import book, cli
from musiclab.errors import BadInputError

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _markdown(cells):
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def _notebook(*cells):
    return {"cells": [{"cell_type": kind, "id": f"c{i}", "metadata": {}, "source": text.splitlines(keepends=True),
                       **({"outputs": [], "execution_count": None} if kind == "code" else {})}
                      for i, (kind, text) in enumerate(cells)],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_solution_blocks_go_and_the_rest_stays_line_for_line():
    text = ("## Exercises\n\n:::{exercise}\n:label: ex1\nWhy?\n:::\n\n:::{solution} ex1\n:class: dropdown\n"
            "Because. Code:\n```python\n:::\nx = 1\n```\n::::{note}\nnested\n::::\n:::\n\n"
            "````{solution} ex1\n```\ncode\n```\n````\n\nAfter.")
    notebook = _notebook(("markdown", text), ("code", "print(1)"))
    student = book.strip_solutions(notebook)
    assert "".join(student["cells"][0]["source"]) == "## Exercises\n\n:::{exercise}\n:label: ex1\nWhy?\n:::\n\nAfter."
    assert student["cells"][1] == notebook["cells"][1]


def test_gated_solutions_take_their_code_cells_with_them():
    notebook = _notebook(("markdown", ":::{exercise}\n:label: e\nQ\n:::\n\n:::{solution-start} e\n:::\nSee:"),
                         ("code", "answer = 42"), ("markdown", ":::{solution-end}\n:::\nNext part."),
                         ("code", "kept = True"))
    cells = book.strip_solutions(notebook)["cells"]
    assert [("".join(c["source"]), c["cell_type"]) for c in cells] == [
        (":::{exercise}\n:label: e\nQ\n:::", "markdown"), ("Next part.", "markdown"), ("kept = True", "code")]


def test_unclosed_solution_is_a_clear_error():
    with pytest.raises(BadInputError, match="unclosed fence"):
        book.strip_solutions(_notebook(("markdown", ":::{solution} x\nnever closed")))


@pytest.mark.skipif(not NOTEBOOKS, reason="no chapter notebooks")
def test_make_student_on_the_book(tmp_path, capsys):
    assert cli.main(["student", "--notebooks", str(ROOT / "notebooks"), "--out", str(tmp_path)]) == 0
    for path in NOTEBOOKS:
        original = book.lab_edition(json.loads(path.read_text()))
        student = json.loads((tmp_path / path.name).read_text())
        assert "{solution" not in _markdown(student["cells"]), path.name
        n_exercises = len(re.findall(r"\{exercise\}", _markdown(original["cells"])))
        assert n_exercises and len(re.findall(r"\{exercise\}", _markdown(student["cells"]))) == n_exercises
        assert {k: v for k, v in student.items() if k != "cells"} == {k: v for k, v in original.items() if k != "cells"}
        assert student["metadata"]["kernelspec"]["name"] == "python3"  # JupyterLab starts it without asking
        # every cell without a solution is as in the Lab edition, in the same order
        untouched, gated = [], False  # cells between {solution-start} and {solution-end} go too
        for cell in original["cells"]:
            text = "".join(cell["source"])
            if "{solution" not in text and not gated:
                untouched.append(cell)
            gated = (gated or "{solution-start}" in text) and "{solution-end}" not in text
        assert [c for c in student["cells"] if c in untouched] == untouched
        # in the cells that held solutions, only solution lines went missing
        by_id = {c["id"]: c for c in original["cells"]}
        for after in student["cells"]:
            remaining = iter(line.rstrip("\n") for line in by_id[after["id"]]["source"])
            assert all(line.rstrip("\n") in remaining for line in after["source"]), path.name


def test_lab_edition_turns_every_glue_role_into_an_eval_role():
    text = "Gap {glue:text}`gap:.3f`, n {glue}`n`, {glue:any}`n`, verdict {glue:md}`verdict`; `{glue}` in code stays."
    notebook = _notebook(("markdown", text), ("code", 'glue("gap", 0.5, display=False)'))
    cells = book.lab_edition(notebook)["cells"]
    call = '{eval}`__import__("musiclab.book").book.glued('
    assert "".join(cells[0]["source"]) == (f'Gap {call}"gap", ".3f")`, n {call}"n")`, {call}"n")`, '
                                           f'verdict {call}"verdict", markdown=True)`; `{{glue}}` in code stays.')
    # until the cell is run, JupyterLab shows the recorded placeholder for each expression
    recorded = cells[0]["metadata"]["user_expressions"]
    assert [e["expression"] for e in recorded] == re.findall(r"\{eval\}`([^`]+)`", "".join(cells[0]["source"]))
    assert {e["result"]["data"]["text/plain"] for e in recorded} == {book.NOT_RUN}
    assert cells[1] == notebook["cells"][1]


@pytest.mark.parametrize("text", ["{glue:figure}`fig`", "{glue:text}`x`  and {glue:md}`y:.2f`",
                                  "```{glue:figure} fig\n:name: f\n```"])
def test_lab_edition_refuses_glue_it_cannot_show(text):
    with pytest.raises(BadInputError, match="Lab edition cannot show"):
        book.lab_edition(_notebook(("markdown", text)))


def test_glued_values_read_as_myst_nb_pastes_them():
    from IPython.display import Markdown

    book.glue("test_gap", 0.123456, display=False)
    book.glue("test_count", 12345, display=False)
    book.glue("test_verdict", Markdown("**clear**"), display=False)
    shown = [book.glued("test_gap", ".3f"), book.glued("test_count", ","), book.glued("test_count")]
    assert [value.data for value in shown] == ["0.123", "12,345", "12345"]
    assert book.glued("test_verdict", markdown=True).data == "**clear**"
    assert book.glued("test_never_glued").data == book.NOT_YET_GLUED
    # evaluated by the role's own expression, as the kernel does for jupyterlab-myst
    role = book.lab_edition(_notebook(("markdown", "{glue:text}`test_gap:.2f`")))["cells"][0]
    expression = role["metadata"]["user_expressions"][0]["expression"]
    assert eval(expression).data == "0.12"


def test_chapters_glue_only_what_the_lab_edition_shows():
    for path in NOTEBOOKS:
        edition = book.lab_edition(json.loads(path.read_text()))
        assert "{glue" not in _markdown(edition["cells"]), path.name


def test_chapters_glue_through_musiclab_book():
    """Only `musiclab.book.glue` keeps the values the Lab edition's {eval} roles read back."""
    for path in NOTEBOOKS:
        code = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        assert "from myst_nb import glue" not in code, f"{path.name}: import glue from musiclab.book"


@pytest.mark.skipif(not NOTEBOOKS, reason="no chapter notebooks")
def test_make_lab_writes_the_lab_edition_and_keeps_the_readers_edits(tmp_path, capsys):
    out = tmp_path / "lab"
    assert cli.main(["lab-edition", "--notebooks", str(ROOT / "notebooks"), "--out", str(out)]) == 0
    for path in NOTEBOOKS:
        assert json.loads((out / path.name).read_text()) == book.lab_edition(json.loads(path.read_text()))
    edited = out / NOTEBOOKS[0].name
    edited.write_text(edited.read_text() + "\n")  # the reader's change, newer than the chapter
    assert book.write_lab_edition(NOTEBOOKS, out) == []
    os.utime(edited, (0, 0))  # the chapter changed since: its new Lab edition replaces the copy
    assert book.write_lab_edition(NOTEBOOKS, out) == [edited]
    assert cli.main(["lab-edition", "--notebooks", str(tmp_path / "empty"), "--out", str(out)]) == 2
