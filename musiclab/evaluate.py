"""Evaluate one piece: read an upload (MIDI, ABC, MusicXML or WAV), then report what the book's
evaluators say about it.

- `read_piece`: a file or its bytes -> a monophonic event grid, with a `BadInputError` naming the
  problem (corrupt, empty, huge, polyphonic with where and how many notes, silent, unpitched).
- `evaluate_piece`: the chapter-8 multi-task network's predicted region, tune type, meter and mode;
  where the piece falls in a corpus region's distribution of each MGEval feature (chapter 10); its
  8-note copy rate against that region's training tunes; the chapter-9 per-note surprise under the
  melody RNN, with likelier alternatives.
- `evaluator_widget`: the same behind a FileUpload and a corpus dropdown; bad uploads show their
  message in the widget, never a traceback.

Chapter: notebooks/10_evaluating_generative_models.ipynb
"""
from __future__ import annotations

import functools
import html
import tempfile
from pathlib import Path

import numpy as np

from . import audio, datasets, metrics, plot, symbolic
from .errors import BadInputError

MAX_UPLOAD_BYTES = 2_000_000  # a 32-bar melody is about 1 kB of MIDI or ABC; a minute of WAV is ~2-5 MB
MAX_WAV_BYTES = 20_000_000
MAX_WAV_SECONDS = 120.0
MAX_BARS = 256  # 4/4 bars of 16th notes; evaluation time grows with the length
SUFFIXES = symbolic.MELODY_SUFFIXES + (".wav",)
WAV_SR = 8000  # pitch tracking rate: C7 (2093 Hz, the top of the melody range) is below its 4 kHz Nyquist
WAV_FRAME = 512  # 64 ms pYIN window at 8 kHz: four periods of C2 (65 Hz), the bottom of the range
FRAMES_PER_STEP = 4  # pYIN hop = a quarter of a 16th-note step: 31.25 ms at 120 qpm
MIN_VOICED_PROB = 0.3  # pYIN marks some frames of white noise voiced, with probabilities near 0.01
ONSET_KW = {"lag": 2, "max_size": 3}  # SuperFlux onset strength: flute vibrato is not taken for onsets
ONSET_DELTA = 0.2  # onset-strength peak height, the envelope normalised to 1
REPEAT_ONSET_DB = 5.0  # onset strength (mean rise of the log-mel bands, dB) that re-strikes a sounding pitch
REFERENCE_PIECES = 400  # corpus tunes per region that a piece is compared with (hash order)


# Reading an upload ----------------------------------------------------------------------------------


def _simultaneous(notes) -> tuple[int, float, list[int]]:
    """The most notes sounding at once (overlaps shorter than `symbolic.LEGATO_TOLERANCE` are
    legato, not polyphony), the first time in quarter notes it happens, and those pitches.
    ``notes`` sorted by start."""
    best, when, pitches, active = 0, 0.0, [], []
    for note in notes:
        active = [m for m in active if m.end - symbolic.LEGATO_TOLERANCE > note.start and m.start < note.start
                  or m.start == note.start] + [note]
        if len(active) > best:
            best, when, pitches = len(active), note.start, sorted(m.pitch for m in active)
    return best, when, pitches


def _melody_from_notes(notes, name: str, beats_per_bar: float = 4.0) -> np.ndarray:
    """Check that ``notes`` form one melody line, then encode them as a grid."""
    notes = sorted(notes, key=lambda n: (n.start, n.pitch))
    count, when, pitches = _simultaneous(notes)
    if count > 1:
        where = f"quarter note {when:g} (bar {int(when // beats_per_bar) + 1} if in 4/4)"
        names = ", ".join(plot.pitch_name(p) for p in pitches)
        raise BadInputError(f"{name}: polyphonic: {count} notes sound at once at {where}: {names}; "
                            f"a single melody line is needed (export only the melody track or voice)")
    try:
        grid = symbolic.notes_to_grid(symbolic.make_monophonic(notes, name))
    except BadInputError as error:  # e.g. "pitch 20: outside the melody range": say which upload
        raise BadInputError(f"{name}: {error}" if not str(error).startswith(name) else str(error)) from None
    if not np.any(grid >= 2):
        raise BadInputError(f"{name}: no notes")
    if len(grid) > MAX_BARS * 16:
        raise BadInputError(f"{name}: too long ({len(grid) / 16:.0f} bars of 4/4 > {MAX_BARS}); "
                            f"cut it to at most {MAX_BARS} bars")
    return grid


def wav_to_notes(y: np.ndarray, sr: int, qpm: float = 120.0, name: str = "audio") -> list[symbolic.Note]:
    """Mono pitch tracking into notes timed in quarter notes at ``qpm``:

    1. resample to ``WAV_SR`` (8 kHz) and run pYIN (`metrics.f0_frames`) over the melody range
       C2..C7 with semitone bins and ``FRAMES_PER_STEP`` (4) frames per 16th-note step, i.e. 64
       frames a bar whatever the tempo (a 32-bar tune: 2,048 frames, about 0.3 s on one core);
    2. frames with a voicing probability of at least ``MIN_VOICED_PROB`` rounded to MIDI pitches,
       median-filtered over 3 frames; an unvoiced gap shorter than a step after a pitched frame is
       a tracker dropout (pYIN loses decaying piano and guitar notes for a frame or two) and
       continues that pitch;
    3. each run of frames on one pitch is a note, split again at SuperFlux onset-strength peaks
       (Boeck & Widmer 2013) of at least ``REPEAT_ONSET_DB`` that lie at least a step less a frame
       from its ends (a repeated note; the swells of a held flute note stay below); runs shorter
       than half a step are glitches and dropped. A change first seen in frame k happened
       between the centres of frames k - 1 and k: notes start at (k - 1/2) hops.

    A polyphonic recording yields its most salient line only. `transcription_scores` measures the
    result against the true notes (benchmarks/bench_metrics.py).

    Chapter: notebooks/10_evaluating_generative_models.ipynb
    """
    import librosa
    import scipy.signal

    y = audio.check_audio(y, sr, name)
    if not qpm > 0:
        raise BadInputError(f"{name}: qpm={qpm}: expected quarter notes per minute > 0")
    if sr != WAV_SR:
        y, sr = librosa.resample(y, orig_sr=sr, target_sr=WAV_SR), WAV_SR
    hop = int(np.clip(round(sr * 60 / qpm / symbolic.STEPS_PER_QUARTER / FRAMES_PER_STEP), 1, WAV_FRAME))
    f0 = metrics.f0_frames(y, sr, fmin_hz=librosa.midi_to_hz(symbolic.PITCH_LOW),
                           fmax_hz=librosa.midi_to_hz(symbolic.PITCH_HIGH), frame_length=WAV_FRAME,
                           hop_length=hop, resolution=1.0, min_voiced_prob=MIN_VOICED_PROB)
    midi = np.where(np.isfinite(f0), np.round(librosa.hz_to_midi(np.nan_to_num(f0, nan=1.0))), -1)
    midi = scipy.signal.medfilt(midi, 3).astype(int)
    for start, end in _runs(midi):
        if midi[start] < 0 and 0 < start and end < len(midi) and end - start < FRAMES_PER_STEP:
            midi[start:end] = midi[start - 1]
    envelope = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop, n_fft=WAV_FRAME, **ONSET_KW)
    peaks = [int(o) for o in librosa.onset.onset_detect(onset_envelope=envelope, sr=sr, hop_length=hop,
                                                        delta=ONSET_DELTA) if o < len(midi)]
    boundaries = [start for start, _ in _runs(midi)] + [len(midi)]
    for peak in peaks:
        if (midi[peak] >= 0 and envelope[peak] >= REPEAT_ONSET_DB
                and min(abs(peak - b) for b in boundaries) >= FRAMES_PER_STEP - 1):
            boundaries.append(peak)
    boundaries = sorted(boundaries)
    frame_quarters = hop / sr * qpm / 60
    notes = [symbolic.Note(int(np.clip(midi[start], symbolic.PITCH_LOW, symbolic.PITCH_HIGH)),
                           max(start - 0.5, 0) * frame_quarters, (end - max(start, 0.5)) * frame_quarters)
             for start, end in zip(boundaries[:-1], boundaries[1:])
             if midi[start] >= 0 and 2 * (end - start) >= FRAMES_PER_STEP]
    if not notes:
        raise BadInputError(f"{name}: no pitched notes found (noise or percussion?); a sung or played "
                            f"melody is needed")
    return notes


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of equal values in ``values`` [shape=(n,)]."""
    edges = np.flatnonzero(np.diff(values)) + 1
    return list(zip(np.r_[0, edges].tolist(), np.r_[edges, len(values)].tolist()))


def transcription_scores(true_grid, grid, tolerance_steps: int = 1) -> dict:
    """How well a transcribed grid recovers a true one (both [shape=(T,)], 16th-note steps):

    - ``onset_precision``, ``onset_recall``, ``onset_f1``: note onsets matched one-to-one, in time
      order, when they differ by at most ``tolerance_steps`` (F1 = 2PR / (P + R); in time order
      the greedy matching is a largest one);
    - ``pitch_accuracy``: the share of matched notes with the true pitch;
    - ``voiced_recall``: the share of steps where a true note sounds and the transcription sounds
      some note (durations; `symbolic.sounding_tokens`).

    Example: true notes at steps 0, 4, 8 and transcribed ones at 1 (same pitch), 8 (another pitch)
    and 12: precision 2/3, recall 2/3, pitch accuracy 1/2.

    Chapter: notebooks/10_evaluating_generative_models.ipynb
    """
    def onsets(g):
        sounding = symbolic.sounding_tokens(g)
        return [(step, sounding[step]) for step in np.flatnonzero(np.asarray(g) >= 2)]

    true, found = onsets(true_grid), onsets(grid)
    i = j = matched = same_pitch = 0
    while i < len(true) and j < len(found):
        if abs(true[i][0] - found[j][0]) <= tolerance_steps:
            matched, same_pitch = matched + 1, same_pitch + int(true[i][1] == found[j][1])
            i, j = i + 1, j + 1
        elif found[j][0] < true[i][0]:
            j += 1
        else:
            i += 1
    precision, recall = matched / max(len(found), 1), matched / max(len(true), 1)
    length = max(len(true_grid), len(grid))
    true_sounding, found_sounding = (np.pad(symbolic.sounding_tokens(g), (0, length - len(g))) for g in (true_grid, grid))
    return {"onset_precision": precision, "onset_recall": recall,
            "onset_f1": 2 * precision * recall / (precision + recall) if matched else 0.0,
            "pitch_accuracy": same_pitch / matched if matched else float("nan"),
            "voiced_recall": float(np.mean(found_sounding[true_sounding >= 2] >= 2)) if len(true) else float("nan")}


def read_piece(source, name: str, qpm: float = 120.0) -> np.ndarray:
    """Read an uploaded melody (a path, or the file's bytes with its file ``name``) into an event
    grid [shape=(T,)].

    Formats follow the extension of ``name``: MIDI, ABC, MusicXML (read by `musiclab.symbolic`) or
    WAV (pitch-tracked by `wav_to_notes`, timed at ``qpm`` quarter notes per minute). Refused with a
    `BadInputError` that names the problem: unknown format; empty; larger than ``MAX_UPLOAD_BYTES``
    (2 MB; WAV ``MAX_WAV_BYTES``, 20 MB, and ``MAX_WAV_SECONDS``, 120 s); corrupt; polyphonic (how
    many notes sound at once and where); silent or unpitched audio; pitches outside C2..C7; longer
    than ``MAX_BARS`` bars.

    Chapter: notebooks/10_evaluating_generative_models.ipynb
    """
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise BadInputError(f"{name}: unknown format {suffix or '(no extension)'!r}; upload one of "
                            f"{', '.join(SUFFIXES)}")
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    limit = MAX_WAV_BYTES if suffix == ".wav" else MAX_UPLOAD_BYTES
    if not data:
        raise BadInputError(f"{name}: empty file (0 bytes)")
    if len(data) > limit:
        raise BadInputError(f"{name}: file too large ({len(data):,} bytes > limit {limit:,}); "
                            f"upload one melody, not a whole album or score")
    if suffix == ".abc":
        return _melody_from_notes(symbolic.abc_to_notes(data.decode("utf-8", errors="replace"), monophonic=False,
                                                        name=name), name)
    with tempfile.TemporaryDirectory(prefix="musiclab-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            if suffix == ".wav":
                y, sr = audio.load_audio(path, sr=WAV_SR, max_duration_s=MAX_WAV_SECONDS)
                return _melody_from_notes(wav_to_notes(y, sr, qpm, name), name)
            if suffix in symbolic.MIDI_SUFFIXES:
                return _melody_from_notes(symbolic.midi_to_notes(path, monophonic=False, max_bytes=limit), name)
            score = symbolic.parse_with_music21(str(path), name, forceSource=True)
            return _melody_from_notes(symbolic.score_to_notes(score, name, monophonic=False), name)
        except BadInputError as error:  # the readers name the temporary file: name the upload instead
            raise BadInputError(str(error).replace(str(path), name)) from None


# The corpus a piece is compared with -----------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def corpus_reference(region: str, n_bars: int | None = None) -> dict:
    """The training tunes of one region (up to ``REFERENCE_PIECES``, in a fixed hash order), cut to
    their first ``n_bars`` bars (16 steps each; shorter tunes whole), so that counts such as the
    note count compare like with like: their MGEval features, each tune's mean distance to the
    others per feature, and their 8-note runs (whole tunes). Cached per (region, n_bars)."""
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

    Chapter: notebooks/10_evaluating_generative_models.ipynb
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

    - ``predictions``: {task: [(label, probability), ...] likeliest first} from the chapter-8
      multi-task network (region, tune type, meter, mode);
    - ``features``: `feature_positions` against the training tunes of region ``corpus``, cut to
      the piece's length in whole bars;
    - ``copy_rate``: the share of the piece's 8-note pitch runs found in those tunes (NaN if it has
      fewer than 8 notes);
    - ``surprise``: `musiclab.surprise.note_surprise` under the melody RNN conditioned on ``corpus``:
      typicality and the ``top`` most surprising notes with likelier alternatives.

    Chapter: notebooks/10_evaluating_generative_models.ipynb
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
    """The report as a few lines of plain text (the widget and the static gallery show it)."""
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
    hollow box), the network's predictions, and where each feature falls in the corpus."""
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


# Leaderboard: sets of generated melodies against held-out music --------------------------------------


def excerpts(grids, n_bars: int, n: int | None = None, seed: int = 0) -> list[np.ndarray]:
    """The first ``n_bars``-bar window (16 steps a bar, `symbolic.slice_grid` rules) of each grid
    that has one, so that every set in a comparison has pieces of one length; with ``n``, a random
    ``n`` of them (fewer if there are fewer), drawn with ``seed``."""
    windows = [w[0] for w in (symbolic.slice_grid(g, n_bars, hop_bars=n_bars) for g in grids) if len(w)]
    if n is None:
        return windows
    picks = np.random.default_rng(seed).choice(len(windows), min(n, len(windows)), replace=False)
    return [windows[i] for i in picks]


def transposed_phrases(tunes, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` random 2-bar phrases of ``tunes``, each transposed at random as the chapter-4 VAE's
    training phrases were (`datasets.GridSliceDataset`), drawn with ``seed``."""
    import torch

    phrases = datasets.GridSliceDataset(tunes, n_bars=2)
    torch.manual_seed(seed)
    picks = np.random.default_rng(seed).choice(len(phrases), min(n, len(phrases)), replace=False)
    return [phrases[int(i)].numpy() for i in picks]


def melody_rnn_samples(conditions, n_bars: int, seed: int = 0, temperature: float = 1.0) -> list[np.ndarray]:
    """One melody of ``n_bars`` bars from the shipped chapter-5 melody RNN per (region, tune type)
    in ``conditions`` (labels it has not seen count as unknown)."""
    from .models import rnn

    model = rnn.load_pretrained("melody-rnn")[0]
    generator = torch_generator(seed)
    return [model.generate(16 * n_bars, region=region, tune_type=tune_type, temperature=temperature,
                           generator=generator) for region, tune_type in conditions]


def vae_prior_samples(n: int, seed: int = 0, temperature: float = 1.0) -> list[np.ndarray]:
    """``n`` 2-bar melodies from the shipped chapter-4 melody VAE: z ~ N(0, I), decoded by sampling."""
    import torch

    from .models import vae

    model = vae.load_pretrained("vae-melody")[0]
    generator = torch_generator(seed)
    z = torch.randn(n, model.config.z_dim, generator=generator)
    return list(model.decode(z, temperature=temperature, generator=generator).numpy())


def next_token_samples(model, n: int, n_bars: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` melodies of ``n_bars`` bars from a chapter-2 next-token model, each started from a
    context of rests (its training windows start so)."""
    import torch

    generator = torch_generator(seed)
    prime = torch.zeros(model.config.context_len, dtype=torch.long)
    return [model.generate(prime, 16 * n_bars, generator=generator).numpy() for _ in range(n)]


def torch_generator(seed: int):
    import torch

    return torch.Generator().manual_seed(seed)


def leaderboard_row(grids, reference_grids, training_index: set, embed=None,
                    transposition_invariant: bool = True) -> dict:
    """One row of chapter 10's leaderboard: a set of melodies against a reference set of the same
    length (held-out real music):

    - ``overlap`` / ``kl``: `metrics.compare_sets` averaged over the nine MGEval features (and
      ``overlap_<feature>`` for each);
    - ``frechet``: `metrics.frechet_distance` in ``embed``'s space (the multi-task network's), if given;
    - ``copy_rate``: `metrics.copy_rate` of 8-note runs against ``training_index`` (an
      `metrics.ngram_index` built with the same ``transposition_invariant``: by default a run
      copied in any key counts);
    - ``notes_per_bar``: mean notes per 16-step bar.

    Chapter: notebooks/10_evaluating_generative_models.ipynb
    """
    comparison = metrics.compare_sets(reference_grids, grids)
    row = {"n": len(grids), "overlap": float(np.mean([c["overlap"] for c in comparison.values()])),
           "kl": float(np.mean([c["kl"] for c in comparison.values()]))}
    row |= {f"overlap_{name}": c["overlap"] for name, c in comparison.items()}
    if embed is not None:
        row["frechet"] = metrics.frechet_distance(embed(reference_grids), embed(grids))
    row["copy_rate"] = metrics.copy_rate(grids, training_index, n=8, transposition_invariant=transposition_invariant)
    row["notes_per_bar"] = float(np.mean([np.count_nonzero(np.asarray(g) >= 2) / (len(g) / 16) for g in grids]))
    return row


LEADERBOARD_COLUMNS = ("overlap", "kl", "frechet", "copy_rate", "notes_per_bar")


def leaderboard(reference_grids, generated: dict, real_draws: list, training_index: set, embed=None) -> dict:
    """Rows ``{name: leaderboard_row}`` for each generated set, plus ``"real (ceiling)"``: the mean
    of the rows of several independent draws of real (training) music, with their standard
    deviation per column under ``"spread"`` (the noise level of each number at this set size) and,
    as its copy rate, the held-out reference's own.

    Chapter: notebooks/10_evaluating_generative_models.ipynb
    """
    if len(real_draws) < 2:
        raise BadInputError(f"leaderboard: the noise level needs >= 2 real draws, got {len(real_draws)}")
    real = [leaderboard_row(grids, reference_grids, training_index, embed) for grids in real_draws]
    ceiling = {key: float(np.mean([r[key] for r in real])) for key in real[0]}
    ceiling["spread"] = {key: float(np.std([r[key] for r in real], ddof=1)) for key in LEADERBOARD_COLUMNS
                         if key in ceiling}
    ceiling["copy_rate"] = metrics.copy_rate(reference_grids, training_index, n=8, transposition_invariant=True)
    rows = {"real (ceiling)": ceiling}
    return rows | {name: leaderboard_row(grids, reference_grids, training_index, embed) for name, grids in generated.items()}


# The upload widget -------------------------------------------------------------------------------------


def evaluate_upload(content: bytes, name: str, corpus: str = "German") -> tuple[str, np.ndarray | None, dict | None]:
    """`read_piece` then `evaluate_piece`, for the widget: ``(html, grid, report)``. A bad upload
    gives ``(html with the BadInputError's message, None, None)`` instead of an exception."""
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
    onset code: about 2 s)."""
    from . import surprise
    from .models import mtnn

    mtnn.load_pretrained()
    surprise.load_melody_rnn()
    surprise.typicality_reference()
    wav_to_notes(0.3 * np.sin(2 * np.pi * 440 * np.arange(WAV_SR // 2) / WAV_SR).astype(np.float32), WAV_SR)


def evaluator_widget(corpora=datasets.REGIONS):
    """Upload a melody (MIDI, ABC, MusicXML or WAV), pick a corpus, read the report. A bad upload
    shows its `BadInputError` message in the widget, never a traceback. The evaluators are loaded
    when the widget is built (`load_evaluators`), not at the first upload.

    Chapter: notebooks/10_evaluating_generative_models.ipynb
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
