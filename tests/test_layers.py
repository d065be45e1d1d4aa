"""The package's layers: every import inside `musiclab` points down, and no two modules import each other.

Each module is parsed (not imported), so imports inside functions count as much as those at the top.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "musiclab"

# Low to high. A name ending in ".*" covers a package and everything inside it. Modules of one layer
# may import each other as long as no cycle forms.
LAYERS = [
    ("ground", ["", "errors", "fileio", "config"]),  # "" is the package's own __init__
    ("losses", ["losses"]),
    ("signals", ["symbolic", "audio", "recording"]),  # recording: checks and cuts a recording's samples
    ("weights", ["weights"]),
    ("data", ["datasets", "datasets.*"]),
    ("models", ["models", "models.*"]),
    ("training", ["train"]),
    # plot draws figures from plain arrays and imports nothing of musiclab's; the analysis reports
    # (a transcription's surprising notes) draw with it, so it sits below them.
    ("figures", ["plot"]),
    ("analysis", ["metrics", "style", "surprise", "watermark", "memorisation", "transcription",
                  "leaderboard", "upload", "evaluate"]),
    ("recipes", ["recipes", "recipes.*"]),
    ("widgets", ["widgets", "widgets.*"]),
    ("interface", ["cli", "book", "i18n", "__main__"]),  # i18n: the Chinese edition's catalogues
]
LEVEL = {pattern: level for level, (_, patterns) in enumerate(LAYERS) for pattern in patterns}
FORBIDDEN_IN_MODELS = ("recipes", "train", "metrics", "datasets")
ALLOWED_IN_MODELS = ("errors", "losses", "symbolic", "audio", "weights", "models")  # and torch, numpy


def module_names() -> dict[str, Path]:
    """``{"models.rnn": path, "": musiclab/__init__.py, ...}``: every module of the package."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


MODULES = module_names()


def layer_of(name: str) -> int | None:
    if name in LEVEL:
        return LEVEL[name]
    top = name.split(".")[0]
    return LEVEL.get(f"{top}.*") if "." in name else None


def imports_of(name: str, path: Path) -> list[tuple[str, int]]:
    """The package's own modules that module ``name`` imports, as ``(module, line)``."""
    is_package = path.name == "__init__.py"
    package = name.split(".") if is_package else name.split(".")[:-1]
    package = [p for p in package if p]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
            targets = [t[len("musiclab."):] if t.startswith("musiclab.") else "" for t in targets
                       if t == "musiclab" or t.startswith("musiclab.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] if node.level > 1 else package
                module = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "musiclab" or node.module.startswith("musiclab.")):
                module = node.module[len("musiclab."):] if node.module != "musiclab" else ""
            else:
                continue
            # `from . import audio` and `from .models import rnn` import modules; `from .x import f`, x itself
            submodules = [f"{module}.{a.name}".lstrip(".") for a in node.names]
            targets = [s for s in submodules if s in MODULES] or [module]
        else:
            continue
        found += [(target, node.lineno) for target in targets if target in MODULES]
    return found


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def _shown(name: str) -> str:
    return f"musiclab.{name}" if name else "musiclab"


def test_every_module_has_a_layer():
    unplaced = [_shown(name) for name in MODULES if layer_of(name) is None]
    assert not unplaced, f"{unplaced}: place it in a layer (LAYERS in tests/test_layers.py)"


def test_imports_only_point_down():
    upward = []
    for name, targets in GRAPH.items():
        for target, line in targets:
            if layer_of(target) is not None and layer_of(name) is not None and layer_of(target) > layer_of(name):
                upward.append(f"{MODULES[name].relative_to(PACKAGE.parent)}:{line}: {_shown(name)} "
                              f"({LAYERS[layer_of(name)][0]}) imports {_shown(target)} "
                              f"({LAYERS[layer_of(target)][0]}), a higher layer")
    assert not upward, "\n".join(upward)


def test_models_import_no_recipes_training_metrics_or_data():
    wrong = [f"{MODULES[name].relative_to(PACKAGE.parent)}:{line}: {_shown(name)} imports {_shown(target)}"
             for name, targets in GRAPH.items() if name == "models" or name.startswith("models.")
             for target, line in targets if target.split(".")[0] in FORBIDDEN_IN_MODELS]
    assert not wrong, "\n".join(wrong)


def test_models_import_only_losses_signals_and_weights():
    """A model file holds the model, its config, its sampling and its loader: nothing else of the package."""
    wrong = [f"{MODULES[name].relative_to(PACKAGE.parent)}:{line}: {_shown(name)} imports {_shown(target)}"
             for name, targets in GRAPH.items() if name == "models" or name.startswith("models.")
             for target, line in targets if target.split(".")[0] not in ALLOWED_IN_MODELS]
    assert not wrong, "\n".join(wrong)


def find_cycle(graph: dict[str, list[tuple[str, int]]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules (first = last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target, _ in graph.get(node, []):
            if target == node:
                continue
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in graph:
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycles():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(_shown(n) for n in cycle)


def test_the_checks_can_fail():
    """The same checks on made-up modules: an upward import, an unknown module and a cycle are caught."""
    assert find_cycle({"a": [("b", 1)], "b": [("c", 1)], "c": [("a", 1)]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": [("b", 1)], "b": []}) is None
    assert layer_of("models.new_family") == LEVEL["models.*"] and layer_of("brand_new_module") is None
    assert layer_of("train") > layer_of("models.rnn") > layer_of("weights") > layer_of("errors")
    assert layer_of("widgets.chapter_3") > layer_of("recipes.gan") > layer_of("metrics")


@pytest.mark.parametrize("source, expected", [
    ("from .. import audio, weights\n", ["audio", "weights"]),
    ("def f():\n    from ..recipes import common\n", ["recipes.common"]),
    ("from ..metrics import copy_rate\n", ["metrics"]),
    ("import musiclab.train\n", ["train"]),
    ("from . import audio_rnn\n", ["models.audio_rnn"]),
])
def test_imports_are_resolved_inside_functions_and_relative(tmp_path, source, expected):
    path = tmp_path / "rnn.py"
    path.write_text(source)
    assert [target for target, _ in imports_of("models.rnn", path)] == expected
