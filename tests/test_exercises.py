"""Every chapter has an implement-it exercise: it asks for a function, a check cell after it calls
that function and says whether it is right, and the student edition keeps the check but not the
answer (a function of that name left to the student is only a stub)."""
import ast
import json
import re

import pytest

from conftest import ROOT
from musiclab import book

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ASKED = re.compile(r"`([A-Za-z_]\w*)\(")  # `name(...)`, not `module.name(...)`


def _text(cell):
    return "".join(cell["source"])


def _exercises(cells):
    """(index of the cell, name of the function asked for) for each exercise that asks for one."""
    found = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            for block in re.findall(r"\{exercise\}(.*?)\n:::", _text(cell), flags=re.DOTALL):
                found += [(i, name) for name in ASKED.findall(block)]
    return found


def _is_stub(function: ast.FunctionDef) -> bool:
    body = [n for n in function.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    if len(body) != 1:
        return False
    statement = body[0]
    return isinstance(statement, ast.Raise) or isinstance(statement, ast.Return) and (
        statement.value is None or isinstance(statement.value, ast.Constant) and statement.value.value is None)


def _defined_stubs_only(source: str, name: str) -> bool:
    """Whether every definition of ``name`` in ``source`` is a stub (raises, or returns None)."""
    if f"def {name}(" not in source:
        return True
    return all(_is_stub(node) for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.FunctionDef) and node.name == name)


def _checks(cells, after: int, name: str) -> list[str]:
    """Code cells after ``after`` that use ``name`` other than by defining it and report a verdict."""
    found = []
    for cell in cells[after + 1:]:
        if cell["cell_type"] != "code":
            continue
        uses = [line for line in _text(cell).splitlines() if re.search(rf"\b{name}\b", line)
                and not line.lstrip().startswith(f"def {name}(")]
        if uses and re.search(r"\bassert\b|right", _text(cell)):
            found.append(_text(cell))
    return found


@pytest.mark.skipif(not NOTEBOOKS, reason="no chapter notebooks")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_has_an_implement_it_exercise_with_a_check(path):
    original = json.loads(path.read_text())["cells"]
    student = book.strip_solutions(json.loads(path.read_text()))["cells"]
    with_checks = [(i, name) for i, name in _exercises(student) if _checks(student, i, name)]
    assert with_checks, f"{path.name}: no exercise asks for a function that a check cell after it calls"
    for _, name in with_checks:
        assert all(_defined_stubs_only(_text(c), name) for c in student if c["cell_type"] == "code"), \
            f"{path.name}: the student edition still holds an answer for {name}"
    # the book holds an answer: a solution's code cell, or code in a {solution} block
    assert any(f"def {name}(" in _text(c) and (c["cell_type"] == "markdown" or not _defined_stubs_only(_text(c), name))
               for _, name in with_checks for c in original), f"{path.name}: the book holds no answer to its exercise"


def test_the_rule_can_fail():
    cells = [{"cell_type": "markdown", "source": [":::{exercise}\n:label: e\nWrite `f(x)`.\n:::"]},
             {"cell_type": "code", "source": ["def f(x):\n    return 2 * x"]},
             {"cell_type": "code", "source": ["assert f(1) == 2"]}]
    assert _exercises(cells) == [(0, "f")] and _checks(cells, 0, "f")
    assert not _defined_stubs_only(_text(cells[1]), "f")
    assert _defined_stubs_only("def f(x):\n    raise NotImplementedError", "f")
    assert not _checks(cells[:2], 0, "f")
