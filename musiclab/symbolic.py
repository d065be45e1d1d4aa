"""Melodies and piano rolls: notes, event grids, transposition, MIDI/ABC/MusicXML in and out.

Time is counted in **quarter notes** everywhere in this module (``Note.start``, ``Note.duration``);
seconds appear only inside MIDI files, which carry their own tempo.

Two representations the book's models read:

- the **event grid** of a monophonic melody, one token per 16th note (MusicVAE's melody encoding):
  ``REST = 0``, ``HOLD = 1`` (the previous note keeps sounding), and one note-on token per pitch
  ``p`` in ``[PITCH_LOW, PITCH_HIGH]``: ``p - PITCH_LOW + 2``, so ``VOCAB_SIZE = 63``;
- the **piano roll** of polyphonic music, a ``(T, 88)`` array of 0/1 frames (JSB Chorales style).

Every reader checks its input and raises `musiclab.errors.BadInputError` naming the file and the
problem (missing, empty, huge, corrupt, polyphonic where a melody is needed, out of range).

Chapter: notebooks/01_music_as_data.ipynb
"""
from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pretty_midi

from .errors import BadInputError

STEPS_PER_QUARTER = 4
REST = 0
HOLD = 1
PITCH_LOW = 36   # C2
PITCH_HIGH = 96  # C7, inclusive
VOCAB_SIZE = PITCH_HIGH - PITCH_LOW + 1 + 2
MAX_BYTES = 20_000_000
MIDI_SUFFIXES = (".mid", ".midi")
MELODY_SUFFIXES = MIDI_SUFFIXES + (".abc", ".xml", ".musicxml", ".mxl")
# Performed melodies overlap by a few milliseconds (legato); shorter overlaps than this are
# trimmed instead of being called polyphonic. A 32nd note is far shorter than any written overlap.
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


# Tokens and event grids -----------------------------------------------------------------------

def pitch_to_token(pitch: int) -> int:
    """Return the note-on token of MIDI ``pitch`` (``pitch - PITCH_LOW + 2``).

    Chapter: notebooks/01_music_as_data.ipynb
    """
    if not PITCH_LOW <= pitch <= PITCH_HIGH:
        raise BadInputError(f"pitch {pitch}: outside the melody range [{PITCH_LOW}, {PITCH_HIGH}]")
    return int(pitch) - PITCH_LOW + 2


def token_to_pitch(token: int) -> int:
    """Return the MIDI pitch of a note-on ``token`` (REST and HOLD have none).

    Chapter: notebooks/01_music_as_data.ipynb
    """
    if not 2 <= token < VOCAB_SIZE:
        raise BadInputError(f"token {token}: not a note-on token (expected 2..{VOCAB_SIZE - 1})")
    return int(token) + PITCH_LOW - 2


def _round_step(x: float) -> int:
    # Round half up, not to even: a note at 2.5 steps must not move differently than one at 3.5.
    return int(np.floor(x + 0.5 + _EPS))


def notes_to_grid(notes: Sequence[Note], steps_per_quarter: int = STEPS_PER_QUARTER) -> np.ndarray:
    """Encode a monophonic melody as an event grid.

    Notes are snapped to the nearest step; a note shorter than a step still gets one step. When
    snapping makes a note start inside the previous one, the previous note is cut short (and
    dropped if both snap to the same step). The grid starts at time 0 and ends with the last note.

    Parameters
    ----------
    notes : sequence of Note
        Monophonic: no note may start before the previous one ends.
    steps_per_quarter : int
        Grid resolution; 4 means 16th notes.

    Returns
    -------
    grid : ndarray [shape=(T,), dtype=int64]
        REST, HOLD or note-on tokens.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    notes = sorted(notes, key=lambda n: (n.start, n.pitch))
    for a, b in zip(notes, notes[1:]):
        if b.start < a.end - _EPS:
            raise BadInputError(f"notes: polyphonic (pitch {b.pitch} at {b.start:g} starts while "
                                f"pitch {a.pitch} still sounds); a melody is needed")
    spans = []
    for n in notes:
        if n.start < -_EPS:
            raise BadInputError(f"notes: negative start time {n.start:g}")
        token = pitch_to_token(n.pitch)
        start = _round_step(n.start * steps_per_quarter)
        end = max(_round_step(n.end * steps_per_quarter), start + 1)
        if spans and spans[-1][0] == start:
            spans.pop()
        if spans and spans[-1][1] > start:
            spans[-1][1] = start
        spans.append([start, end, token])
    grid = np.full(spans[-1][1] if spans else 0, REST, dtype=np.int64)
    for start, end, token in spans:
        grid[start] = token
        grid[start + 1:end] = HOLD
    return grid


def _check_grid(grid) -> np.ndarray:
    grid = np.asarray(grid)
    if grid.ndim != 1 or not np.issubdtype(grid.dtype, np.integer):
        raise BadInputError(f"grid: expected a 1-D integer array, got shape {grid.shape} {grid.dtype}")
    if grid.size and (grid.min() < 0 or grid.max() >= VOCAB_SIZE):
        raise BadInputError(f"grid: tokens must lie in [0, {VOCAB_SIZE}), got {grid.min()}..{grid.max()}")
    return grid.astype(np.int64, copy=False)


def grid_to_notes(grid, steps_per_quarter: int = STEPS_PER_QUARTER, velocity: int = 80) -> list[Note]:
    """Decode an event grid into notes (the inverse of `notes_to_grid` for on-grid notes).

    A HOLD with no note sounding (after a REST, or at the start, as a sampled model may produce)
    is read as a rest.

    Parameters
    ----------
    grid : ndarray [shape=(T,)]
    steps_per_quarter : int
    velocity : int

    Returns
    -------
    notes : list of Note

    Chapter: notebooks/01_music_as_data.ipynb
    """
    grid = _check_grid(grid)
    notes, onset, pitch = [], None, None

    def close(t):
        if onset is not None:
            notes.append(Note(pitch, onset / steps_per_quarter, (t - onset) / steps_per_quarter, velocity))

    for t, token in enumerate(grid.tolist()):
        if token == HOLD:
            continue
        close(t)
        onset, pitch = (t, token_to_pitch(token)) if token != REST else (None, None)
    close(len(grid))
    return notes


def transpose_notes(notes: Sequence[Note], semitones: int) -> list[Note]:
    """Shift every pitch by ``semitones``; BadInputError if one leaves the MIDI range 0..127.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    out = [n._replace(pitch=n.pitch + int(semitones)) for n in notes]
    bad = [n.pitch for n in out if not 0 <= n.pitch <= 127]
    if bad:
        raise BadInputError(f"transpose by {semitones}: pitch {bad[0]} leaves the MIDI range 0..127")
    return out


def grid_pitch_range(grid) -> tuple[int, int] | None:
    """Return ``(lowest, highest)`` MIDI pitch of a grid's notes, or None if it has no notes.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    grid = _check_grid(grid)
    onsets = grid[grid >= 2]
    if onsets.size == 0:
        return None
    return int(onsets.min()) + PITCH_LOW - 2, int(onsets.max()) + PITCH_LOW - 2


def transpose_grid(grid, semitones: int) -> np.ndarray:
    """Shift every note-on token of ``grid`` by ``semitones`` (same length, REST/HOLD kept).

    Raises BadInputError if a pitch would leave ``[PITCH_LOW, PITCH_HIGH]``.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    grid = _check_grid(grid)
    span = grid_pitch_range(grid)
    if span and not (PITCH_LOW <= span[0] + semitones and span[1] + semitones <= PITCH_HIGH):
        raise BadInputError(f"transpose by {semitones}: pitches {span[0]}..{span[1]} would leave "
                            f"the melody range [{PITCH_LOW}, {PITCH_HIGH}]")
    out = grid.copy()
    out[out >= 2] += int(semitones)
    return out


def slice_grid(grid, n_bars: int, steps_per_bar: int = 16, hop_bars: int = 1,
               min_notes: int | None = None) -> np.ndarray:
    """Cut a grid into windows of ``n_bars`` bars that start on bar lines.

    The rules follow MusicVAE's melody extraction: a window is **dropped** if it runs past the end
    of the grid, holds a silence (REST run) longer than one bar, or has fewer than ``min_notes``
    note-ons (default: 2 per bar). A window that opens on a HOLD (a note tied over the bar line)
    is **kept** with that note struck again at step 0, so that every window is a melody that
    stands on its own.

    Parameters
    ----------
    grid : ndarray [shape=(T,)]
    n_bars : int
    steps_per_bar : int
        16 = a 4/4 bar of 16th notes (MusicVAE uses this for every meter).
    hop_bars : int
        Bars between window starts.
    min_notes : int or None

    Returns
    -------
    windows : ndarray [shape=(N, n_bars * steps_per_bar), dtype=int64]

    Chapter: notebooks/01_music_as_data.ipynb
    """
    grid = _check_grid(grid)
    if n_bars < 1 or steps_per_bar < 1 or hop_bars < 1:
        raise BadInputError(f"slice_grid: n_bars={n_bars}, steps_per_bar={steps_per_bar}, "
                            f"hop_bars={hop_bars} must all be >= 1")
    min_notes = 2 * n_bars if min_notes is None else min_notes
    width = n_bars * steps_per_bar
    # last note-on at or before each step, to re-strike a note held into a window
    idx = np.where(grid >= 2, np.arange(len(grid)), -1)
    last_onset = np.maximum.accumulate(idx) if len(grid) else idx
    windows = []
    for start in range(0, len(grid) - width + 1, hop_bars * steps_per_bar):
        w = grid[start:start + width].copy()
        if np.count_nonzero(w >= 2) + (w[0] == HOLD) < min_notes or _longest_rest(w) > steps_per_bar:
            continue
        if w[0] == HOLD:
            if last_onset[start] < 0:
                continue
            w[0] = grid[last_onset[start]]
        windows.append(w)
    return np.stack(windows) if windows else np.zeros((0, width), dtype=np.int64)


def _longest_rest(w: np.ndarray) -> int:
    # A HOLD after a REST also sounds as silence (see grid_to_notes).
    silent = np.ones(len(w), dtype=bool)
    sounding = False
    for t, token in enumerate(w.tolist()):
        sounding = token >= 2 or (token == HOLD and sounding)
        silent[t] = not sounding
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, silent.astype(np.int8), 0])))[::2]
    return int(runs.max()) if runs.size else 0


# Piano rolls ----------------------------------------------------------------------------------

def notes_to_pianoroll(notes: Sequence[Note], frames_per_quarter: int = 1, lowest_pitch: int = 21,
                       n_keys: int = 88) -> np.ndarray:
    """Render notes (any polyphony) as a binary piano roll.

    A key is on in a frame if a note of that pitch sounds at the frame's start, as in the JSB
    Chorales benchmark (quarter-note frames); notes between frame starts are not seen.

    Parameters
    ----------
    notes : sequence of Note
    frames_per_quarter : int
    lowest_pitch : int
        MIDI pitch of column 0 (21 = A0, the piano's lowest key).
    n_keys : int

    Returns
    -------
    roll : ndarray [shape=(T, n_keys), dtype=uint8]

    Chapter: notebooks/01_music_as_data.ipynb
    """
    for n in notes:
        if not lowest_pitch <= n.pitch < lowest_pitch + n_keys:
            raise BadInputError(f"notes: pitch {n.pitch} outside the piano roll's keys "
                                f"{lowest_pitch}..{lowest_pitch + n_keys - 1}")
    n_frames = max((int(np.ceil(n.end * frames_per_quarter - _EPS)) for n in notes), default=0)
    roll = np.zeros((n_frames, n_keys), dtype=np.uint8)
    for n in notes:
        first = int(np.ceil(n.start * frames_per_quarter - _EPS))
        stop = int(np.ceil(n.end * frames_per_quarter - _EPS))
        roll[first:stop, n.pitch - lowest_pitch] = 1
    return roll


def pianoroll_to_notes(roll, frames_per_quarter: int = 1, lowest_pitch: int = 21,
                       velocity: int = 80) -> list[Note]:
    """Read each run of "on" frames of a key as one note (inverse of `notes_to_pianoroll`).

    Parameters
    ----------
    roll : ndarray [shape=(T, n_keys)]
    frames_per_quarter : int
    lowest_pitch : int
    velocity : int

    Returns
    -------
    notes : list of Note, sorted by start then pitch

    Chapter: notebooks/01_music_as_data.ipynb
    """
    roll = np.asarray(roll)
    if roll.ndim != 2:
        raise BadInputError(f"roll: expected shape (T, n_keys), got {roll.shape}")
    on = np.pad(roll > 0, ((1, 1), (0, 0))).astype(np.int8)
    edges = np.diff(on, axis=0)
    notes = []
    for key in range(roll.shape[1]):
        starts, stops = np.flatnonzero(edges[:, key] == 1), np.flatnonzero(edges[:, key] == -1)
        notes += [Note(lowest_pitch + key, s / frames_per_quarter, (e - s) / frames_per_quarter, velocity)
                  for s, e in zip(starts, stops)]
    return sorted(notes, key=lambda n: (n.start, n.pitch))


# Files: checks shared by every reader ---------------------------------------------------------

def _check_file(path, max_bytes: int | None) -> Path:
    path = Path(path)
    limit = MAX_BYTES if max_bytes is None else max_bytes
    if not path.is_file():
        raise BadInputError(f"{path}: file not found")
    size = path.stat().st_size
    if size == 0:
        raise BadInputError(f"{path}: empty file (0 bytes)")
    if size > limit:
        raise BadInputError(f"{path}: file too large ({size:,} bytes > limit {limit:,}); "
                            f"is it really a score or MIDI file?")
    return path


def _make_monophonic(notes: list[Note], name: str) -> list[Note]:
    notes = sorted(notes, key=lambda n: (n.start, n.pitch))
    out: list[Note] = []
    for n in notes:
        if out and n.start < out[-1].end - _EPS:
            prev = out[-1]
            if n.start - prev.start < _EPS or prev.end - n.start > LEGATO_TOLERANCE:
                raise BadInputError(f"{name}: polyphonic (pitch {n.pitch} at beat {n.start:g} "
                                    f"overlaps pitch {prev.pitch}); a single melody line is needed")
            out[-1] = prev._replace(duration=n.start - prev.start)
        out.append(n)
    return out


# MIDI -----------------------------------------------------------------------------------------

def notes_to_midi(notes: Sequence[Note], path=None, program: int = 0, qpm: float = 120.0) -> pretty_midi.PrettyMIDI:
    """Build a one-instrument MIDI file from notes; write it to ``path`` (atomically) if given.

    Parameters
    ----------
    notes : sequence of Note
    path : str or Path or None
    program : int
        General MIDI program, 0..127 (0 = Acoustic Grand Piano).
    qpm : float
        Tempo in quarter notes per minute.

    Returns
    -------
    midi : pretty_midi.PrettyMIDI

    Chapter: notebooks/01_music_as_data.ipynb
    """
    if not 0 <= program <= 127:
        raise BadInputError(f"program={program}: General MIDI programs are 0..127")
    if not qpm > 0:
        raise BadInputError(f"qpm={qpm}: tempo must be positive")
    midi = pretty_midi.PrettyMIDI(initial_tempo=float(qpm))
    instrument = pretty_midi.Instrument(program=int(program))
    seconds_per_quarter = 60.0 / qpm
    for n in notes:
        if not 0 <= n.pitch <= 127 or not 0 <= n.velocity <= 127:
            raise BadInputError(f"notes: pitch {n.pitch} / velocity {n.velocity} outside MIDI's 0..127")
        instrument.notes.append(pretty_midi.Note(int(n.velocity), int(n.pitch), n.start * seconds_per_quarter,
                                                 n.end * seconds_per_quarter))
    midi.instruments.append(instrument)
    if path is not None:
        path = Path(path)
        # Write next to the target, then rename: a crash never leaves a half-written file behind.
        fd, tmp = tempfile.mkstemp(suffix=".mid", dir=path.parent or ".")
        os.close(fd)
        try:
            midi.write(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return midi


def midi_to_notes(path, monophonic: bool = False, max_bytes: int | None = None) -> list[Note]:
    """Read the notes of a MIDI file, timed in quarter notes by the file's own tempo map.

    Drum tracks are skipped; nothing is quantised. With ``monophonic=True`` all tracks together
    must form one melody line (overlaps shorter than ``LEGATO_TOLERANCE`` are trimmed).

    Parameters
    ----------
    path : str or Path
    monophonic : bool
    max_bytes : int or None
        Size limit checked before parsing (default ``MAX_BYTES``, 20 MB).

    Returns
    -------
    notes : list of Note, sorted by start then pitch

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
        raise BadInputError(f"{path}: corrupt or truncated MIDI file ({type(exc).__name__}: {exc})") from None
    notes = [Note(n.pitch, midi.time_to_tick(n.start) / midi.resolution,
                  (midi.time_to_tick(n.end) - midi.time_to_tick(n.start)) / midi.resolution, n.velocity)
             for inst in midi.instruments if not inst.is_drum for n in inst.notes]
    notes = [n for n in notes if n.duration > 0]
    if not notes:
        raise BadInputError(f"{path}: no notes (outside drum tracks)")
    return _make_monophonic(notes, str(path)) if monophonic else sorted(notes, key=lambda n: (n.start, n.pitch))


# ABC and MusicXML (via music21) ---------------------------------------------------------------

def split_abc_tunes(text: str) -> list[str]:
    """Split an ABC tune book into tunes; each starts at its ``X:`` line.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    return [t for t in re.split(r"(?m)^(?=X:)", text) if t.startswith("X:")]


def _score_to_notes(score, name: str, monophonic: bool) -> list[Note]:
    """Notes of a music21 score: ties merged, grace notes and rests skipped, pickup bar padded.

    A pickup (anacrusis) is moved right by the missing part of its bar, so that bar lines fall on
    multiples of the bar length and `slice_grid` cuts at real bar lines.
    """
    from music21 import chord, note, stream

    parts = list(score.parts) if isinstance(score, stream.Score) and score.parts else [score]
    parts = [p for p in parts if p.recurse().notes.first() is not None]
    if monophonic and len(parts) > 1:
        raise BadInputError(f"{name}: polyphonic ({len(parts)} voices); a single melody line is needed")
    notes = []
    for part in parts:
        first_bar = part.recurse().getElementsByClass(stream.Measure).first()
        shift = float(first_bar.paddingLeft) if first_bar is not None else 0.0
        for n in part.stripTies().flatten().notes:
            if n.duration.isGrace or n.quarterLength <= 0:
                continue
            pitches = n.pitches if isinstance(n, chord.Chord) else (n.pitch,)
            if monophonic and len(set(p.midi for p in pitches)) > 1:
                raise BadInputError(f"{name}: polyphonic (a chord at beat {float(n.offset):g}); "
                                    f"a single melody line is needed")
            velocity = n.volume.velocity if isinstance(n, note.Note) and n.volume.velocity else 80
            notes += [Note(midi, float(n.offset) + shift, float(n.quarterLength), int(velocity))
                      for midi in dict.fromkeys(p.midi for p in pitches)]
    if not notes:
        raise BadInputError(f"{name}: no notes")
    return _make_monophonic(notes, name) if monophonic else sorted(notes, key=lambda n: (n.start, n.pitch))


def parse_abc(text: str, name: str = "ABC text"):
    """Parse one ABC tune with music21 (the first, if ``text`` holds several); return the Score.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    from music21 import converter, stream

    if not text.strip():
        raise BadInputError(f"{name}: empty ABC text")
    if len(text) > MAX_BYTES:
        raise BadInputError(f"{name}: ABC text too large ({len(text):,} characters > {MAX_BYTES:,})")
    tunes = split_abc_tunes(text)
    text = tunes[0] if tunes else "X:1\n" + text
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parse(text, format="abc")
    except Exception as exc:
        raise BadInputError(f"{name}: not valid ABC ({type(exc).__name__}: {exc})") from None
    if isinstance(score, stream.Opus):
        score = score.scores[0]
    return score


def abc_to_notes(text: str, monophonic: bool = True, name: str = "ABC text") -> list[Note]:
    """Read the notes of one ABC tune (ties merged, grace notes and rests skipped).

    Parameters
    ----------
    text : str
        ABC notation; an ``X:`` line is added if missing; of several tunes only the first is read.
    monophonic : bool
        Require one melody line (chords raise BadInputError "polyphonic").
    name : str
        Used in error messages (e.g. the file name).

    Returns
    -------
    notes : list of Note

    Chapter: notebooks/01_music_as_data.ipynb
    """
    return _score_to_notes(parse_abc(text, name), name, monophonic)


def read_score_notes(path, monophonic: bool = False, max_bytes: int | None = None) -> list[Note]:
    """Read the notes of a MusicXML (.xml/.musicxml/.mxl) or ABC file with music21.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    from music21 import converter, stream

    path = _check_file(path, max_bytes)
    if path.suffix.lower() == ".abc":
        text = path.read_bytes().decode("utf-8", errors="replace")
        return abc_to_notes(text, monophonic=monophonic, name=str(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parse(str(path), forceSource=True)
    except Exception as exc:
        raise BadInputError(f"{path}: corrupt or not MusicXML ({type(exc).__name__}: {exc})") from None
    if isinstance(score, stream.Opus):
        score = score.scores[0]
    return _score_to_notes(score, str(path), monophonic)


def read_melody(path_or_abc_text, max_bytes: int | None = None) -> list[Note]:
    """Read a monophonic melody from a MIDI, ABC or MusicXML file, or from ABC text.

    The format follows the extension (.mid .midi .abc .xml .musicxml .mxl); a string holding a
    newline or starting with ``X:`` is read as ABC text.

    Parameters
    ----------
    path_or_abc_text : str or Path
    max_bytes : int or None
        Size limit checked before parsing (default ``MAX_BYTES``).

    Returns
    -------
    notes : list of Note, one melody line

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
    return read_score_notes(path, monophonic=True, max_bytes=max_bytes)
