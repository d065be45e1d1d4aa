"""Your own files: the one door through which `musiclab` reads them.

Every ``python -m musiclab train NAME --data PATH`` and the chapter-13 upload evaluator read your
files here, by kind:

- melodies (MIDI, ABC, MusicXML): `read_melodies` (a folder), `read_classes` (a folder with one
  subfolder per class), `read_melody` (one file);
- piano rolls (MIDI, ``.npz`` of (T, 88) 0/1 arrays): `read_pianoroll_folder`, `read_pianorolls`;
- recordings (WAV, FLAC, OGG, MP3): `read_audio_segments` (a file or folder, cut into segments),
  `read_recordings` (a file or folder), `read_recording` (one file).

The same rules for every kind: one list of file suffixes per kind (`MELODY_SUFFIXES`,
`PIANOROLL_SUFFIXES`, `AUDIO_SUFFIXES`); limits checked *before* a file is parsed or an array is
allocated (`symbolic.MAX_BYTES` on disk and unpacked, `symbolic.MAX_QUARTERS`, `symbolic.MAX_NOTES`,
`symbolic.MAX_ABC_BARS`, `MAX_FRAMES` per piano roll, `MAX_AUDIO_S` per recording); one polyphony
rule for melodies (`symbolic.melody_line`: chords refused, or reduced to their top note with
``melody="top"``); and in a folder an unusable file is skipped, never fatal: what was skipped and
why is printed (`report_skipped`) and returned as ``(file, reason)`` pairs for the weights' sidecar.

Chapter: notebooks/01_music_as_data.ipynb
"""
from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from .. import audio, recording, symbolic
from ..errors import BadInputError
from .corpus import SPLITS, Tune, split_ranked

MELODY_SUFFIXES = symbolic.MELODY_SUFFIXES
PIANOROLL_SUFFIXES = symbolic.MIDI_SUFFIXES + (".npz",)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
MAX_FRAMES = symbolic.MAX_QUARTERS  # piano-roll frames are quarter notes, as in the JSB chorales
MAX_AUDIO_S = 600.0


# Paths, folders and the report of skipped files ------------------------------------------------

def _existing(data, what: str) -> Path:
    if data is None or not str(data).strip():
        raise BadInputError(f"data path {str(data or '')!r} is empty; give a file or folder of {what}")
    path = Path(data)
    if not path.exists():
        raise BadInputError(f"{path}: no such file or folder")
    return path


def _folder(data, what: str) -> Path:
    path = _existing(data, what)
    if not path.is_dir():
        raise BadInputError(f"{path}: not a folder (expected a folder of {what})")
    return path


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(e for e in folder.iterdir() if not e.name.startswith("."))
    except OSError as error:
        raise BadInputError(f"{folder}: cannot be read ({error.strerror or error})") from None


def _reason(error: BadInputError, file: Path) -> str:
    return str(error).replace(f"{file}: ", "")


def _first_process() -> bool:
    return os.environ.get("RANK", "0") == "0"  # torchrun numbers its processes; one of them reports


def report_skipped(skipped: list[tuple[str, str]]) -> None:
    """Print the skipped files and why, one a line, to stderr (in the first process only, under
    ``torchrun``).

    Chapter: notebooks/01_music_as_data.ipynb
    """
    if skipped and _first_process():
        print(f"skipped {len(skipped)} unusable file(s):", file=sys.stderr)
        for name, reason in skipped:
            print(f"  {name}: {reason}", file=sys.stderr)


def _by_split(items: list, ids: list[str], **shares) -> dict[str, list]:
    splits = split_ranked(ids, **shares)
    return {split: [item for item, s in zip(items, splits) if s == split] for split in SPLITS}


def _counts(by_split: dict) -> str:
    return ", ".join(f"{len(v)} {k}" for k, v in by_split.items())


# Melodies --------------------------------------------------------------------------------------

def melody_grid(notes, name: str, melody: str = "single") -> tuple[np.ndarray, list]:
    """Notes -> one melody line (`symbolic.melody_line` with rule ``melody``) -> event grid
    [shape=(T,)]. Returns ``(grid, chords reduced)``; chords (with ``melody="single"``), pitches
    outside ``symbolic.PITCH_LOW..PITCH_HIGH`` and a line without notes raise a `BadInputError`
    naming ``name``.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    line, chords = symbolic.melody_line(notes, name, melody)
    try:
        grid = symbolic.notes_to_grid(line)
    except BadInputError as error:  # "pitch 20: outside the melody range": say which file
        raise BadInputError(f"{name}: {error}") from None
    if not np.any(grid >= 2):
        raise BadInputError(f"{name}: no notes")
    return grid, chords


def read_melody(path, melody: str = "single") -> tuple[np.ndarray, list]:
    """One melody file (MIDI, ABC, MusicXML; `symbolic.read_notes` with its limits) as an event grid
    [shape=(T,)] by `melody_grid`. Returns ``(grid, chords reduced)``.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    return melody_grid(symbolic.read_notes(path), str(path), melody)


def _read_melody_folder(folder: Path, melody: str, label: str) -> tuple[list[Tune], list, list]:
    """The melody files of one folder as Tunes of region ``label``, split by file; plus the skipped
    files ``(name, reason)`` and the files whose chords were reduced ``(name, count)``."""
    tunes, skipped, reduced = [], [], []
    for file in _entries(folder):
        if file.suffix.lower() not in MELODY_SUFFIXES:
            continue
        try:
            grid, chords = read_melody(file, melody)
        except BadInputError as error:
            skipped.append((file.name, _reason(error, file)))
            continue
        if chords:
            reduced.append((file.name, len(chords)))
        tunes.append(Tune(f"user/{folder.name}/{file.name}", label, folder.name, file.stem, "", "", "", "", grid))
    for tune, split in zip(tunes, split_ranked([t.id for t in tunes])):
        tune.split = split
    return tunes, skipped, reduced


def _add_reduced(description: str, reduced: list[tuple[str, int]]) -> str:
    """Print how many chords were reduced to their top note, and add it to the description."""
    if not reduced:
        return description
    files = ", ".join(f"{name} {count}" for name, count in reduced)
    text = f"top note kept in {sum(c for _, c in reduced)} chord(s) of {len(reduced)} file(s) ({files})"
    if _first_process():
        print(text, file=sys.stderr)
    return f"{description}; {text}"


def read_melodies(data, melody: str = "single") -> tuple[dict[str, list[Tune]], str, list[tuple[str, str]]]:
    """The melody files (MIDI, ABC, MusicXML) in folder ``data``, for a symbolic model.

    Each file is one `Tune` (region "user", no labels), split by file with `corpus.split_ranked` (a
    validation file as soon as there are two). ``melody`` is the rule for chords (`MELODY_RULES`):
    ``"single"`` skips a file that has any, ``"top"`` keeps the highest note of each and the
    description says how many chords were reduced in which files. Unusable files are printed and
    skipped; fewer than two usable files raise ``BadInputError``.

    Returns ``(tunes by split, description for the sidecar, skipped files as (name, reason))``.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    folder = _folder(data, "melody files (MIDI, ABC, MusicXML)")
    tunes, skipped, reduced = _read_melody_folder(folder, melody, "user")
    report_skipped(skipped)
    if len(tunes) < 2:
        raise BadInputError(f"{folder}: {len(tunes)} usable melody file(s) ({len(skipped)} skipped); training "
                            "needs at least 2 (one is held out to validate)")
    splits = {split: [t for t in tunes if t.split == split] for split in SPLITS}
    description = f"your melodies in {data}: {len(tunes)} files ({_counts(splits)}, split by file), {len(skipped)} skipped"
    return splits, _add_reduced(description, reduced), skipped


def read_classes(data, min_per_class: int = 2, melody: str = "single", n_classes: int | None = None
                 ) -> tuple[dict[str, list[Tune]], list[str], str, list[tuple[str, str]]]:
    """Labelled melodies for a classifier or a style transfer: ``data/<class>/*.mid|*.abc|*.xml...``.

    Each immediate subfolder of ``data`` is one class, named after it; its files are read as in
    `read_melodies` (``melody``: the rule for chords) and split by file per class (every class with
    two files has one to validate, with ten one to test). A tune's class is its ``region``. Files
    directly in ``data``, unusable files and classes with fewer than ``min_per_class`` usable files
    are printed and skipped; fewer than two classes left (or, with ``n_classes``, another number of
    subfolders) raise ``BadInputError``.

    Returns ``(tunes by split, class names sorted, description for the sidecar, skipped files)``.

    Chapter: notebooks/11_multitask_evaluation.ipynb
    """
    root = _folder(data, "class subfolders of melody files (PATH/<class>/*.mid)")
    entries = _entries(root)
    folders = [e.name for e in entries if e.is_dir()]
    if n_classes is not None and len(folders) != n_classes:
        raise BadInputError(f"{root}: {len(folders)} subfolder(s) {folders}; exactly {n_classes} are needed, "
                            f"one per class (PATH/<class>/*.mid)")
    by_class, skipped, reduced = {}, [], []
    for entry in entries:
        if not entry.is_dir():
            skipped.append((entry.name, "not in a class subfolder (put it in PATH/<class>/)"))
            continue
        try:
            tunes, bad, chords = _read_melody_folder(entry, melody, entry.name)
        except BadInputError as error:  # an unreadable class folder
            skipped.append((f"{entry.name}/", _reason(error, entry)))
            continue
        skipped += [(f"{entry.name}/{name}", reason) for name, reason in bad]
        reduced += [(f"{entry.name}/{name}", count) for name, count in chords]
        if len(tunes) < min_per_class:
            reason = f"class with {len(tunes)} usable file(s); a class needs at least {min_per_class} (one validates)"
            skipped.append((f"{entry.name}/", reason))
            continue
        by_class[entry.name] = tunes
    report_skipped(skipped)
    if len(by_class) < 2:
        raise BadInputError(f"{root}: {len(by_class)} usable class folder(s) {sorted(by_class)} "
                            f"({len(skipped)} file(s) or folder(s) skipped); training needs at least 2: one "
                            f"subfolder per class, each with at least {min_per_class} usable melody files")
    tunes = [t for group in by_class.values() for t in group]
    splits = {split: [t for t in tunes if t.split == split] for split in SPLITS}
    per_class = ", ".join(f"{name} {len(group)}" for name, group in by_class.items())
    description = (f"your labelled melodies in {data}: {len(by_class)} classes from its subfolders ({per_class} "
                   f"files; {_counts(splits)}, split by file within each class), {len(skipped)} skipped")
    return splits, sorted(by_class), _add_reduced(description, reduced), skipped


# Piano rolls -----------------------------------------------------------------------------------

def _npz_shapes(path: Path) -> None:
    """Check every array of an .npz from its header, before numpy allocates it: a zip, no pickled
    Python objects, at most ``MAX_FRAMES`` frames."""
    with open(path, "rb") as f:
        if f.read(2) != b"PK":
            raise BadInputError(f"{path}: not a readable .npz file (no zip header); save rolls with numpy.savez")
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    headers[member.filename.removesuffix(".npy")] = read(f)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise BadInputError(f"{path}: not a readable .npz file ({type(error).__name__}: {error})") from None
    for key, (shape, _, dtype) in headers.items():
        if dtype.hasobject:
            raise BadInputError(f"{path}: array {key!r} holds Python objects, not numbers; save 0/1 arrays")
        if len(shape) == 2 and shape[0] > MAX_FRAMES:
            raise BadInputError(f"{path}: array {key!r} has {shape[0]:,} frames > limit {MAX_FRAMES:,} (quarter "
                                f"notes); cut it into shorter rolls")


def read_pianorolls(path, n_keys: int = 88) -> list[np.ndarray]:
    """Piano rolls from one file: a MIDI file (quarter-note frames, as the JSB chorales; legato
    releases end on the beat, `symbolic.end_legato_releases`) or an
    ``.npz`` whose every array is one (T, ``n_keys``) roll of 0/1. The limits are checked before
    anything is allocated (`symbolic.midi_to_notes`'s; an .npz's shapes from its header). Returns
    uint8 rolls [shape=(T, n_keys)]; any problem raises ``BadInputError`` naming the file.

    Chapter: notebooks/04_rnn.ipynb
    """
    path = symbolic.check_file(path)
    suffix = path.suffix.lower()
    if suffix not in PIANOROLL_SUFFIXES:
        raise BadInputError(f"{path}: expected a MIDI file (.mid, .midi) or an .npz of (T, {n_keys}) arrays")
    if suffix in symbolic.MIDI_SUFFIXES:
        try:
            notes, n_ended = symbolic.end_legato_releases(symbolic.midi_to_notes(path))
            roll = symbolic.notes_to_pianoroll(notes, n_keys=n_keys)
        except BadInputError as error:  # "notes: pitch 12 outside the piano roll's keys": say which file
            raise BadInputError(f"{path}: {_reason(error, path)}") from None
        if n_ended and _first_process():
            print(f"{path.name}: {n_ended} note(s) held at most a 32nd note past a beat (legato) end on the beat",
                  file=sys.stderr)
        return [roll]
    _npz_shapes(path)
    with np.load(path, allow_pickle=False) as arrays:
        rolls = {key: arrays[key] for key in arrays.files}
    if not rolls:
        raise BadInputError(f"{path}: empty (no arrays in it)")
    out = []
    for key, roll in rolls.items():
        label = f"{path}: {key}" if len(rolls) > 1 else str(path)
        if roll.ndim != 2 or roll.shape[1] != n_keys:
            raise BadInputError(f"{label}: expected shape (T, {n_keys}), got {roll.shape}")
        if not (np.issubdtype(roll.dtype, np.number) or roll.dtype == bool) or not np.isin(roll, (0, 1)).all():
            raise BadInputError(f"{label}: values must be 0 or 1")
        out.append(roll.astype(np.uint8))
    return out


def read_pianoroll_folder(data, n_keys: int = 88) -> tuple[dict[str, list[np.ndarray]], str, list[tuple[str, str]]]:
    """Training data for a polyphonic model: ``train.npz`` and ``valid.npz`` (and, if present,
    ``test.npz``, scored once after training) in folder ``data``, or its MIDI and .npz files (10 % of
    the files validate, at least one, by `corpus.split_ranked`).

    Rolls of fewer than 2 frames are skipped (a model predicts each frame from the ones before), as
    are unusable files; both are printed and returned. Too little left raises ``BadInputError``.

    Returns ``({"train": rolls, "valid": rolls[, "test": rolls]}, description for the sidecar, skipped files)``.

    Chapter: notebooks/04_rnn.ipynb
    """
    folder = _folder(data, "piano rolls (MIDI files, or train.npz and valid.npz)")
    skipped = []

    def usable(name, rolls):
        short = [i for i, roll in enumerate(rolls) if len(roll) < 2]
        if short:
            skipped.append((name, f"{len(short)} roll(s) of fewer than 2 frames (a model predicts each frame "
                                  f"from the ones before)"))
        return [roll for roll in rolls if len(roll) >= 2]

    if (folder / "train.npz").exists():
        if not (folder / "valid.npz").exists():
            raise BadInputError(f"{folder}: has train.npz but no valid.npz")
        splits = [split for split in ("train", "valid", "test") if (folder / f"{split}.npz").exists()]
        rolls = {split: usable(f"{split}.npz", read_pianorolls(folder / f"{split}.npz", n_keys)) for split in splits}
        how = " and ".join(f"{split}.npz" for split in splits)
    else:
        files = [f for f in _entries(folder) if f.suffix.lower() in PIANOROLL_SUFFIXES]
        if not files:
            raise BadInputError(f"{folder}: no train.npz / valid.npz and no MIDI or .npz files")
        by_file = {}
        for file in files:
            try:
                by_file[file.name] = usable(file.name, read_pianorolls(file, n_keys))
            except BadInputError as error:
                skipped.append((file.name, _reason(error, file)))
        by_file = {name: rolls for name, rolls in by_file.items() if rolls}
        if len(by_file) < 2:
            report_skipped(skipped)
            raise BadInputError(f"{folder}: {len(by_file)} usable piano-roll file(s) ({len(skipped)} skipped) cannot "
                                f"be split into train and valid; bring at least 2 MIDI or .npz files")
        files = _by_split(list(by_file), list(by_file), valid=0.1, test=0.0)
        rolls = {split: [r for name in files[split] for r in by_file[name]] for split in ("train", "valid")}
        how = f"{len(by_file)} files split by file"
    report_skipped(skipped)
    for split, found in rolls.items():
        if not found:
            raise BadInputError(f"{folder}: no {split} roll of at least 2 frames ({len(skipped)} file(s) skipped)")
    counts = ", ".join(f"{len(found)} {split}" for split, found in rolls.items())
    description = f"your piano rolls in {data}: {how} ({counts} rolls), {len(skipped)} skipped"
    return rolls, description, skipped


# Recordings ------------------------------------------------------------------------------------

def read_recording(path, sr: int = audio.DEFAULT_SR, min_duration_s: float = recording.MIN_DURATION_S,
                   needed_for: str = "the recording GAN cuts a few seconds of music into training slices",
                   max_duration_s: float = MAX_AUDIO_S) -> tuple[np.ndarray, dict]:
    """Read one recording (WAV, FLAC, OGG, MP3; any rate; mono or stereo): the file checked
    (`symbolic.check_file` with no byte limit; its header by `audio.load_audio`: damaged, truncated,
    longer than ``max_duration_s``), the samples checked on the original rate
    (`recording.check_recording`: NaN, silence, shorter than ``min_duration_s`` (the message ends
    with ``needed_for``), clipping), mixed to mono, resampled to ``sr`` and peak-normalised to
    ``recording.PEAK``.

    Returns ``(y [shape=(n,)] float32 at sr, info)`` with ``info`` the file's rate, channels,
    duration and peak. Every problem raises ``BadInputError`` naming the file.

    Chapter: notebooks/14_end_to_end.ipynb
    """
    path = symbolic.check_file(path, max_bytes=float("inf"))  # a recording is limited by its duration, from its header
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise BadInputError(f"{path}: unknown audio format {path.suffix or '(no extension)'!r}; expected one of "
                            f"{', '.join(AUDIO_SUFFIXES)}")
    y, file_sr = audio.load_audio(path, sr=None, mono=False, max_duration_s=max_duration_s)
    info = {"file_sr": file_sr, "channels": 1 if y.ndim == 1 else len(y), "duration_s": round(y.shape[-1] / file_sr, 3),
            "peak": round(float(np.abs(y).max()), 4)}
    y = recording.check_recording(y, file_sr, str(path), min_duration_s, needed_for)
    if file_sr != sr:
        import librosa

        y = librosa.resample(y, orig_sr=file_sr, target_sr=sr)
    return recording.normalise_peak(y), info


def _audio_files(data) -> tuple[Path, list[Path]]:
    path = _existing(data, "recordings (WAV, FLAC, OGG, MP3)")
    files = [f for f in _entries(path) if f.suffix.lower() in AUDIO_SUFFIXES] if path.is_dir() else [path]
    return path, files


def read_recordings(data, sr: int, min_duration_s: float = recording.MIN_DURATION_S,
                    needed_for: str = "the recording GAN cuts a few seconds of music into training slices"
                    ) -> tuple[list[np.ndarray], list[tuple[str, str]]]:
    """The recordings in ``data`` (one audio file or a folder of them), each read by `read_recording`.
    Unusable files are printed and skipped; none usable raises ``BadInputError``.

    Returns ``(recordings [shape=(n,)] mono at sr, skipped files as (name, reason))``.

    Chapter: notebooks/14_end_to_end.ipynb
    """
    path, files = _audio_files(data)
    recordings, skipped = [], []
    for file in files:
        try:
            recordings.append(read_recording(file, sr, min_duration_s, needed_for)[0])
        except BadInputError as error:
            skipped.append((file.name, _reason(error, file)))
    report_skipped(skipped)
    if not recordings:
        raise BadInputError(f"{path}: no usable recording ({len(files)} audio file(s), {len(skipped)} skipped)")
    return recordings, skipped


def read_audio_segments(data, sr: int, segment_s: float, model: str = "this model"
                        ) -> tuple[dict[str, np.ndarray], str, list[tuple[str, str]]]:
    """The recordings in ``data`` (an audio file or a folder) cut into ``segment_s`` segments for
    an audio model (``model`` names it in messages).

    Each file is read by `read_recording` (at least one segment long), resampled to ``sr`` and cut
    into segments (quiet ones dropped, `recording.slice_recording`). Segments are split by
    `corpus.split_ranked` of ``file#index``, so one recording is enough; segments of one recording
    can land in different splits. Unusable files are printed and skipped; nothing usable, or fewer
    than two segments, raises ``BadInputError``.

    Returns ``(segments by split [shape=(N, n)], description for the sidecar, skipped files)``.

    Chapter: notebooks/14_end_to_end.ipynb
    """
    path, files = _audio_files(data)
    n_samples, ids, segments, skipped = round(segment_s * sr), [], [], []
    for file in files:
        try:
            y, _ = read_recording(file, sr, segment_s, f"{model} learns from {segment_s:g} s segments")
            parts = recording.slice_recording(y, sr, n_samples, n_samples)
        except BadInputError as error:
            skipped.append((file.name, _reason(error, file)))
            continue
        ids += [f"{file.name}#{i}" for i in range(len(parts))]
        segments.append(parts)
    report_skipped(skipped)
    if len(ids) < 2:
        raise BadInputError(f"{path}: no usable recording ({len(files)} audio file(s), {len(skipped)} skipped)"
                            if not ids else f"{path}: one {segment_s:g} s segment is too little; bring more audio")
    segments, splits = np.concatenate(segments), np.array(split_ranked(ids))
    by_split = {split: segments[splits == split] for split in SPLITS}
    return (by_split, f"your recordings in {data}: {len(files) - len(skipped)} files, {segment_s:g} s segments at "
            f"{sr} Hz ({_counts(by_split)}, split by segment), {len(skipped)} skipped", skipped)
