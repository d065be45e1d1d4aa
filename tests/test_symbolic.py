"""Round trips and bad input for musiclab.symbolic (grids, piano rolls, MIDI, ABC, MusicXML)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from musiclab import symbolic
from musiclab.errors import BadInputError
from musiclab.symbolic import Note

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def on_grid_melodies(draw, max_notes=24):
    """Monophonic melodies whose starts and durations are whole 16th notes."""
    notes, step = [], 0
    for _ in range(draw(st.integers(1, max_notes))):
        step += draw(st.integers(0, 8))
        length = draw(st.integers(1, 16))
        notes.append(Note(draw(st.integers(symbolic.PITCH_LOW, symbolic.PITCH_HIGH)), step / 4, length / 4))
        step += length
    return notes


@FAST
@given(on_grid_melodies())
def test_notes_grid_notes_is_exact(notes):
    grid = symbolic.notes_to_grid(notes)
    assert grid.dtype == np.int64 and grid.ndim == 1
    assert grid.min() >= 0 and grid.max() < symbolic.VOCAB_SIZE
    assert symbolic.grid_to_notes(grid) == notes


@FAST
@given(on_grid_melodies(), st.sampled_from([60, 97.5, 120, 180]))
def test_grid_midi_file_grid_round_trip(tmp_path, notes, qpm):
    grid = symbolic.notes_to_grid(notes)
    path = tmp_path / "melody.mid"
    symbolic.notes_to_midi(symbolic.grid_to_notes(grid), path, qpm=qpm)
    back = symbolic.midi_to_notes(path, monophonic=True)
    assert np.array_equal(symbolic.notes_to_grid(back), grid)
    assert all(type(n.start) is float and type(n.pitch) is int for n in back)


@FAST
@given(on_grid_melodies(), st.integers(-12, 12))
def test_transpose_up_then_down_is_identity(notes, semitones):
    grid = symbolic.notes_to_grid(notes)
    low, high = symbolic.grid_pitch_range(grid)
    assume(symbolic.PITCH_LOW <= low + semitones and high + semitones <= symbolic.PITCH_HIGH)
    up = symbolic.transpose_grid(grid, semitones)
    assert len(up) == len(grid)
    assert symbolic.grid_pitch_range(up) == (low + semitones, high + semitones)
    assert np.array_equal(symbolic.transpose_grid(up, -semitones), grid)
    assert symbolic.transpose_notes(symbolic.transpose_notes(notes, semitones), -semitones) == notes


def test_transpose_out_of_range_names_the_pitch():
    grid = symbolic.notes_to_grid([Note(90, 0, 1)])
    with pytest.raises(BadInputError, match="range"):
        symbolic.transpose_grid(grid, 7)


@FAST
@given(st.integers(1, 3), st.data())
def test_pianoroll_round_trip(frames_per_quarter, data):
    roll = np.array(data.draw(st.lists(st.lists(st.integers(0, 1), min_size=88, max_size=88),
                                       min_size=1, max_size=24)), dtype=np.uint8)
    notes = symbolic.pianoroll_to_notes(roll, frames_per_quarter)
    back = symbolic.notes_to_pianoroll(notes, frames_per_quarter)
    assert back.dtype == np.uint8 and back.shape[1] == 88
    assert np.array_equal(back, roll[:len(back)]) and not roll[len(back):].any()


def test_pianoroll_counts_notes_sounding_at_frame_start():
    roll = symbolic.notes_to_pianoroll([Note(60, 0, 2), Note(64, 0.5, 1), Note(67, 1.5, 0.25)])
    assert roll.shape == (2, 88)
    assert roll[:, 60 - 21].tolist() == [1, 1] and roll[:, 64 - 21].tolist() == [0, 1]
    assert roll[:, 67 - 21].sum() == 0  # starts and ends between frame starts


def test_off_grid_notes_are_snapped():
    grid = symbolic.notes_to_grid([Note(60, 0.02, 0.3), Note(62, 1 / 3, 1 / 3), Note(64, 2 / 3, 1 / 3)])
    assert [n.start for n in symbolic.grid_to_notes(grid)] == [0.0, 0.25, 0.75]


def test_hold_after_rest_reads_as_rest():
    notes = symbolic.grid_to_notes(np.array([1, 1, 26, 1, 0, 1]))
    assert notes == [Note(60, 0.5, 0.5)]


def test_slice_grid_rules():
    bar_a = [26, 1, 1, 1, 28, 1, 1, 1, 30, 1, 1, 1, 31, 1, 1, 1]
    silent = [0] * 16
    held = [1] * 16
    grid = np.array(bar_a + held + bar_a + silent + silent + bar_a + bar_a)
    windows = symbolic.slice_grid(grid, n_bars=2, steps_per_bar=16)
    # kept: bars 0-1, 1-2 (held note struck again), 2-3 and 4-5 (one silent bar), 5-6;
    # dropped: 3-4 (two silent bars)
    assert windows.shape == (5, 32)
    assert windows[1][0] == 31 and windows[1][1] == 1
    assert np.array_equal(windows[3], np.array(silent + bar_a))
    assert symbolic.slice_grid(grid, n_bars=2, min_notes=9).shape == (0, 32)


@FAST
@given(on_grid_melodies(max_notes=40), st.integers(1, 4))
def test_slice_grid_windows_are_standalone_melodies(notes, n_bars):
    grid = symbolic.notes_to_grid(notes)
    windows = symbolic.slice_grid(grid, n_bars, steps_per_bar=16)
    assert windows.shape[1] == 16 * n_bars and windows.dtype == np.int64
    assert (windows[:, 0] != symbolic.HOLD).all()
    assert ((windows >= 2).sum(axis=1) >= 2 * n_bars).all()
    starts = [s for s in range(0, len(grid) - 16 * n_bars + 1, 16)
              if any(np.array_equal(w[1:], grid[s + 1:s + 16 * n_bars]) for w in windows)]
    assert len(starts) >= len(windows)


def test_abc_tiny_tune_pitches_and_durations():
    notes = symbolic.abc_to_notes("X:1\nM:4/4\nL:1/8\nK:D\nd2 f2 a2-a2 | {g}f4 z2 d2 |]\n")
    assert [(n.pitch, n.start, n.duration) for n in notes] == [
        (74, 0.0, 1.0), (78, 1.0, 1.0), (81, 2.0, 2.0), (78, 4.0, 2.0), (74, 7.0, 1.0)]


def test_abc_pickup_is_padded_to_the_bar_line():
    notes = symbolic.abc_to_notes("X:1\nM:3/4\nL:1/4\nK:C\nG | c d e | c3 |]\n")
    assert notes[0].start == 2.0 and notes[1].start == 3.0


# Bad input --------------------------------------------------------------------------------------

@pytest.fixture
def good_midi(tmp_path):
    path = tmp_path / "good.mid"
    symbolic.notes_to_midi([Note(60 + i, i / 2, 0.5) for i in range(24)], path)
    return path


@pytest.mark.parametrize("make, word", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(b"this is not a midi file at all"), "not a MIDI"),
    (lambda p: p.write_bytes(b"MThd" + bytes(range(256)) * 3), "corrupt"),
])
def test_bad_midi_files(tmp_path, make, word):
    path = tmp_path / "bad.mid"
    make(path)
    with pytest.raises(BadInputError, match=word) as info:
        symbolic.midi_to_notes(path)
    assert "bad.mid" in str(info.value)


def test_truncated_midi(tmp_path, good_midi):
    path = tmp_path / "cut.mid"
    path.write_bytes(good_midi.read_bytes()[:-20])
    with pytest.raises(BadInputError, match="truncated"):
        symbolic.midi_to_notes(path)


def test_huge_file_is_refused_before_parsing(monkeypatch, good_midi):
    monkeypatch.setattr(symbolic, "MAX_BYTES", 64)
    with pytest.raises(BadInputError, match="too large"):
        symbolic.midi_to_notes(good_midi)
    with pytest.raises(BadInputError, match="too large"):
        symbolic.read_melody(good_midi)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        symbolic.midi_to_notes(tmp_path / "nope.mid")
    (tmp_path / "song.wav").write_bytes(b"RIFF")
    with pytest.raises(BadInputError, match="unknown melody format"):
        symbolic.read_melody(tmp_path / "song.wav")


def test_midi_without_notes(tmp_path):
    path = tmp_path / "silent.mid"
    symbolic.notes_to_midi([], path)
    with pytest.raises(BadInputError, match="no notes"):
        symbolic.midi_to_notes(path)


def test_polyphonic_midi_where_melody_needed(tmp_path):
    path = tmp_path / "chords.mid"
    symbolic.notes_to_midi([Note(60, 0, 1), Note(64, 0, 1), Note(67, 1, 1)], path)
    assert len(symbolic.midi_to_notes(path)) == 3
    with pytest.raises(BadInputError, match="polyphonic"):
        symbolic.read_melody(path)


def test_legato_overlap_is_trimmed_not_polyphonic(tmp_path):
    path = tmp_path / "legato.mid"
    symbolic.notes_to_midi([Note(60, 0, 1.05), Note(62, 1, 1)], path)
    assert [n.duration for n in symbolic.read_melody(path)] == [1.0, 1.0]


def test_polyphonic_abc_and_notes():
    with pytest.raises(BadInputError, match="polyphonic"):
        symbolic.read_melody("X:1\nM:4/4\nL:1/4\nK:C\nc [ceg] d e |]\n")
    with pytest.raises(BadInputError, match="polyphonic"):
        symbolic.notes_to_grid([Note(60, 0, 2), Note(64, 1, 1)])


def test_out_of_range_pitch_named():
    with pytest.raises(BadInputError, match="pitch 100"):
        symbolic.notes_to_grid([Note(60, 0, 1), Note(100, 1, 1)])
    with pytest.raises(BadInputError, match="pitch 12"):
        symbolic.notes_to_pianoroll([Note(12, 0, 1)])


def test_bad_abc_and_musicxml_files(tmp_path):
    empty = tmp_path / "empty.abc"
    empty.write_text("")
    with pytest.raises(BadInputError, match="empty"):
        symbolic.read_melody(empty)
    corrupt = tmp_path / "broken.mxl"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a zip archive")
    with pytest.raises(BadInputError, match="broken.mxl"):
        symbolic.read_melody(corrupt)


def test_musicxml_melody_round_trip(tmp_path):
    from music21 import converter
    score = converter.parse("X:1\nM:2/4\nL:1/8\nK:G\nG A B c | d2 B2 |]\n", format="abc")
    path = tmp_path / "tune.musicxml"
    score.write("musicxml", fp=path)
    assert [n.pitch for n in symbolic.read_melody(path)] == [67, 69, 71, 72, 74, 71]


def test_garbage_truncated_and_huge_abc(tmp_path):
    garbage = tmp_path / "noise.abc"
    garbage.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(BadInputError, match="noise.abc"):
        symbolic.read_melody(garbage)
    header_only = tmp_path / "cut.abc"
    header_only.write_text("X:1\nT:cut off\nK:C\n")
    with pytest.raises(BadInputError, match="no notes"):
        symbolic.read_melody(header_only)
    big = tmp_path / "big.abc"
    big.write_text("X:1\nK:C\n" + "CDEF|" * 100)
    with pytest.raises(BadInputError, match="too large"):
        symbolic.read_melody(big, max_bytes=100)


def test_sounding_tokens_and_pitch_classes():
    np.testing.assert_array_equal(symbolic.sounding_tokens([5, 1, 0, 1, 7, 1]), [5, 5, 0, 0, 7, 7])
    np.testing.assert_array_equal(symbolic.sounding_tokens([1, 1, 3]), [0, 0, 3])  # a HOLD at the start is silence
    assert [symbolic.pitch_class_of(n) for n in ("C", "Bb", "F#", "B", "Cb")] == [0, 10, 6, 11, 11]
    with pytest.raises(BadInputError, match="note name"):
        symbolic.pitch_class_of("H")
