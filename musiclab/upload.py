"""Evaluate one piece: read an upload (MIDI, ABC, MusicXML or a recording), then report what the
book's evaluators say about it.

- `read_piece`: a file or its bytes -> a monophonic event grid, read through the one door for your
  files (`datasets.user`), with a `BadInputError` naming the problem (corrupt, empty, huge,
  polyphonic with where and how many notes, too short, damaged, silent, unpitched).
- `evaluate_piece`: the chapter-11 multi-task network's predicted region, tune type, meter and mode;
  where the piece falls in a corpus region's distribution of each MGEval feature (chapter 13); its
  8-note copy rate against that region's training tunes; the chapter-12 per-note surprise under the
  melody RNN, with likelier alternatives.
- `evaluator_widget`: the same behind a FileUpload and a corpus dropdown; bad uploads show their
  message in the widget, never a traceback.

Chapter: notebooks/13_evaluating_generative_models.ipynb
"""
from __future__ import annotations

import functools
import html
import tempfile
from pathlib import Path

import numpy as np

from . import audio, datasets, metrics, plot, symbolic, transcription
from .datasets import user
from .errors import BadInputError

MAX_BARS = 256  # 4/4 bars of 16th notes; evaluation time grows with the length
MAX_AUDIO_S = 120.0  # pitch tracking takes about 0.3 s per 32 bars
MIN_AUDIO_S = 1.0  # a melody of a few notes
SUFFIXES = user.MELODY_SUFFIXES + user.AUDIO_SUFFIXES
REFERENCE_PIECES = 400  # corpus tunes per region that a piece is compared with (hash order)


# Reading an upload ----------------------------------------------------------------------------------


def read_piece(source, name: str, qpm: float = 120.0, melody: str = "single") -> np.ndarray:
    """Read an uploaded melody (a path, or the file's bytes with its file ``name``) into an event
    grid [shape=(T,)].

    Formats follow the extension of ``name``: MIDI, ABC, MusicXML (`datasets.user.read_melody`,
    with its limits and the polyphony rule ``melody``) or a recording (WAV, FLAC, OGG, MP3:
    `datasets.user.read_recording`, pitch-tracked by `transcription.wav_to_notes`, timed at ``qpm``
    quarter notes per minute). Refused with a `BadInputError` that names the problem: unknown format;
    missing, a folder or unreadable; empty; too large; corrupt; polyphonic (how many notes sound at
    once and where); a recording shorter than ``MIN_AUDIO_S`` (1 s) or longer than ``MAX_AUDIO_S``
    (120 s), damaged, silent or unpitched; pitches outside C2..C7; longer than ``MAX_BARS`` bars.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise BadInputError(f"{name}: unknown format {suffix or '(no extension)'!r}; upload one of "
                            f"{', '.join(SUFFIXES)}")
    audio_file = suffix in user.AUDIO_SUFFIXES
    if isinstance(source, (str, Path)):
        source = symbolic.check_file(source, max_bytes=float("inf") if audio_file else None).read_bytes()
    data = bytes(source)
    if not data:
        raise BadInputError(f"{name}: empty file (0 bytes)")
    with tempfile.TemporaryDirectory(prefix="musiclab-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            if audio_file:
                y, _ = user.read_recording(path, transcription.WAV_SR, MIN_AUDIO_S, "the evaluator needs a melody of "
                                           "a few notes", max_duration_s=MAX_AUDIO_S)
                grid, _ = user.melody_grid(transcription.wav_to_notes(y, transcription.WAV_SR, qpm, str(path)),
                                           str(path), melody)
            else:
                grid, _ = user.read_melody(path, melody)
        except BadInputError as error:  # the readers name the temporary file: name the upload instead
            raise BadInputError(str(error).replace(str(path), name)) from None
    if len(grid) > MAX_BARS * 16:
        raise BadInputError(f"{name}: too long ({len(grid) / 16:.0f} bars of 4/4 > {MAX_BARS}); "
                            f"cut it to at most {MAX_BARS} bars")
    return grid


# The corpus a piece is compared with -----------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def corpus_reference(region: str, n_bars: int | None = None) -> dict:
    """The training tunes of one region (up to ``REFERENCE_PIECES``, in a fixed hash order), cut to
    their first ``n_bars`` bars (16 steps each; shorter tunes whole), so that counts such as the
    note count compare like with like: their MGEval features, each tune's mean distance to the
    others per feature, and their 8-note runs (whole tunes). Cached per (region, n_bars).

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    tunes = [t for t in datasets.load_folk("train", progress=False) if t.region == region]
    if len(tunes) < 10:
        raise BadInputError(f"corpus {region!r}: choose one of {', '.join(datasets.REGIONS)}")
    tunes = sorted(tunes, key=lambda t: datasets.unit_hash("reference:" + t.id))[:REFERENCE_PIECES]
    features = metrics.set_features([t.grid[:16 * n_bars] if n_bars else t.grid for t in tunes])
    typical = {}
    for name, values in features.items():
        flat = values.reshape(len(values), -1)
        distances = np.sqrt(((flat[:, None] - flat[None]) ** 2).sum(-1))
        typical[name] = np.sort(distances.sum(1) / (len(flat) - 1))  # mean distance to the others
    ngrams = metrics.ngram_index([t.grid for t in tunes], n=8)
    return {"region": region, "n_bars": n_bars, "n_tunes": len(tunes), "features": features,
            "typical_distance": typical, "ngrams": ngrams}


def feature_positions(grid, reference: dict) -> dict:
    """Where a piece falls in a corpus, per MGEval feature:

    - scalar features: its value and its percentile among the corpus tunes' values;
    - every feature: its mean distance to the corpus tunes, and the percentage of corpus tunes that
      are *more* unusual (a larger mean distance to the others): near 0 = an outlier.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    piece = metrics.piece_features(grid)
    out = {}
    for name in metrics.FEATURES:
        corpus = reference["features"][name]
        distance = float(np.sqrt(((corpus.reshape(len(corpus), -1) - np.ravel(piece[name])) ** 2).sum(1)).mean())
        row = {"mean_distance": distance,
               "more_unusual_pct": float(100 * np.mean(reference["typical_distance"][name] > distance))}
        if name in metrics.SCALAR_FEATURES:
            row |= {"value": float(piece[name]), "percentile": float(100 * np.mean(corpus < piece[name])
                                                                     + 50 * np.mean(corpus == piece[name])),
                    "corpus_median": float(np.median(corpus))}
        out[name] = row
    return out


# The report -------------------------------------------------------------------------------------------


def evaluate_piece(grid, corpus: str = "German", top: int = 5) -> dict:
    """What the book's evaluators say about one melody (an event grid [shape=(T,)]):

    - ``predictions``: {task: [(label, probability), ...] likeliest first} from the chapter-11
      multi-task network (region, tune type, meter, mode);
    - ``features``: `feature_positions` against the training tunes of region ``corpus``, cut to
      the piece's length in whole bars;
    - ``copy_rate``: the share of the piece's 8-note pitch runs found in those tunes (NaN if it has
      fewer than 8 notes);
    - ``surprise``: `musiclab.surprise.note_surprise` under the melody RNN conditioned on ``corpus``:
      typicality and the ``top`` most surprising notes with likelier alternatives.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    from . import surprise
    from .models import mtnn

    grid = symbolic.check_grid(grid)
    if not np.any(grid >= 2):
        raise BadInputError("evaluate_piece: the piece has no notes")
    reference = corpus_reference(corpus, int(np.ceil(len(grid) / 16)))
    model = mtnn.load_pretrained()
    probabilities = model.predict_proba([grid])
    predictions = {task: sorted(zip(model.labels[task], map(float, p[0])), key=lambda lp: -lp[1])
                   for task, p in probabilities.items()}
    melody_regions = surprise.load_melody_rnn().config.regions
    return {"corpus": corpus, "n_reference_tunes": reference["n_tunes"], "n_steps": len(grid),
            "predictions": predictions, "features": feature_positions(grid, reference),
            "copy_rate": metrics.copy_rate([grid], reference["ngrams"], n=8),
            "surprise": surprise.note_surprise(grid, region=corpus if corpus in melody_regions else None, top=top)}


def report_text(report: dict) -> str:
    """The report as a few lines of plain text (the widget and the static gallery show it).

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    task_names = {"region": "region", "tune_type": "tune type", "meter": "meter", "mode": "mode"}
    lines = [f"length {report['n_steps'] / 16:.1f} bars of 4/4; compared with the same length of "
             f"{report['n_reference_tunes']} {report['corpus']} training tunes"]
    for task, ranked in report["predictions"].items():
        lines.append(f"{task_names.get(task, task):9s} " + ", ".join(f"{label} {p:.0%}" for label, p in ranked[:3]))
    typicality = report["surprise"]["typicality"]
    line = f"typicality: {typicality['nats_per_step']:.2f} nats per step under the melody RNN"
    if "more_typical_than_pct" in typicality:
        line += f", more typical than {typicality['more_typical_than_pct']:.0f}% of held-out tunes"
    lines.append(line)
    copied = report["copy_rate"]
    lines.append("8-note runs found in the corpus: " + ("n/a (fewer than 8 notes)" if np.isnan(copied)
                                                         else f"{copied:.0%}"))
    for name, row in report["features"].items():
        if "value" in row:
            unit = metrics.FEATURE_UNITS[name]
            lines.append(f"{name.replace('_', ' ')}: {row['value']:.2f} {unit} (corpus median "
                         f"{row['corpus_median']:.2f}, percentile {row['percentile']:.0f})")
    unusual = [name.replace("_", " ") for name, row in report["features"].items() if row["more_unusual_pct"] < 5]
    lines.append("unusual for the corpus (fewer than 5% of its tunes are further out): "
                 + (", ".join(unusual) if unusual else "nothing"))
    for note in report["surprise"]["notes"]:
        alternatives = ", ".join(f"{plot.pitch_name(p)} ({q:.0%})" for p, q in note["alternatives"]) or "none likelier"
        lines.append(f"surprising: {plot.pitch_name(note['pitch'])} at quarter note {note['step'] / 4:g} "
                     f"({note['surprise_nats']:.1f} nats); likelier: {alternatives}")
    return "\n".join(lines)


def report_figure(grid, report: dict):
    """The melody with its most surprising notes in red (and the likeliest alternative as a
    hollow box), the network's predictions, and where each feature falls in the corpus.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig = plt.figure(figsize=(10, 5.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1])
    ax_notes = top.subplots()
    notes = symbolic.grid_to_notes(grid)
    plot.plot_notes(notes, ax=ax_notes, title=f"surprising notes (red) and the likeliest alternative (box), "
                                               f"melody RNN conditioned on {report['corpus']}")
    for item in report["surprise"]["notes"]:
        note = next(n for n in notes if n.start == item["step"] / symbolic.STEPS_PER_QUARTER)
        ax_notes.add_patch(Rectangle((note.start, note.pitch - 0.4), note.duration, 0.8, color="tab:red"))
        if item["alternatives"]:
            pitch = item["alternatives"][0][0]
            ax_notes.add_patch(Rectangle((note.start, pitch - 0.4), note.duration, 0.8, fill=False,
                                         edgecolor="tab:red", linewidth=1.2))
            low, high = ax_notes.get_ylim()
            ax_notes.set_ylim(min(low, pitch - 1.5), max(high, pitch + 1.5))
    ax_tasks, ax_features = bottom.subplots(1, 2, width_ratios=[1, 1.2])
    rows = [(f"{task}: {label}", p) for task, ranked in report["predictions"].items() for label, p in ranked[:2]]
    ax_tasks.barh(range(len(rows)), [p for _, p in rows], color="tab:blue")
    ax_tasks.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=8)
    ax_tasks.invert_yaxis()
    ax_tasks.set(xlim=(0, 1), xlabel="probability", title="multi-task network")
    names = list(report["features"])
    ax_features.barh(range(len(names)), [report["features"][n]["more_unusual_pct"] for n in names], color="tab:green")
    ax_features.set_yticks(range(len(names)), [n.replace("_", " ") for n in names], fontsize=8)
    ax_features.invert_yaxis()
    ax_features.axvline(5, color="k", linestyle=":")
    ax_features.set(xlim=(0, 100), xlabel=f"% of {report['corpus']} tunes further out (low = unusual)",
                    title="where it falls in the corpus")
    return fig


# The upload widget -------------------------------------------------------------------------------------


def evaluate_upload(content: bytes, name: str, corpus: str = "German") -> tuple[str, np.ndarray | None, dict | None]:
    """`read_piece` then `evaluate_piece`, for the widget: ``(html, grid, report)``. A bad upload
    gives ``(html with the BadInputError's message, None, None)`` instead of an exception.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    try:
        grid = read_piece(content, name)
        report = evaluate_piece(grid, corpus)
    except BadInputError as error:
        return (f"<p style='color:#b00'><b>Cannot evaluate {html.escape(name)}.</b> "
                f"{html.escape(str(error))}</p>"), None, None
    return f"<pre>{html.escape(report_text(report))}</pre>", grid, report


def load_evaluators() -> None:
    """Load what `evaluate_piece` needs once (the multi-task network, the melody RNN and its
    held-out typicality scores), so that each later evaluation takes milliseconds, and run the WAV
    pitch tracker on half a second of A4 (its first call imports and compiles librosa's pYIN and
    onset code: about 2 s).

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    from . import surprise
    from .models import mtnn

    mtnn.load_pretrained()
    surprise.load_melody_rnn()
    surprise.typicality_reference()
    sr = transcription.WAV_SR
    transcription.wav_to_notes(0.3 * np.sin(2 * np.pi * 440 * np.arange(sr // 2) / sr).astype(np.float32), sr)


def evaluator_widget(corpora=datasets.REGIONS):
    """Upload a melody (MIDI, ABC, MusicXML or a recording), pick a corpus, read the report. A bad upload
    shows its `BadInputError` message in the widget, never a traceback. The evaluators are loaded
    when the widget is built (`load_evaluators`), not at the first upload.

    Chapter: notebooks/13_evaluating_generative_models.ipynb
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    load_evaluators()
    upload = w.FileUpload(accept=",".join(SUFFIXES), description="your melody")
    corpus = w.Dropdown(options=list(corpora), description="corpus")
    out = w.Output()

    def redraw(*_):
        if not upload.value:
            return
        item = upload.value[0] if isinstance(upload.value, tuple) else next(iter(upload.value.values()))
        name = item["name"] if "name" in item else item["metadata"]["name"]
        with out:
            out.clear_output(wait=True)
            text, grid, report = evaluate_upload(bytes(item["content"]), name, corpus.value)
            display(w.HTML(text))
            if report is None:
                return
            fig = report_figure(grid, report)
            display(fig)
            plt.close(fig)
            display(audio.player(audio.render_notes(symbolic.grid_to_notes(grid), program=73), audio.DEFAULT_SR))

    upload.observe(redraw, "value")
    corpus.observe(redraw, "value")
    return w.VBox([w.HBox([upload, corpus]), out])
