"""The book's data: real folk melodies and Bach chorales from the corpus inside music21.

Nothing is downloaded. Two sets are built once from ``music21/corpus``, in parallel, and cached in
`config.cache_dir` / ``data`` as ``.npz`` (arrays) + ``.json`` (labels), never as pickle:

- **folk melodies** (`load_folk`): the Essen folk songs (German collections, Chinese ``han1/2``,
  Lorraine ``lot``, Luxembourg ``lux``, Irish ``irl``, Haydn's Scottish songs), O'Neill's 1850 Irish
  tunes, Ryan's Mammoth Collection (American fiddle tunes) and Aird's Scottish airs. Each is a
  16th-note event grid (`symbolic.notes_to_grid`) with labels from its ABC header: region,
  collection, title, meter (``M:``), key and mode (``K:``), tune type (``R:``: reel, jig, ...).
  Repeats are not written out: a grid holds each strain once, as printed.
- **JSB-like chorales** (`load_chorales`): Bach's four-part chorales as quarter-note, 88-key piano
  rolls transposed to C major or C minor, prepared the way the JSB Chorales benchmark was
  (Boulanger-Lewandowski et al., 2012). This is **not** the identical split of the published
  benchmark: the pieces are music21's and the splits come from our own hash.

Splits are fixed by a hash of each item's id (`split_of`): every run, on every machine, gets the
same train/valid/test sets. Quick mode (`config.get_mode`) builds a hash-chosen subset of about
``QUICK_PER_REGION`` tunes per region and ``QUICK_CHORALES`` chorales.

Chapter: notebooks/01_music_as_data.ipynb
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import re
import time
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import config, fileio, symbolic
from ..errors import BadInputError

log = logging.getLogger(__name__)

CACHE_VERSION = 2
QUICK_PER_REGION = 150
QUICK_CHORALES = 60
SPLITS = ("train", "valid", "test")
REGIONS = ("German", "Chinese", "Irish", "American", "Scottish", "Lorraine", "Luxembourg")
_ESSEN_REGIONS = {"han": "Chinese", "lot": "Lorraine", "lux": "Luxembourg", "irl": "Irish",
                  "folkHaydn": "Scottish"}  # every other Essen collection is German
# spellings in R: fields and titles -> one short name; "slip jig" before "jig"
_TUNE_TYPES = [("slip jig", r"slip ?jig"), ("jig", r"jig"), ("reel", r"reel"), ("hornpipe", r"hornpipe"),
               ("strathspey", r"strathspey"), ("waltz", r"waltz"), ("polka", r"polka"),
               ("march", r"march|quick ?step"), ("clog", r"clog"), ("fling", r"fling"), ("slide", r"slide"),
               ("minuet", r"minuet"), ("gavotte", r"gavotte"), ("walkaround", r"walkaround"),
               ("air", r"\bair\b")]
_MODES = {"": "major", "maj": "major", "ion": "major", "m": "minor", "min": "minor", "aeo": "minor",
          "dor": "dorian", "mix": "mixolydian", "phr": "phrygian", "lyd": "lydian", "loc": "locrian"}
_REGION_OF_FOLDER = {"oneills1850": "Irish", "ryansMammoth": "American", "airdsAirs": "Scottish"}
_LABELS = ("id", "region", "collection", "title", "meter", "key", "mode", "tune_type")


def split_of(item_id: str, valid: float = 0.1, test: float = 0.1) -> str:
    """Return ``"train"``, ``"valid"`` or ``"test"`` for an item, fixed by a SHA-1 hash of its id.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    if not (valid >= 0 and test >= 0 and valid + test <= 1):
        raise BadInputError(f"split_of: valid={valid}, test={test} must be >= 0 and sum to <= 1")
    u = unit_hash("split:" + item_id)
    return "test" if u < test else "valid" if u < test + valid else "train"


def split_ranked(item_ids, valid: float = 0.1, test: float = 0.1) -> list[str]:
    """Splits for a user's own few items (files, segments), fixed by the same hash as `split_of`.

    With few items a threshold on the hash can leave a split empty, so the items are ranked by it
    instead: the first ``round(valid * n)`` validate (at least one when n >= 2), the next
    ``round(test * n)`` test (at least one when n >= 10), the rest train (a share of 0 gives none).
    Returns one split per id.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    item_ids = list(item_ids)
    n = len(item_ids)
    n_valid = max(round(valid * n), 1 if n >= 2 and valid > 0 else 0)
    n_test = max(round(test * n), 1 if n >= 10 and test > 0 else 0)
    ranked = sorted(range(n), key=lambda i: unit_hash("split:" + item_ids[i]))
    splits = ["train"] * n
    for rank, i in enumerate(ranked[:n_valid + n_test]):
        splits[i] = "valid" if rank < n_valid else "test"
    return splits


def unit_hash(text: str) -> float:
    """A number in [0, 1) fixed by ``text`` (the first 48 bits of its SHA-1): the same on every
    run and machine, unlike ``hash()``, which Python salts per process. Splits and any fixed
    "random" order of items use it, with a prefix per purpose (``"split:" + id``).

    Chapter: notebooks/01_music_as_data.ipynb
    """
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:12], 16) / 16 ** 12


# Folk melodies: tunes and their ABC headers ---------------------------------------------------

@dataclass
class Tune:
    """One melody with its labels; ``grid`` is its 16th-note event grid, int64 [shape=(T,)]."""

    id: str  # stable, e.g. "essen/han1/12", "oneills1850/626", "ryansMammoth/AcaciaReel"
    region: str  # one of REGIONS ("user" for your own files, or their class folder's name)
    collection: str  # file or folder name in the corpus, e.g. "han1", "oneills1850"
    title: str
    meter: str  # "6/8", "4/4" (for C), "2/2" (for C|) or "free"
    key: str  # tonic: "G", "Bb", "F#"
    mode: str  # major, minor, dorian, mixolydian, phrygian, lydian, locrian
    tune_type: str  # reel, jig, slip jig, hornpipe, ...; Essen: the song's function; or ""
    grid: np.ndarray = field(repr=False)
    split: str = ""

    @property
    def notes(self) -> list[symbolic.Note]:
        return symbolic.grid_to_notes(self.grid)

    @property
    def steps_per_bar(self) -> int:
        """16th-note steps in one bar of ``meter`` (16 when the meter is free)."""
        return _steps_per_bar(self.meter)


def _steps_per_bar(meter: str) -> int:
    m = re.fullmatch(r"(\d+)/(\d+)", meter)
    return int(m[1]) * 16 // int(m[2]) if m else 16


def _field(header: str, name: str) -> str:
    m = re.search(rf"(?m)^{name}:(.*)$", header)
    return re.sub(r"%.*", "", m[1]).strip() if m else ""


def _repair_dos_text(text: str) -> str:
    """Undo DOS-era mojibake in some Essen files.

    Their umlauts were once cp437 bytes that got converted to UTF-8 as if they were Latin-1, so "ü"
    (cp437 0x81) arrives as the control character U+0081 and "ß" (0xE1) as "á". In a file that
    holds such control characters, map U+0080-U+009F and "á" back through cp437; other accented
    letters in those files are genuine and stay.
    """
    if not re.search(r"[\x80-\x9f]", text):
        return text
    return re.sub(r"[\x80-\x9f\xe1]", lambda m: m[0].encode("latin-1").decode("cp437"), text)


def _normalise_meter(text: str) -> str:
    text = text.replace(" ", "")
    meter = {"C": "4/4", "C|": "2/2"}.get(text, text)
    return meter if re.fullmatch(r"\d+/\d+", meter) else "free"  # "none", Essen's "FREI4/4"


def _normalise_key(text: str) -> tuple[str, str, str]:
    """Return (tonic, mode, K: value for music21) of an ABC ``K:`` field."""
    text = text.strip()
    if text.lower().startswith("hp"):  # Highland bagpipe scale
        return "A", "mixolydian", "HP"
    text = re.sub(r"^([EA])s\b", r"\1b", re.sub(r"^H\b", "B", text))  # German: H = B, Es = Eb, As = Ab
    m = re.match(r"([A-Ga-g])([#b]?)\s*([A-Za-z]*)", text)
    if not m:
        return "C", "major", "C"
    word = m[3].lower()
    return m[1].upper() + m[2], _MODES.get(word[:3] if len(word) >= 3 else word, "major"), text


def _tune_type(r_field: str, title: str, essen: bool) -> str:
    if essen:  # Essen's R: is the song's function in German ("Liebes - Lied"), "???" if unknown
        return re.sub(r"^(\?+|y+)$", "", r_field.strip(' ]"'))  # "???" and "yyy" mean unknown
    for text in (r_field, title):
        for name, pattern in _TUNE_TYPES:
            if re.search(pattern, text, re.IGNORECASE):
                return name
    return ""


def _corpus_root() -> Path:
    import music21
    return Path(music21.__file__).parent / "corpus"


def _folk_jobs() -> list[dict]:
    """Split every tune book at its X: lines and read the headers (fast: no music21)."""
    root, jobs, seen = _corpus_root(), [], set()
    books = [p for p in sorted((root / "essenFolksong").glob("*.abc")) if not p.stem.startswith("test")]
    for folder in ("oneills1850", "ryansMammoth", "airdsAirs"):
        books += sorted((root / folder).glob("*.abc"))
    for path in books:
        source = path.parent.name
        tunes = symbolic.split_abc_tunes(_repair_dos_text(path.read_text(encoding="utf-8", errors="replace")))
        for text in tunes:
            header, _, body = text.partition("\nK:")
            key_line, _, body = body.partition("\n")
            number = _field(header, "X") or "0"
            region, collection = _REGION_OF_FOLDER.get(source), source
            if source == "essenFolksong":
                region = next((r for k, r in _ESSEN_REGIONS.items() if path.stem.startswith(k)), "German")
                item_id, collection = f"essen/{path.stem}/{number}", path.stem
            elif source == "oneills1850":  # tune numbers, as in the book; some files overlap
                item_id = f"{source}/{number}"
            elif source == "ryansMammoth":
                item_id = f"{source}/{path.stem}" + (f"/{number}" if len(tunes) > 1 else "")
            else:
                item_id = f"{source}/{path.stem}/{number}"
            duplicate = item_id in seen  # O'Neill's files overlap: a repeat is counted, not parsed
            seen.add(item_id)
            tonic, mode, k_value = _normalise_key(re.sub(r"%.*", "", key_line))
            title, meter, unit = _field(header, "T"), _field(header, "M"), _field(header, "L")
            # music21 gets the note content only: the labels come from the header read here
            abc = "X:1\n" + "".join(f"{k}:{v}\n" for k, v in (("M", meter), ("L", unit), ("K", k_value)) if v)
            jobs.append(dict(id=item_id, region=region, collection=collection, title=title,
                             meter=_normalise_meter(meter), key=tonic, mode=mode,
                             tune_type=_tune_type(_field(header, "R"), title, source == "essenFolksong"),
                             infer_mode=source == "essenFolksong", abc=abc + body, duplicate=duplicate))
    return jobs


def _parse_folk_job(job: dict) -> tuple[dict, np.ndarray | None, str]:
    """Parse one tune's notes (in a worker process); return (labels, grid or None, drop reason)."""
    if job["duplicate"]:
        return job, None, "duplicate"
    try:
        notes = symbolic.abc_to_notes(job["abc"], name=job["id"])
        grid = symbolic.notes_to_grid(notes)
    except BadInputError as exc:
        message = str(exc)
        reason = next((r for r in ("polyphonic", "no notes", "range") if r in message), "parse error")
        return job, None, "pitch range" if reason == "range" else reason
    except Exception:  # music21 fails in many ways on odd ABC; such a tune is dropped and counted
        return job, None, "parse error"
    if len(grid) < 2 * _steps_per_bar(job["meter"]):
        return job, None, "too short"
    if job["infer_mode"]:
        # Essen's K: names the tonic ("do") with its major key signature and writes a minor third
        # as an accidental, so the mode is read from the notes: which third above it sounds longer.
        tonic = symbolic.pitch_class_of(job["key"])
        seconds = np.bincount([n.pitch % 12 for n in notes], [n.duration for n in notes], minlength=12)
        job = {**job, "mode": "minor" if seconds[(tonic + 3) % 12] > seconds[(tonic + 4) % 12] else "major"}
    return {k: job[k] for k in _LABELS}, grid, ""


def _parallel_map(fn, jobs: list, desc: str, progress: bool, chunksize: int = 16) -> list:
    n_workers = min(os.cpu_count() or 1, max(1, len(jobs) // chunksize))
    pool = multiprocessing.Pool(n_workers) if n_workers > 1 else contextlib.nullcontext()
    results = []
    with pool, tqdm(total=len(jobs), desc=desc, disable=not progress, unit="piece") as bar:
        for result in pool.imap(fn, jobs, chunksize=chunksize) if n_workers > 1 else map(fn, jobs):
            results.append(result)
            bar.update()
    return results


def _quick_subset(jobs: list[dict], group: str, per_group: int) -> set[str]:
    """The ids of the first ``per_group`` jobs of each group, in the order of a hash of their ids."""
    by_group: dict[str, set[str]] = {}
    for job in jobs:
        by_group.setdefault(job[group], set()).add(job["id"])

    def rank(item_id):  # salted differently from split_of, so the subset keeps the split shares
        return unit_hash("quick:" + item_id)

    return {i for ids in by_group.values() for i in sorted(ids, key=rank)[:per_group]}


# Caches: .npz arrays + .json labels, the .json written last (its presence means a whole cache) -

def _data_dir() -> Path:
    path = config.cache_dir() / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cache_stem(name: str, quick_size: int) -> Path:
    mode = config.get_mode()
    return _data_dir() / f"{name}-{mode}{quick_size if mode == 'quick' else ''}-v{CACHE_VERSION}"


def _save_cache(stem: Path, arrays: list[np.ndarray], items: list[dict], report: dict, dtype) -> None:
    offsets = np.cumsum([0] + [len(a) for a in arrays])
    data = np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)
    fileio.write_atomic(stem.with_suffix(".npz"), lambda tmp: np.savez_compressed(tmp, data=data, offsets=offsets))
    meta = {"version": CACHE_VERSION, "items": items, "report": report}
    fileio.write_atomic(stem.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=1), encoding="utf-8"))


def _load_cache(stem: Path) -> tuple[list[np.ndarray], dict] | None:
    try:
        meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as f:
            data, offsets = f["data"], f["offsets"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):  # cut short, damaged
        log.warning("data cache %s is unreadable; rebuilding it", stem)
        return None
    if meta.get("version") != CACHE_VERSION or len(offsets) != len(meta["items"]) + 1:
        return None
    return [data[a:b] for a, b in zip(offsets[:-1], offsets[1:])], meta


def _check_split(split) -> None:
    if split is not None and split not in SPLITS:
        raise BadInputError(f"split={split!r}: expected one of {SPLITS} or None")


# Building and loading, shared by both sets ---------------------------------------------------

def _build(name: str, quick_size: int, force: bool, progress: bool, list_jobs, parse, group: str,
           report_by: str, dtype, chunksize: int = 16) -> dict:
    """Parse ``list_jobs()`` in parallel (a hash-chosen ``quick_size`` per ``group`` in quick mode),
    count the drops by reason, cache the rest; return the report."""
    stem = _cache_stem(name, quick_size)
    if not force and (cached := _load_cache(stem)) is not None:
        return {**cached[1]["report"], "cached": True}
    t0 = time.perf_counter()
    jobs, drops = list_jobs(), Counter()
    if config.get_mode() == "quick":
        chosen = _quick_subset(jobs, group, quick_size)
        jobs = [job for job in jobs if job["id"] in chosen]
    items, arrays = [], []
    for item, array, reason in _parallel_map(parse, jobs, f"parsing {name}", progress, chunksize):
        if array is None:
            drops[reason] += 1
        else:
            items.append(item | {"split": split_of(item["id"])})
            arrays.append(array)
    report = {"mode": config.get_mode(), name: len(items),
              f"by_{report_by}": dict(Counter(i[report_by] for i in items)),
              "by_split": dict(Counter(i["split"] for i in items)), "drops": dict(drops),
              "build_s": round(time.perf_counter() - t0, 1)}
    log.info("%s: kept %d, dropped %s", name, len(items), dict(drops))
    _save_cache(stem, arrays, items, report, dtype)
    return {**report, "cached": False}


def _load(name: str, quick_size: int, build, progress: bool) -> tuple[list[np.ndarray], dict]:
    stem = _cache_stem(name, quick_size)
    if (cached := _load_cache(stem)) is None:
        build(progress=progress, force=True)
        cached = _load_cache(stem)
    return cached


def build_folk(progress: bool = True, force: bool = False) -> dict:
    """Build (or find) the folk-melody cache of the current mode; return its report.

    The report holds ``tunes``, ``by_region``, ``by_split``, ``drops`` (count per reason: parse
    error, polyphonic, too short (< 2 bars), pitch range (outside ``symbolic.PITCH_LOW..HIGH``),
    no notes, duplicate (a tune number twice in O'Neill's files)) and ``build_s``.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    return _build("tunes", QUICK_PER_REGION, force, progress, _folk_jobs, _parse_folk_job, "region", "region",
                  np.int8)  # tokens < 63 fit in int8


def load_folk(split: str | None = None, regions=None, progress: bool = True) -> list[Tune]:
    """Return the folk melodies (building the cache on first use), optionally of one split/regions.

    ``split`` is "train", "valid", "test" or None (all); ``regions`` any of `REGIONS`.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    _check_split(split)
    if regions is not None:
        regions = {regions} if isinstance(regions, str) else set(regions)
        if unknown := regions - set(REGIONS):
            raise BadInputError(f"regions: unknown {sorted(unknown)}; choose from {REGIONS}")
    grids, meta = _load("tunes", QUICK_PER_REGION, build_folk, progress)
    return [Tune(**item, grid=grid.astype(np.int64)) for item, grid in zip(meta["items"], grids)
            if (split is None or item["split"] == split) and (regions is None or item["region"] in regions)]


def region_counts(tunes) -> dict[str, int]:
    """Return the number of tunes per region, largest first."""
    return dict(Counter(t.region for t in tunes).most_common())


def summarize(tunes) -> list[dict]:
    """Return one row per region: tunes, per split, median bars, commonest meter/mode/tune type.

    Unlabelled tunes (an empty field) do not count towards "commonest"; a region with no label at
    all shows "-". Print the rows with `format_table`.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    rows = []
    for region in region_counts(tunes):
        group = [t for t in tunes if t.region == region]
        splits = Counter(t.split for t in group)
        commonest = {k: (Counter(getattr(t, k) for t in group if getattr(t, k)).most_common(1) or [("-",)])[0][0]
                     for k in ("meter", "mode", "tune_type")}
        rows.append({"region": region, "tunes": len(group), **{s: splits.get(s, 0) for s in SPLITS},
                     "median_bars": float(np.median([len(t.grid) / t.steps_per_bar for t in group])),
                     **commonest})
    return rows


def format_table(rows: list[dict]) -> str:
    """Format rows (dicts with the same keys) as a plain-text table."""
    if not rows:
        return "(empty)"
    cells = [list(rows[0])] + [[f"{v:.1f}" if isinstance(v, float) else str(v) for v in r.values()]
                               for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths)] + lines[1:])


# Bach chorales, JSB-like ----------------------------------------------------------------------

@dataclass
class Chorale:
    """A four-part chorale as a quarter-note piano roll, uint8 [shape=(T, 88)] (MIDI 21..108), in C."""

    id: str  # e.g. "bach/bwv10.7"
    title: str  # e.g. "BWV 10.7" (music21's files carry no titles)
    mode: str  # "major" (now in C major) or "minor" (now in C minor)
    roll: np.ndarray = field(repr=False)
    split: str = ""
    key: str = ""  # the key before transposition, e.g. "G minor"

    @property
    def notes(self) -> list[symbolic.Note]:
        return symbolic.pianoroll_to_notes(self.roll)

    @property
    def original_roll(self) -> np.ndarray:
        """``roll`` moved back to the key Bach wrote it in (``key``), undoing `_parse_chorale`'s shift."""
        return symbolic.transpose_pianoroll(self.roll, -_shift_to_c(symbolic.pitch_class_of(self.key.split()[0])))


def _shift_to_c(tonic_pc: int) -> int:
    """Semitones that move tonic ``tonic_pc`` to C by the smaller interval (-6..5), so voices stay in range."""
    return (-tonic_pc + 6) % 12 - 6


def _parse_chorale(job: dict) -> tuple[dict, np.ndarray | None, str]:
    """Parse one chorale (in a worker): four voices, key found by music21's analysis, moved to C."""
    from music21 import converter

    stem = Path(job["path"]).stem
    try:
        score = converter.parse(job["path"], forceSource=True)
        if len([p for p in score.parts if p.recurse().notes.first() is not None]) != 4:
            return job, None, "not 4 voices"
        key = score.analyze("key")  # Krumhansl-Schmuckler; modal chorales get the nearer of major/minor
        notes = symbolic.transpose_notes(symbolic.score_to_notes(score, stem, monophonic=False),
                                         _shift_to_c(key.tonic.pitchClass))
        roll = symbolic.notes_to_pianoroll(notes, frames_per_quarter=1, lowest_pitch=21, n_keys=88)
    except Exception:  # a file music21 cannot read is dropped and counted
        return job, None, "parse error"
    item = {"id": job["id"], "title": re.sub(r"^bwv", "BWV ", stem), "mode": key.mode,
            "key": f"{key.tonic.name.replace('-', 'b')} {key.mode}"}
    return item, roll, ""


def _chorale_jobs() -> list[dict]:
    paths = sorted(p for p in (_corpus_root() / "bach").iterdir() if p.suffix in (".mxl", ".xml", ".krn"))
    return [{"id": f"bach/{p.stem}", "path": str(p), "collection": "bach"} for p in paths]


def build_chorales(progress: bool = True, force: bool = False) -> dict:
    """Build (or find) the chorale cache of the current mode; return its report (like `build_folk`).

    Chapter: notebooks/01_music_as_data.ipynb
    """
    return _build("chorales", QUICK_CHORALES, force, progress, _chorale_jobs, _parse_chorale,
                  "collection", "mode", np.uint8, chunksize=4)


def load_chorales(split: str | None = None, progress: bool = True) -> list[Chorale]:
    """Return the JSB-like Bach chorales (building the cache on first use), optionally one split.

    Each ``roll`` is uint8 [shape=(T, 88)]: one frame per quarter note, column 0 = MIDI 21 (A0),
    in C major or C minor. Not the identical split of the published JSB Chorales benchmark.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    _check_split(split)
    rolls, meta = _load("chorales", QUICK_CHORALES, build_chorales, progress)
    return [Chorale(**item, roll=roll.reshape(-1, 88)) for item, roll in zip(meta["items"], rolls)
            if split is None or item["split"] == split]


def build_all(progress: bool = True, force: bool = False) -> dict:
    """Build both caches of the current mode (``force``: even if present); return reports and times.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    t0 = time.perf_counter()
    report = {"mode": config.get_mode(), "cache": str(_data_dir()),
              "folk": build_folk(progress, force), "chorales": build_chorales(progress, force)}
    return report | {"total_s": round(time.perf_counter() - t0, 1)}
