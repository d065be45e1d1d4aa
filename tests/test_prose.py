"""The book's text: no words about how the project is organised, and every figure in the prose comes
from the code (glued by myst-nb) or from a named source.

Sources in ``tests/prose_numbers.yml`` (page -> list of ``{number, source}``):
``cite:KEY`` (a key of book/references.bib), ``bench:HEADING`` (a ``##`` section of
benchmarks/README.md that contains the number), ``sidecar:NAME:key.path`` (a value in
musiclab/checkpoints/NAME.json that rounds to the number; ``key.path/60`` for seconds quoted in
minutes), ``definition: ...`` or ``math: ...``
(a constant of a formula, a setting, a name).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ALLOWLIST = ROOT / "tests" / "prose_numbers.yml"
BENCHMARKS = ROOT / "benchmarks" / "README.md"
CHECKPOINTS = ROOT / "musiclab" / "checkpoints"

# A number with a decimal point, or any number followed by a percent sign ("96 %", "7.6%").
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*\.\d+(?:\s?%)?|(?<![\w.])\d[\d,]*\s?%")
PROJECT_WORDS = re.compile(
    r"\bissues?\b|\bcommissioned\b|\bsessions?\b|\bthe bars?\b(?! (?:lines?|length|of|within|in)\b| \d)|"
    r"\bthe bars?:|\btargets? of\b|\b(?:met|meets|pass|passes|passed) the bar|\bbars? (?:is|are|was|were) met\b",
    re.IGNORECASE)


def _strip_markup(text: str) -> str:
    """Drop what is not prose: fenced code, LaTeX math, inline code (and so glue and cite roles)."""
    text = re.sub(r"^(```|~~~).*?^\1", " ", text, flags=re.DOTALL | re.MULTILINE)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.DOTALL)
    text = re.sub(r"(?<!\\)\$.*?(?<!\\)\$", " ", text, flags=re.DOTALL)
    text = re.sub(r"(`+).*?\1", " ", text, flags=re.DOTALL)
    return re.sub(r"\]\([^)]*\)", "]", text)  # link targets


def pages() -> dict[str, str]:
    """Every page of the book that readers read: notebooks' markdown cells and book/*.md."""
    found = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        found[f"notebooks/{path.name}"] = "\n\n".join("".join(c["source"]) for c in cells
                                                      if c["cell_type"] == "markdown")
    for path in sorted((ROOT / "book").glob("*.md")):
        found[f"book/{path.name}"] = path.read_text()
    return found


def numbers_in(text: str) -> list[str]:
    """The numbers of ``text``'s prose, as written ("0.589", "96 %"), in order."""
    return [m.group(0) for m in NUMBER.finditer(_strip_markup(text))]


def _value(number: str) -> float:
    return float(number.rstrip("% ").replace(",", ""))


def _decimals(number: str) -> int:
    digits = number.rstrip("% ")
    return len(digits.split(".")[1]) if "." in digits else 0


def benchmark_sections() -> dict[str, str]:
    """``## heading`` -> its text, from benchmarks/README.md."""
    parts = re.split(r"^## (.+)$", BENCHMARKS.read_text(), flags=re.MULTILINE)
    return {heading.strip(): body for heading, body in zip(parts[1::2], parts[2::2])}


def sidecar_value(name: str, key_path: str):
    """The value at ``key_path`` ("metrics.spread_fake", "history.-1.step") in sidecar ``name``; a
    path ending in "/60" divides the value by 60 (seconds to minutes)."""
    key_path, _, divisor = key_path.partition("/")
    value = json.loads((CHECKPOINTS / f"{name}.json").read_text())
    for key in key_path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value / float(divisor) if divisor else value


def _matches(number: str, value: float) -> bool:
    """Whether ``value`` written with ``number``'s decimals (as a percentage for "x %") is ``number``."""
    scaled = value * 100 if number.endswith("%") and value <= 1 else value
    return abs(scaled - _value(number)) <= 0.5 * 10 ** -_decimals(number) + 1e-9


def source_problem(number: str, source: str, citation_keys: set, sections: dict) -> str | None:
    """Why ``source`` does not back ``number``, or None when it does."""
    kind, _, rest = source.partition(":")
    rest = rest.strip()
    if kind in ("definition", "math"):
        return None if rest else f"{source!r}: say what the constant is"
    if kind == "cite":
        return None if rest in citation_keys else f"no key {rest!r} in book/references.bib"
    if kind == "bench":
        if rest not in sections:
            return f"no section '## {rest}' in benchmarks/README.md"
        digits = re.escape(number.rstrip("% "))
        as_written = re.search(rf"(?<![\d.]){digits}(?![\d])", sections[rest])
        as_fraction = number.endswith("%") and any(  # "81 %" quoting a fraction 0.810
            _matches(number, float(x)) for x in re.findall(r"(?<![\d.])0\.\d+", sections[rest]))
        return None if as_written or as_fraction else f"{number} is not in section {rest!r} of benchmarks/README.md"
    if kind == "sidecar":
        name, _, key_path = rest.partition(":")
        try:
            value = sidecar_value(name, key_path)
        except (FileNotFoundError, KeyError, IndexError, ValueError) as error:
            return f"sidecar {name}.json has no {key_path!r} ({error!r})"
        return None if _matches(number, float(value)) else f"sidecar {name}:{key_path} = {value}, not {number}"
    return f"unknown kind of source {source!r}"


def test_no_project_words():
    """The book speaks to readers: nothing about issues, bars to meet, sessions or helpers."""
    texts = {page: _strip_markup(text) for page, text in pages().items()}
    texts["README.md"] = _strip_markup((ROOT / "README.md").read_text())
    found = [f"{page}: ...{text[max(0, m.start() - 40):m.end() + 40]!r}..."
             for page, text in texts.items() for m in PROJECT_WORDS.finditer(text)]
    assert not found, "words about how the project is organised:\n" + "\n".join(found)


def test_project_words_pattern_catches_and_spares():
    """The pattern can fail: it flags organisation words and leaves musical bars alone."""
    assert PROJECT_WORDS.search("both models met the bar")
    assert PROJECT_WORDS.search("this issue asks for")
    assert PROJECT_WORDS.search("The bar: strength at least 0.7")
    assert not PROJECT_WORDS.search("the first four bars: the pickup, 2-bar phrases, the bar length, the bars of a reel")


def test_number_scan_skips_math_code_and_glue():
    text = "Accuracy 0.96 and 7.6 % here; $x = 0.5$, `glue 3.25`, {glue:text}`acc:.3f`.\n```\n1.5\n```\n"
    assert numbers_in(text) == ["0.96", "7.6 %"]


def test_numbers_are_glued_or_sourced():
    """Every decimal or percentage in the prose is glued from a cell or listed with its source."""
    allowlist = yaml.safe_load(ALLOWLIST.read_text()) or {}
    citation_keys = set(re.findall(r"@\w+\{([^,\s]+),", (ROOT / "book" / "references.bib").read_text()))
    sections = benchmark_sections()
    problems = []
    for page, text in pages().items():
        listed = {str(entry["number"]): entry["source"] for entry in allowlist.get(page, [])}
        found = set(numbers_in(text))
        problems += [f"{page}: {n!r} is neither glued nor listed" for n in sorted(found - set(listed))]
        problems += [f"{page}: {n!r} is listed but no longer on the page" for n in sorted(set(listed) - found)]
        problems += [f"{page}: {n!r}: {why}" for n, source in listed.items() if n in found
                     for why in [source_problem(n, source, citation_keys, sections)] if why]
    problems += [f"{page}: not a page of the book" for page in set(allowlist) - set(pages()) - {"benchmarks/README.md"}]
    assert not problems, f"{len(problems)} unsourced figures:\n" + "\n".join(problems)


def test_benchmarks_quote_the_sidecars():
    """benchmarks/README.md quotes shipped models' metrics as their sidecars record them: each entry
    listed for it in the allowlist must be in the README and match its sidecar."""
    entries = (yaml.safe_load(ALLOWLIST.read_text()) or {}).get("benchmarks/README.md", [])
    readme = BENCHMARKS.read_text()
    assert entries, "no sidecar figures of benchmarks/README.md are listed"
    problems = [f"{entry['number']}: not in benchmarks/README.md" for entry in entries
                if str(entry["number"]).rstrip("% ") not in readme]
    problems += [f"{entry['number']}: {why}" for entry in entries
                 if not str(entry["source"]).startswith("sidecar:")
                 or (why := source_problem(str(entry["number"]), entry["source"], set(), {}))]
    assert not problems, "\n".join(problems)


GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([\w]+)(?::[^`]*)?`")
GLUE_CALL = re.compile(r"""glue\(\s*(f?)["']([^"']+)["']""")


def test_glued_names_are_glued_in_their_notebook():
    """Every {glue:text} name of a chapter has a glue() call in one of its code cells (an f-string
    name such as f"recall_{region}" covers recall_German), so the build can paste it."""
    problems = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        patterns = [re.escape(name) if not is_f else re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(name))
                    for is_f, name in GLUE_CALL.findall(code)]
        for c in cells:
            if c["cell_type"] != "markdown":
                continue
            for name in GLUE_ROLE.findall("".join(c["source"])):
                if not any(re.fullmatch(p, name) for p in patterns):
                    problems.append(f"{path.name}: {name!r} is pasted but never glued")
    assert not problems, "\n".join(problems)


def test_references_parse_and_keys_are_unique():
    """book/references.bib is valid BibTeX (the book build stops at the first syntax error) with one
    entry per key."""
    from pybtex.database import parse_string

    text = (ROOT / "book" / "references.bib").read_text()
    keys = re.findall(r"^@\w+\{([^,\s]+),", text, re.M)
    assert len(parse_string(text, "bibtex").entries) == len(keys) == len(set(keys))
