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
MIDI_SUFFIXES = (".mid", ".midi")
MELODY_SUFFIXES = MIDI_SUFFIXES + (".abc", ".xml", ".musicxml", ".mxl")
# Limits on a file, all checked before it is parsed: a few bytes can describe a note of a million
# bars or unpack to gigabytes, so its size on disk alone says little.
MAX_BYTES = 20_000_000  # on disk, and unpacked for a compressed MusicXML (.mxl) file
MAX_QUARTERS = 4096  # 1,024 bars of 4/4: 34 minutes at 120 quarter notes per minute
MAX_NOTES = 50_000
MAX_ABC_BARS = 512  # music21's ABC parser slows with the square of the bars (512: ~6 s); the corpus's longest: 291
MELODY_RULES = ("single", "top")  # how a melody file with chords is read: refused, or its top line
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


def end_legato_releases(notes: Sequence[Note], frames_per_quarter: int = 1) -> tuple[list[Note], int]:
    """Performed MIDI holds a note a little into the next one (legato). A piano roll samples each
    frame's start, so such a note would sound in the next frame too, beside the notes that replace
    it. A note that began before a frame start and sounds past it by at most ``LEGATO_TOLERANCE``
    quarter notes (the melody rule of `melody_line`) is ended at that frame start.

    Returns ``(notes, number of notes ended early)``.

    Chapter: notebooks/04_rnn.ipynb
    """
    out, n_ended = [], 0
    for n in notes:
        frame_start = np.floor(n.end * frames_per_quarter + _EPS) / frames_per_quarter  # the last one
        overhang = n.end - frame_start
        if n.start < frame_start - _EPS and _EPS < overhang <= LEGATO_TOLERANCE + _EPS:
            n, n_ended = n._replace(duration=float(frame_start) - n.start), n_ended + 1
        out.append(n)
    return out, n_ended


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


def transpose_pianoroll(roll, semitones: int) -> np.ndarray:
    """Shift every note of ``roll [shape=(T, n_keys)]`` by ``semitones`` keys (up if positive);
    BadInputError if a sounding key would leave the roll.

    Chapter: notebooks/04_rnn.ipynb
    """
    roll, semitones = np.asarray(roll), int(semitones)
    keys = np.flatnonzero(roll.any(axis=0))
    if keys.size and not (0 <= keys[0] + semitones and keys[-1] + semitones < roll.shape[1]):
        raise BadInputError(f"transpose by {semitones}: a note leaves the piano roll's {roll.shape[1]} keys")
    return np.roll(roll, semitones, axis=1)


# Files: checks shared by every reader ---------------------------------------------------------

def check_file(path, max_bytes: float | None = None) -> Path:
    """Return ``path`` as a Path if it names a readable, non-empty file of at most ``max_bytes``
    (default ``MAX_BYTES``) on disk; otherwise raise a `BadInputError` naming it and the problem: no
    such file, a folder, unreadable (permissions, a symbolic link loop), empty or too large.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    path, limit = Path(path), MAX_BYTES if max_bytes is None else max_bytes
    try:
        if path.is_dir():
            raise BadInputError(f"{path}: a folder, not a file")
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise BadInputError(f"{path}: file not found") from None
    except OSError as exc:
        raise BadInputError(f"{path}: cannot be read ({exc.strerror or _describe(exc)})") from None
    if size == 0:
        raise BadInputError(f"{path}: empty file (0 bytes)")
    if size > limit:  # before parsing: a 2 GB "MIDI" file must not be read into memory
        raise BadInputError(f"{path}: file too large ({size:,} bytes > limit {limit:,}); "
                            f"is it really a score or MIDI file?")
    return path


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _check_length(name: str, quarters: float, n_notes: int) -> None:
    if quarters > MAX_QUARTERS:
        raise BadInputError(f"{name}: too long ({quarters:,.0f} quarter notes > limit {MAX_QUARTERS:,}, "
                            f"{MAX_QUARTERS // 4:,} bars of 4/4); cut it into shorter files")
    if n_notes > MAX_NOTES:
        raise BadInputError(f"{name}: too many notes ({n_notes:,} > limit {MAX_NOTES:,}); "
                            f"cut it into shorter files")


def melody_line(notes: Sequence[Note], name: str, melody: str = "single") -> tuple[list[Note], list[tuple[float, list[int]]]]:
    """The one rule that turns notes into a single melody line.

    Notes are taken by start. A note that starts while the previous one still sounds, by at most
    ``LEGATO_TOLERANCE`` quarter notes, is legato playing: the previous note is cut where it starts.
    Notes that start together, or overlap by more, are a chord (or a double stop, or a second
    voice): with ``melody="single"`` the file is refused with a `BadInputError` that says how many
    chords there are and where the first is; with ``melody="top"`` the highest note is kept (a higher
    note cuts the one sounding, a lower one is dropped), as in the "skyline" melody extraction.

    Returns ``(line, chords)``: the notes of the line, and ``(start, pitches)`` of each reduced chord.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    if melody not in MELODY_RULES:
        raise BadInputError(f"melody={melody!r}: expected one of {MELODY_RULES}")
    line: list[Note] = []
    chords: list[tuple[float, list[int]]] = []
    for n in _by_time(notes):
        prev = line[-1] if line else None
        if prev is None or n.start >= prev.end - _EPS:
            line.append(n)
            continue
        if n.start - prev.start >= _EPS and prev.end - n.start <= LEGATO_TOLERANCE:
            line[-1] = prev._replace(duration=n.start - prev.start)
            line.append(n)
            continue
        if not chords or chords[-1][0] != n.start:
            chords.append((n.start, [prev.pitch]))
        chords[-1][1].append(n.pitch)
        if n.pitch > prev.pitch:  # the higher note is the line from here on
            if n.start - prev.start < _EPS:
                line[-1] = n
            else:
                line[-1] = prev._replace(duration=n.start - prev.start)
                line.append(n)
    if chords and melody == "single":
        start, pitches = chords[0]
        names = ", ".join(pretty_midi.note_number_to_name(p) for p in sorted(set(pitches)))
        raise BadInputError(f"{name}: polyphonic: {len(chords)} chord(s) or overlapping notes; at quarter note "
                            f"{start:g} (bar {int(start // 4) + 1} if in 4/4) {len(set(pitches))} notes sound at "
                            f"once: {names}; a melody needs a single line: export only the melody track or voice, "
                            f"or keep the highest note of each chord (--melody top)")
    return line, chords


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
    must form one melody line (`melody_line`: overlaps shorter than ``LEGATO_TOLERANCE`` are
    trimmed). Refused before the notes are built: files larger than ``max_bytes`` (default
    ``MAX_BYTES``, 20 MB), and files whose events reach past ``MAX_QUARTERS`` quarter notes or hold
    more than ``MAX_NOTES`` notes (counted from the parsed events: 40 bytes can hold one note of
    a million bars).

    Chapter: notebooks/01_music_as_data.ipynb
    """
    import mido

    path = check_file(path, max_bytes)
    with open(path, "rb") as f:
        if f.read(4) != b"MThd":
            raise BadInputError(f"{path}: not a MIDI file (no 'MThd' header)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            events = mido.MidiFile(str(path))
    except Exception as exc:  # mido raises many types for broken files
        raise BadInputError(f"{path}: corrupt or truncated MIDI file ({_describe(exc)})") from None
    last_tick = max((sum(message.time for message in track) for track in events.tracks), default=0)
    n_notes = sum(message.type == "note_on" and message.velocity > 0 for track in events.tracks for message in track)
    if events.ticks_per_beat <= 0:
        raise BadInputError(f"{path}: timed in SMPTE frames, not in beats; save it with a tempo (beats per minute)")
    _check_length(str(path), last_tick / events.ticks_per_beat, n_notes)
    if last_tick >= pretty_midi.pretty_midi.MAX_TICK:  # pretty_midi's own guard against huge tick tables
        raise BadInputError(f"{path}: timed too finely ({events.ticks_per_beat:,} ticks per quarter note, "
                            f"{last_tick:,} ticks in all, > {pretty_midi.pretty_midi.MAX_TICK:,.0f}); "
                            f"save it at 480 or 960 ticks per quarter note")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            midi = pretty_midi.PrettyMIDI(mido_object=events)
    except Exception as exc:
        raise BadInputError(f"{path}: corrupt MIDI file ({_describe(exc)})") from None
    # ticks / resolution = quarter notes under any tempo map, exact for on-grid notes
    ticks = [(n.pitch, int(midi.time_to_tick(n.start)), int(midi.time_to_tick(n.end)), n.velocity)
             for inst in midi.instruments if not inst.is_drum for n in inst.notes]
    notes = [Note(int(p), a / midi.resolution, (b - a) / midi.resolution, int(v))
             for p, a, b, v in ticks if b > a]
    if not notes:
        raise BadInputError(f"{path}: no notes (outside drum tracks)")
    return melody_line(notes, str(path))[0] if monophonic else _by_time(notes)


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
    return melody_line(notes, name)[0] if monophonic else _by_time(notes)


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
    Counted in the text before parsing: more than ``MAX_ABC_BARS`` bar lines or ``MAX_NOTES``
    note letters are refused.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    if not text.strip():
        raise BadInputError(f"{name}: empty ABC text")
    if len(text) > MAX_BYTES:
        raise BadInputError(f"{name}: ABC text too large ({len(text):,} characters > {MAX_BYTES:,})")
    tunes = split_abc_tunes(text)
    tune = tunes[0] if tunes else "X:1\n" + text
    body = "\n".join(line.split("%")[0] for line in tune.splitlines() if not re.match(r"[A-Za-z+]:", line))
    bars = len(re.findall(r"\|+", body))
    if bars > MAX_ABC_BARS:
        raise BadInputError(f"{name}: too long ({bars:,} bars > limit {MAX_ABC_BARS}); the ABC reader's time "
                            f"grows with the square of the length: cut the tune into shorter files")
    _check_length(name, 0, len(re.findall(r"[A-Ga-g]", body)))
    score = parse_with_music21(tune, name, format="abc")
    return score_to_notes(score, name, monophonic)


def _check_musicxml(path: Path) -> None:
    """Refuse a MusicXML file before music21 parses it: a compressed one (.mxl, a zip) whose contents
    unpack to more than ``MAX_BYTES`` (read from the zip's directory), or one with more than
    ``MAX_NOTES`` ``<note`` elements."""
    import zipfile

    if path.suffix.lower() != ".mxl":
        n_notes = path.read_bytes().count(b"<note")
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.infolist() if not m.filename.startswith("META-INF/")]
                unpacked = sum(m.file_size for m in archive.infolist())
                n_notes = sum(archive.read(m).count(b"<note") for m in members) if unpacked <= MAX_BYTES else 0
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise BadInputError(f"{path}: corrupt compressed MusicXML file ({_describe(exc)})") from None
        if unpacked > MAX_BYTES:
            raise BadInputError(f"{path}: unpacks to {unpacked:,} bytes > limit {MAX_BYTES:,}; is it really one score?")
    _check_length(str(path), 0, n_notes)


def read_notes(path, max_bytes: int | None = None) -> list[Note]:
    """Read every note of a MIDI, ABC or MusicXML file (any polyphony), sorted by start, after the
    checks that run before parsing (`check_file`; length and size limits, see `MAX_BYTES`,
    `MAX_QUARTERS`, `MAX_NOTES`, `MAX_ABC_BARS`). Any problem raises a `BadInputError` naming the file.

    Chapter: notebooks/01_music_as_data.ipynb
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MELODY_SUFFIXES:
        raise BadInputError(f"{path}: unknown melody format {suffix or '(no extension)'!r}; "
                            f"expected one of {', '.join(MELODY_SUFFIXES)}")
    if suffix in MIDI_SUFFIXES:
        return midi_to_notes(path, max_bytes=max_bytes)
    path = check_file(path, max_bytes)
    if suffix == ".abc":
        return abc_to_notes(path.read_bytes().decode("utf-8", errors="replace"), monophonic=False, name=str(path))
    _check_musicxml(path)
    # forceSource: parse the file itself, never a music21 pickle cached from an earlier version
    notes = score_to_notes(parse_with_music21(str(path), str(path), forceSource=True), str(path), False)
    _check_length(str(path), max(n.end for n in notes), len(notes))
    return notes


def read_melody(path_or_abc_text, max_bytes: int | None = None, melody: str = "single") -> list[Note]:
    """Read a melody from a MIDI, ABC or MusicXML file (`read_notes`), or from ABC text.

    The format follows the extension (.mid .midi .abc .xml .musicxml .mxl); a string holding a
    newline or starting with ``X:`` is read as ABC text. The notes become one line by `melody_line`:
    chords are refused (``melody="single"``) or reduced to their highest note (``"top"``).

    Chapter: notebooks/01_music_as_data.ipynb
    """
    if isinstance(path_or_abc_text, str) and ("\n" in path_or_abc_text or path_or_abc_text.startswith("X:")):
        name, notes = "ABC text", abc_to_notes(path_or_abc_text, monophonic=False)
    else:
        name, notes = str(path_or_abc_text), read_notes(path_or_abc_text, max_bytes)
    return melody_line(notes, name, melody)[0]
