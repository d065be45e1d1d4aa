"""Melodies and piano rolls: notes, event grids, transposition, MIDI/ABC/MusicXML in and out.

Time is counted in **quarter notes** everywhere here (``Note.start``, ``Note.duration``); seconds
appear only inside MIDI files, which carry their own tempo. The book's models read:

- the **event grid** of a monophonic melody, one token per 16th note (MusicVAE's melody encoding):
  ``REST = 0``, ``HOLD = 1`` (the previous note keeps sounding), and a note-on token
  ``p - PITCH_LOW + 2`` per pitch ``p`` in ``[PITCH_LOW, PITCH_HIGH]``, so ``VOCAB_SIZE = 63``;
- the **piano roll** of polyphonic music: a ``(T, 88)`` array of 0/1 frames (JSB Chorales style).

Every reader checks its input and raises `musiclab.errors.BadInputError` naming the file and the
problem (missing, empty, huge, corrupt, polyphonic where a melody is needed, out of range).

Chapter: notebooks/01_music_as_data.ipynb
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pretty_midi

from . import fileio
from .errors import BadInputError

STEPS_PER_QUARTER = 4
REST, HOLD = 0, 1
PITCH_LOW, PITCH_HIGH = 36, 96  # C2..C7, inclusive
VOCAB_SIZE = PITCH_HIGH - PITCH_LOW + 1 + 2
MAX_BYTES = 20_000_000
MIDI_SUFFIXES = (".mid", ".midi")
MELODY_SUFFIXES = MIDI_SUFFIXES + (".abc", ".xml", ".musicxml", ".mxl")
# Performed melodies overlap by a few milliseconds (legato); overlaps shorter than this (a 32nd
# note, in quarters) are trimmed instead of being called polyphonic.
LEGATO_TOLERANCE = 0.125
_EPS = 1e-6


class Note(NamedTuple):
    """One note: MIDI ``pitch``, ``start`` and ``duration`` in quarter notes, MIDI ``velocity``."""

    pitch: int
    start: float
    duration: float
    velocity: int = 80

    @property
    def end(self) -> float:
        return self.start + self.duration


def _by_time(notes) -> list[Note]:
    return sorted(notes, key=lambda n: (n.start, n.pitch))


# Tokens and event grids -----------------------------------------------------------------------

def pitch_to_token(pitch: int) -> int:
    """Return the note-on token of MIDI ``pitch``: ``pitch - PITCH_LOW + 2``."""
    if not PITCH_LOW <= pitch <= PITCH_HIGH:
        raise BadInputError(f"pitch {pitch}: outside the melody range [{PITCH_LOW}, {PITCH_HIGH}]")
    return int(pitch) - PITCH_LOW + 2


def token_to_pitch(token: int) -> int:
    """Return the MIDI pitch of a note-on ``token`` (REST and HOLD have none)."""
    if not 2 <= token < VOCAB_SIZE:
        raise BadInputError(f"token {token}: not a note-on token (expected 2..{VOCAB_SIZE - 1})")
    return int(token) + PITCH_LOW - 2


def _round_step(x: float) -> int:
    # Round half up, not half to even: a note at 2.5 steps must move like one at 3.5.
    return int(np.floor(x + 0.5 + _EPS))


def notes_to_grid(notes: Sequence[Note], steps_per_quarter: int = STEPS_PER_QUARTER) -> np.ndarray:
    """Encode a monophonic melody as an event grid.

    Notes are snapped to the nearest step; a note shorter than a step still gets one step. If
    snapping makes a note start inside the previous one, the previous one is cut short (or dropped
    if both snap to the same step). The grid starts at time 0 and ends with the last note.

    Parameters
    ----------
    notes : sequence of Note
        Monophonic (no note starts before the previous one ends), pitches in the melody range.
    steps_per_quarter : int
        4 = 16th notes.

    Returns
    -------
    grid : ndarray [shape=(T,), dtype=int64]

    Chapter: notebooks/01_music_as_data.ipynb
    """
    notes = _by_time(notes)
    for a, b in zip(notes, notes[1:]):
        if b.start < a.end - _EPS:
            raise BadInputError(f"notes: polyphonic (pitch {b.pitch} at {b.start:g} starts while "
                                f"pitch {a.pitch} still sounds); a melody is needed")
    spans = []
    for n in notes:
        if n.start < -_EPS:
            raise BadInputError(f"notes: negative start time {n.start:g}")
        token, start = pitch_to_token(n.pitch), _round_step(n.start * steps_per_quarter)
        end = max(_round_step(n.end * steps_per_quarter), start + 1)
        if spans and spans[-1][0] == start:
            spans.pop()
        if spans and spans[-1][1] > start:
            spans[-1][1] = start
        spans.append([start, end, token])
    grid = np.full(spans[-1][1] if spans else 0, REST, dtype=np.int64)
    for start, end, token in spans:
        grid[start], grid[start + 1:end] = token, HOLD
    return grid


def check_grid(grid) -> np.ndarray:
    """Check an event grid: a 1-D integer array with tokens in ``[0, VOCAB_SIZE)``. Returns it as
    int64 [shape=(T,)]; anything else raises a `BadInputError` naming the problem.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    grid = np.asarray(grid)
    if grid.ndim != 1 or not np.issubdtype(grid.dtype, np.integer):
        raise BadInputError(f"grid: expected a 1-D integer array, got shape {grid.shape} {grid.dtype}")
    if grid.size and (grid.min() < 0 or grid.max() >= VOCAB_SIZE):
        raise BadInputError(f"grid: tokens must lie in [0, {VOCAB_SIZE}), got {grid.min()}..{grid.max()}")
    return grid.astype(np.int64, copy=False)


def grid_to_notes(grid, steps_per_quarter: int = STEPS_PER_QUARTER, velocity: int = 80) -> list[Note]:
    """Decode an event grid ``[shape=(T,)]`` into notes (inverse of `notes_to_grid` on the grid).

    A HOLD with no note sounding (at the start or after a REST, as a sampled model may produce)
    is read as a rest.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    notes, onset, pitch = [], None, None
    for t, token in enumerate(check_grid(grid).tolist() + [REST]):
        if token == HOLD:
            continue
        if onset is not None:
            notes.append(Note(pitch, onset / steps_per_quarter, (t - onset) / steps_per_quarter, velocity))
        onset, pitch = (t, token_to_pitch(token)) if token != REST else (None, None)
    return notes


def pitch_class_of(name: str) -> int:
    """Pitch class 0..11 of a note name: ``"C" -> 0``, ``"Bb" -> 10``, ``"F#" -> 6``."""
    if not re.fullmatch(r"[A-G](#|b)?", name or ""):
        raise BadInputError(f"note name {name!r}: expected a letter A-G with an optional # or b")
    return ("C D EF G A B".index(name[0]) + {"#": 1, "b": -1}.get(name[1:], 0)) % 12


def transpose_notes(notes: Sequence[Note], semitones: int) -> list[Note]:
    """Shift every pitch by ``semitones``; BadInputError if one leaves MIDI's 0..127."""
    out = [n._replace(pitch=n.pitch + int(semitones)) for n in notes]
    if bad := [n.pitch for n in out if not 0 <= n.pitch <= 127]:
        raise BadInputError(f"transpose by {semitones}: pitch {bad[0]} leaves the MIDI range 0..127")
    return out


def grid_pitch_range(grid) -> tuple[int, int] | None:
    """Return the ``(lowest, highest)`` MIDI pitch in a grid, or None if it holds no note."""
    onsets = (g := check_grid(grid))[g >= 2]
    return (int(onsets.min()) + PITCH_LOW - 2, int(onsets.max()) + PITCH_LOW - 2) if onsets.size else None


def transpose_grid(grid, semitones: int) -> np.ndarray:
    """Shift the note-on tokens of ``grid [shape=(T,)]`` by ``semitones``; same length.

    Raises BadInputError if a pitch would leave ``[PITCH_LOW, PITCH_HIGH]``.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    out = check_grid(grid).copy()
    span = grid_pitch_range(out)
    if span and not (PITCH_LOW <= span[0] + semitones and span[1] + semitones <= PITCH_HIGH):
        raise BadInputError(f"transpose by {semitones}: pitches {span[0]}..{span[1]} would leave "
                            f"the melody range [{PITCH_LOW}, {PITCH_HIGH}]")
    out[out >= 2] += int(semitones)
    return out


def sounding_tokens(grid) -> np.ndarray:
    """Return the note-on token of the note sounding at each step of ``grid [shape=(T,)]``.

    REST where nothing sounds; a HOLD after a REST (or at the start) is silence, as in
    `grid_to_notes`. Example: ``[5, 1, 0, 1, 7] -> [5, 5, 0, 0, 7]``.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    grid = check_grid(grid)
    steps = np.arange(len(grid))
    last_event = np.maximum.accumulate(np.where(grid != HOLD, steps, -1)) if grid.size else steps
    return np.where(last_event >= 0, grid[np.maximum(last_event, 0)], REST)


def slice_grid(grid, n_bars: int, steps_per_bar: int = 16, hop_bars: int = 1,
               min_notes: int | None = None) -> np.ndarray:
    """Cut a grid into windows of ``n_bars`` bars that start on bar lines (every ``hop_bars``).

    Rules, after MusicVAE's melody extraction: a window is **dropped** if it runs past the end of
    the grid, holds a silence longer than one bar, or has fewer than ``min_notes`` notes (default
    2 per bar). A window that opens on a HOLD (a note tied over the bar line) is **kept**, with
    that note struck again at step 0, so that every window stands on its own as a melody.

    Parameters
    ----------
    grid : ndarray [shape=(T,)]
    n_bars, hop_bars : int
    steps_per_bar : int
        16 = a 4/4 bar of 16th notes (MusicVAE uses 16 whatever the meter).
    min_notes : int or None

    Returns
    -------
    windows : ndarray [shape=(N, n_bars * steps_per_bar), dtype=int64]

    Chapter: notebooks/01_music_as_data.ipynb
    """
    grid = check_grid(grid)
    if min(n_bars, steps_per_bar, hop_bars) < 1:
        raise BadInputError(f"slice_grid: n_bars={n_bars}, steps_per_bar={steps_per_bar}, "
                            f"hop_bars={hop_bars} must all be >= 1")
    min_notes = 2 * n_bars if min_notes is None else min_notes
    width = n_bars * steps_per_bar
    sounding = sounding_tokens(grid)
    silent = (sounding == REST).astype(np.int8)
    windows = []
    for start in range(0, len(grid) - width + 1, hop_bars * steps_per_bar):
        w = grid[start:start + width].copy()
        if w[0] == HOLD:
            w[0] = sounding[start]
        long_silence = _longest_run(silent[start:start + width]) > steps_per_bar
        if np.count_nonzero(w >= 2) >= min_notes and not long_silence:
            windows.append(w)
    return np.stack(windows) if windows else np.zeros((0, width), dtype=np.int64)


def _longest_run(flags: np.ndarray) -> int:
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, flags, 0])))[::2]
    return int(runs.max()) if runs.size else 0


# Piano rolls ----------------------------------------------------------------------------------

def notes_to_pianoroll(notes: Sequence[Note], frames_per_quarter: int = 1, lowest_pitch: int = 21,
                       n_keys: int = 88) -> np.ndarray:
    """Render notes (any polyphony) as a binary piano roll ``[shape=(T, n_keys), dtype=uint8]``.

    A key is on in a frame if a note of that pitch sounds at the frame's start, as in the JSB
    Chorales benchmark (quarter-note frames); notes between two frame starts are not seen. Column 0
    is MIDI ``lowest_pitch`` (21 = A0, the piano's lowest key).

    Chapter: notebooks/01_music_as_data.ipynb
    """
    for n in notes:
        if not lowest_pitch <= n.pitch < lowest_pitch + n_keys:
            raise BadInputError(f"notes: pitch {n.pitch} outside the piano roll's keys "
                                f"{lowest_pitch}..{lowest_pitch + n_keys - 1}")
    def frame(q):  # the first frame starting at or after q quarter notes
        return int(np.ceil(q * frames_per_quarter - _EPS))

    roll = np.zeros((max((frame(n.end) for n in notes), default=0), n_keys), dtype=np.uint8)
    for n in notes:
        roll[frame(n.start):frame(n.end), n.pitch - lowest_pitch] = 1
    return roll


def pianoroll_to_notes(roll, frames_per_quarter: int = 1, lowest_pitch: int = 21,
                       velocity: int = 80) -> list[Note]:
    """Read each run of "on" frames of a key in ``roll [shape=(T, n_keys)]`` as one note.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    roll = np.asarray(roll)
    if roll.ndim != 2:
        raise BadInputError(f"roll: expected shape (T, n_keys), got {roll.shape}")
    edges = np.diff(np.pad(roll > 0, ((1, 1), (0, 0))).astype(np.int8), axis=0)
    notes = []
    for key in range(roll.shape[1]):
        starts, stops = np.flatnonzero(edges[:, key] == 1), np.flatnonzero(edges[:, key] == -1)
        notes += [Note(lowest_pitch + key, int(s) / frames_per_quarter, int(e - s) / frames_per_quarter,
                       velocity) for s, e in zip(starts, stops)]
    return _by_time(notes)


# Files: checks shared by every reader ---------------------------------------------------------

def _check_file(path, max_bytes: int | None) -> Path:
    path, limit = Path(path), MAX_BYTES if max_bytes is None else max_bytes
    if not path.is_file():
        raise BadInputError(f"{path}: file not found")
    size = path.stat().st_size
    if size == 0:
        raise BadInputError(f"{path}: empty file (0 bytes)")
    if size > limit:  # before parsing: a 2 GB "MIDI" file must not be read into memory
        raise BadInputError(f"{path}: file too large ({size:,} bytes > limit {limit:,}); "
                            f"is it really a score or MIDI file?")
    return path


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def make_monophonic(notes: list[Note], name: str) -> list[Note]:
    """``notes`` sorted by start, each cut short where the next one starts if they overlap by at
    most ``LEGATO_TOLERANCE`` quarter notes (legato playing). Notes that start together or overlap
    more raise a `BadInputError` naming ``name`` (the file): a single melody line is needed.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    out: list[Note] = []
    for n in _by_time(notes):
        if out and n.start < out[-1].end - _EPS:
            prev = out[-1]
            if n.start - prev.start < _EPS or prev.end - n.start > LEGATO_TOLERANCE:
                raise BadInputError(f"{name}: polyphonic (pitch {n.pitch} at beat {n.start:g} "
                                    f"overlaps pitch {prev.pitch}); a single melody line is needed")
            out[-1] = prev._replace(duration=n.start - prev.start)
        out.append(n)
    return out


# MIDI -----------------------------------------------------------------------------------------

def notes_to_midi(notes: Sequence[Note], path=None, program: int = 0,
                  qpm: float = 120.0) -> pretty_midi.PrettyMIDI:
    """Build a one-instrument MIDI file (General MIDI ``program``, tempo ``qpm`` quarters/min).

    If ``path`` is given the file is also written there, atomically (a crash never leaves half a
    file behind).

    Chapter: notebooks/01_music_as_data.ipynb
    """
    if not 0 <= program <= 127:
        raise BadInputError(f"program={program}: General MIDI programs are 0..127")
    if not qpm > 0:
        raise BadInputError(f"qpm={qpm}: tempo must be positive")
    midi = pretty_midi.PrettyMIDI(initial_tempo=float(qpm))
    instrument = pretty_midi.Instrument(program=int(program))
    for n in notes:
        if not (0 <= n.pitch <= 127 and 0 <= n.velocity <= 127):
            raise BadInputError(f"notes: pitch {n.pitch} / velocity {n.velocity} outside MIDI's 0..127")
        instrument.notes.append(pretty_midi.Note(int(n.velocity), int(n.pitch), n.start * 60 / qpm,
                                                 n.end * 60 / qpm))
    midi.instruments.append(instrument)
    if path is not None:
        fileio.write_atomic(path, midi.write)
    return midi


def midi_to_notes(path, monophonic: bool = False, max_bytes: int | None = None) -> list[Note]:
    """Read the notes of a MIDI file, timed in quarter notes by the file's own tempo map.

    Drum tracks are skipped; nothing is quantised. With ``monophonic=True`` all tracks together
    must form one melody line (overlaps shorter than ``LEGATO_TOLERANCE`` are trimmed). Files
    larger than ``max_bytes`` (default ``MAX_BYTES``, 20 MB) are refused before parsing.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    path = _check_file(path, max_bytes)
    with open(path, "rb") as f:
        if f.read(4) != b"MThd":
            raise BadInputError(f"{path}: not a MIDI file (no 'MThd' header)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # mido/pretty_midi raise many types for broken files
        raise BadInputError(f"{path}: corrupt or truncated MIDI file ({_describe(exc)})") from None
    # ticks / resolution = quarter notes under any tempo map, exact for on-grid notes
    ticks = [(n.pitch, int(midi.time_to_tick(n.start)), int(midi.time_to_tick(n.end)), n.velocity)
             for inst in midi.instruments if not inst.is_drum for n in inst.notes]
    notes = [Note(int(p), a / midi.resolution, (b - a) / midi.resolution, int(v))
             for p, a, b, v in ticks if b > a]
    if not notes:
        raise BadInputError(f"{path}: no notes (outside drum tracks)")
    return make_monophonic(notes, str(path)) if monophonic else _by_time(notes)


# ABC and MusicXML (via music21) ---------------------------------------------------------------

def split_abc_tunes(text: str) -> list[str]:
    """Split an ABC tune book into tunes; each starts at its ``X:`` line."""
    return [t for t in re.split(r"(?m)^(?=X:)", text) if t.startswith("X:")]


def score_to_notes(score, name: str, monophonic: bool) -> list[Note]:
    """Return the notes of a music21 Score or Part: ties merged (in place), grace notes skipped.

    A pickup (anacrusis) is moved right by the missing part of its bar, so that bar lines fall on
    multiples of the bar length and `slice_grid` cuts at real bar lines. With ``monophonic=True``
    several voices or a chord raise BadInputError "polyphonic"; ``name`` goes into messages.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    from music21 import chord, stream

    parts = list(score.parts) if isinstance(score, stream.Score) and score.parts else [score]
    parts = [p for p in parts if p.recurse().notes.first() is not None]
    if monophonic and len(parts) > 1:
        raise BadInputError(f"{name}: polyphonic ({len(parts)} voices); a single melody line is needed")
    notes = []
    for part in parts:
        first_bar = part.recurse().getElementsByClass(stream.Measure).first()
        shift = float(first_bar.paddingLeft) if first_bar is not None else 0.0
        part.stripTies(inPlace=True)  # in place: a copy costs a third of the parse time
        for n in part.flatten().notes:
            if n.duration.isGrace or n.quarterLength <= 0:
                continue
            pitches = dict.fromkeys(p.midi for p in (n.pitches if isinstance(n, chord.Chord) else (n.pitch,)))
            if monophonic and len(pitches) > 1:
                raise BadInputError(f"{name}: polyphonic (a chord at beat {float(n.offset):g}); "
                                    f"a single melody line is needed")
            velocity = int(n.volume.velocity or 80) if n.volume is not None else 80
            notes += [Note(p, float(n.offset) + shift, float(n.quarterLength), velocity) for p in pitches]
    if not notes:
        raise BadInputError(f"{name}: no notes")
    return make_monophonic(notes, name) if monophonic else _by_time(notes)


def parse_with_music21(source, name: str, **kwargs):
    """``music21.converter.parse(source, **kwargs)`` with its warnings silenced: any failure
    becomes a `BadInputError` naming ``name`` (corrupt or not valid), and an Opus (a file of
    several tunes) gives its first score.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    from music21 import converter, stream

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parse(source, **kwargs)
    except Exception as exc:  # music21 fails in many ways on broken input
        raise BadInputError(f"{name}: corrupt or not valid {kwargs.get('format', 'score')} "
                            f"({_describe(exc)})") from None
    return score.scores[0] if isinstance(score, stream.Opus) else score


def abc_to_notes(text: str, monophonic: bool = True, name: str = "ABC text") -> list[Note]:
    """Read the notes of one ABC tune (the first, if ``text`` holds several) with music21.

    Ties are merged, grace notes and rests skipped; an ``X:`` line is added if missing. With
    ``monophonic=True`` chords raise BadInputError "polyphonic". ``name`` goes into messages.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    if not text.strip():
        raise BadInputError(f"{name}: empty ABC text")
    if len(text) > MAX_BYTES:
        raise BadInputError(f"{name}: ABC text too large ({len(text):,} characters > {MAX_BYTES:,})")
    tunes = split_abc_tunes(text)
    score = parse_with_music21(tunes[0] if tunes else "X:1\n" + text, name, format="abc")
    return score_to_notes(score, name, monophonic)


def read_melody(path_or_abc_text, max_bytes: int | None = None) -> list[Note]:
    """Read a monophonic melody from a MIDI, ABC or MusicXML file, or from ABC text.

    The format follows the extension (.mid .midi .abc .xml .musicxml .mxl); a string holding a
    newline or starting with ``X:`` is read as ABC text. Files larger than ``max_bytes`` (default
    ``MAX_BYTES``) are refused before parsing; several voices or chords raise "polyphonic".

    Chapter: notebooks/01_music_as_data.ipynb
    """
    if isinstance(path_or_abc_text, str) and ("\n" in path_or_abc_text or path_or_abc_text.startswith("X:")):
        return abc_to_notes(path_or_abc_text)
    path = Path(path_or_abc_text)
    suffix = path.suffix.lower()
    if suffix not in MELODY_SUFFIXES:
        raise BadInputError(f"{path}: unknown melody format {suffix or '(no extension)'!r}; "
                            f"expected one of {', '.join(MELODY_SUFFIXES)}")
    if suffix in MIDI_SUFFIXES:
        return midi_to_notes(path, monophonic=True, max_bytes=max_bytes)
    path = _check_file(path, max_bytes)
    if suffix == ".abc":
        return abc_to_notes(path.read_bytes().decode("utf-8", errors="replace"), name=str(path))
    # forceSource: parse the file itself, never a music21 pickle cached from an earlier version
    return score_to_notes(parse_with_music21(str(path), str(path), forceSource=True), str(path), True)
