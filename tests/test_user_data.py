"""Your own files through `datasets.user`: melodies from outside the corpus, the polyphony rule and
``--melody top``, and every kind of bad file: refused before it is parsed, named, skipped and listed,
while the rest of the folder trains."""
import json
import os
import struct
import time
import zipfile

import numpy as np
import pytest
import soundfile

from musiclab import cli, symbolic, upload
from musiclab.datasets import user
from musiclab.errors import BadInputError
from musiclab.symbolic import Note


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    while n := n >> 7:
        out.append(n & 0x7F | 0x80)
    return bytes(reversed(out))


def _midi(ticks_per_quarter: int, events: list[tuple[int, bytes]]) -> bytes:
    """A one-track MIDI file of (delta ticks, message) events, written byte by byte."""
    track = b"".join(_vlq(delta) + message for delta, message in events) + b"\x00\xff\x2f\x00"
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_quarter)
            + b"MTrk" + struct.pack(">I", len(track)) + track)


def _long_note_midi() -> bytes:
    """44 bytes: one note of 9.9 million ticks at 1 tick per quarter note."""
    return _midi(1, [(0, b"\x90\x3c\x40"), (9_900_000, b"\x80\x3c\x40")])


def _melody(path, pitches, start=0.0, step=0.5, **kwargs):
    symbolic.notes_to_midi([Note(p, start + step * i, step) for i, p in enumerate(pitches)], path, **kwargs)
    return path


def _user_folder(root):
    """Melodies a reader might bring: another key (E major), a legato performance, 7/8 in ABC."""
    root.mkdir(parents=True, exist_ok=True)
    _melody(root / "e_major.mid", [64, 66, 68, 69, 71, 73, 75, 76] * 4, qpm=96)
    symbolic.notes_to_midi([Note(62 + (i * 5) % 12, 0.5 * i, 0.55) for i in range(32)], root / "legato.mid")
    (root / "seven_eight.abc").write_text("X:1\nT:Odd\nM:7/8\nL:1/8\nK:Dm\n" + "DEF GA Bc|dcB AG FE|" * 4 + "]\n")
    return root


def test_melodies_from_outside_the_corpus_are_read_with_their_legato(tmp_path):
    folder = _user_folder(tmp_path / "mine")
    tunes, description, skipped = user.read_melodies(folder)
    assert not skipped and "3 files" in description
    read = {t.title: t for split in tunes.values() for t in split}
    assert set(read) == {"e_major", "legato", "seven_eight"}
    legato = symbolic.grid_to_notes(read["legato"].grid)  # overlaps of 0.05 quarter notes are trimmed
    assert [n.pitch for n in legato] == [62 + (i * 5) % 12 for i in range(32)]
    assert all(n.duration == 0.5 for n in legato)


def test_a_file_with_chords_is_skipped_unless_the_top_note_is_kept(tmp_path, capsys):
    folder = _user_folder(tmp_path / "mine")
    notes = [Note(60 + 2 * i, 0.5 * i, 0.5) for i in range(16)]
    notes += [Note(64, 0, 1), Note(67, 0, 1), Note(53, 4, 0.5)]  # a C major chord and a double stop
    symbolic.notes_to_midi(notes, folder / "chords.mid")
    _, description, skipped = user.read_melodies(folder)
    assert [name for name, _ in skipped] == ["chords.mid"]
    assert skipped[0][1].startswith("polyphonic: 3 chord(s) or overlapping notes; at quarter note 0 (bar 1 if in "
                                    "4/4) 3 notes sound at once: C4, E4, G4")
    assert "--melody top" in skipped[0][1] and "skipped 1 unusable file(s)" in capsys.readouterr().err
    tunes, description, skipped = user.read_melodies(folder, melody="top")
    assert not skipped and "top note kept in 3 chord(s) of 1 file(s) (chords.mid 3)" in description
    chords = next(t for split in tunes.values() for t in split if t.title == "chords")
    line = symbolic.grid_to_notes(chords.grid)
    assert line[0].pitch == 67 and line[0].duration == 1  # the top of the chord, then the melody goes on
    assert [n.pitch for n in line[1:]] == [64 + 2 * i for i in range(14)]
    assert "top note kept in 3 chord(s) of 1 file(s) (chords.mid 3)" in capsys.readouterr().err


def test_melody_top_on_the_command_line(tmp_path, capsys):
    folder = _user_folder(tmp_path / "mine")
    symbolic.notes_to_midi([Note(60, 0, 1), Note(64, 0, 1)] + [Note(62 + i, 1 + i, 1) for i in range(8)],
                           folder / "double_stop.mid")
    out = tmp_path / "out"
    assert cli.main(["train", "next-token", "--steps", "2", "--data", str(folder), "--out", str(out),
                     "--melody", "top"]) == 0
    sidecar = json.loads((out / "next-token.json").read_text())
    assert "4 files" in sidecar["data"] and "(double_stop.mid 1)" in sidecar["data"] and "--melody top" in sidecar["command"]
    assert cli.main(["train", "poly-rnn", "--data", str(folder), "--melody", "top"]) == 2
    assert "--melody: only for the models that read your melody files" in capsys.readouterr().err


def test_empty_data_path_is_an_error_not_the_bundled_data(tmp_path, capsys):
    assert cli.main(["train", "next-token", "--steps", "2", "--data", "", "--out", str(tmp_path / "out")]) == 2
    assert "--data: the path is empty" in capsys.readouterr().err and not (tmp_path / "out").exists()
    with pytest.raises(BadInputError, match="data path '' is empty"):
        user.read_melodies("")


# Small files that would take gigabytes or minutes: refused before parsing -------------------------

def test_a_44_byte_midi_of_one_endless_note_is_refused(tmp_path):
    path = tmp_path / "endless.mid"
    path.write_bytes(_long_note_midi())
    assert path.stat().st_size == 37
    for read in (symbolic.read_notes, user.read_pianorolls):
        start = time.perf_counter()
        with pytest.raises(BadInputError, match=r"endless.mid: too long \(9,900,000 quarter notes > limit 4,096"):
            read(path)
        assert time.perf_counter() - start < 1


def test_a_long_valid_midi_is_too_long_not_corrupt(tmp_path):
    events = [e for i in range(12_000) for e in ((0, bytes([0x90, 60 + i % 12, 64])), (960, bytes([0x80, 60 + i % 12, 64])))]
    (tmp_path / "long.mid").write_bytes(_midi(960, events))  # 12,000 quarter notes, 11.5 million ticks
    with pytest.raises(BadInputError, match=r"too long \(12,000 quarter notes") as error:
        symbolic.read_notes(tmp_path / "long.mid")
    assert "corrupt" not in str(error.value)
    fine = [e for i in range(100) for e in ((0, b"\x90\x3c\x40"), (150_000, b"\x80\x3c\x40"))]
    (tmp_path / "fine.mid").write_bytes(_midi(30_000, fine))  # 500 quarter notes at 30,000 ticks each
    with pytest.raises(BadInputError, match=r"timed too finely \(30,000 ticks per quarter note"):
        symbolic.read_notes(tmp_path / "fine.mid")


def test_too_many_notes_are_counted_from_the_events(tmp_path, monkeypatch):
    _melody(tmp_path / "busy.mid", [60] * 40)
    monkeypatch.setattr(symbolic, "MAX_NOTES", 30)
    with pytest.raises(BadInputError, match=r"busy.mid: too many notes \(40 > limit 30\)"):
        symbolic.read_notes(tmp_path / "busy.mid")


def test_abc_bars_are_counted_before_parsing(tmp_path):
    (tmp_path / "long.abc").write_text("X:1\nM:4/4\nL:1/8\nK:C\n" + "CDEF GABc|" * 2000 + "\n")  # 20 kB
    start = time.perf_counter()
    with pytest.raises(BadInputError, match=r"long.abc: too long \(2,000 bars > limit 512\)"):
        symbolic.read_notes(tmp_path / "long.abc")
    assert time.perf_counter() - start < 1


def _mxl(path, score: bytes):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/container.xml", '<container><rootfiles><rootfile full-path="score.xml"/>'
                                                   '</rootfiles></container>')
        archive.writestr("score.xml", score)
    return path


def test_compressed_musicxml_is_checked_from_its_zip_directory(tmp_path, monkeypatch):
    bomb = _mxl(tmp_path / "bomb.mxl", b"<score-partwise>" + b" " * 21_000_000 + b"</score-partwise>")
    assert bomb.stat().st_size < 100_000
    with pytest.raises(BadInputError, match=r"^[^(]*bomb.mxl: unpacks to 21,000,\d+ bytes > limit 20,000,000"):
        symbolic.read_notes(bomb)
    notes = _mxl(tmp_path / "notes.mxl", b"<score-partwise>" + b"<note/>" * 40 + b"</score-partwise>")
    monkeypatch.setattr(symbolic, "MAX_NOTES", 30)
    with pytest.raises(BadInputError, match=r"notes.mxl: too many notes \(40 > limit 30\)"):
        symbolic.read_notes(notes)
    (tmp_path / "broken.mxl").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(BadInputError, match="broken.mxl: corrupt compressed MusicXML file"):
        symbolic.read_notes(tmp_path / "broken.mxl")


def _npz_with_header(path, shape, dtype="|u1"):
    """An .npz whose one array only has a header: what it claims, without the bytes."""
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("roll.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, header)
    return path


def test_npz_shapes_are_read_from_the_header(tmp_path):
    huge = _npz_with_header(tmp_path / "huge.npz", (10_000_000, 88))
    with pytest.raises(BadInputError, match=r"^[^(]*huge.npz: array 'roll' has 10,000,000 frames > limit 4,096"):
        user.read_pianorolls(huge)
    (tmp_path / "random.npz").write_bytes(os.urandom(2000))
    with pytest.raises(BadInputError, match="random.npz: not a readable .npz file") as error:
        user.read_pianorolls(tmp_path / "random.npz")
    assert "allow_pickle" not in str(error.value)
    np.savez(tmp_path / "objects.npz", roll=np.array([{"a": 1}], dtype=object))
    with pytest.raises(BadInputError, match="objects.npz: array 'roll' holds Python objects"):
        user.read_pianorolls(tmp_path / "objects.npz")


def test_a_folder_of_bad_files_is_skipped_and_listed_and_the_rest_trains(tmp_path, capsys):
    folder = _user_folder(tmp_path / "mine")
    (folder / "endless.mid").write_bytes(_long_note_midi())
    (folder / "long.abc").write_text("X:1\nM:4/4\nL:1/8\nK:C\n" + "CDEF GABc|" * 2000 + "\n")
    _mxl(folder / "bomb.mxl", b"<score-partwise>" + b" " * 21_000_000 + b"</score-partwise>")
    (folder / "loop.mid").symlink_to(folder / "loop.mid")
    out = tmp_path / "out"
    assert cli.main(["train", "vae-melody", "--steps", "2", "--data", str(folder), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "skipped 4 unusable file(s)" in err
    for name, reason in [("endless.mid", "too long"), ("long.abc", "too long"), ("bomb.mxl", "unpacks to"),
                         ("loop.mid", "cannot be read")]:
        assert f"  {name}: {reason}" in err
    sidecar = json.loads((out / "vae-melody.json").read_text())
    assert "3 files" in sidecar["data"] and len(sidecar["skipped"]) == 4


def test_an_unreadable_file_is_skipped(tmp_path, monkeypatch):
    folder = _user_folder(tmp_path / "mine")
    locked = _melody(folder / "locked.mid", [60, 62, 64, 65] * 4)
    builtin_open = open

    def refuse_locked(file, *args, **kwargs):  # what a file without read permission does (as root too)
        if str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return builtin_open(file, *args, **kwargs)

    monkeypatch.setattr(symbolic, "open", refuse_locked, raising=False)
    _, _, skipped = user.read_melodies(folder)
    assert skipped == [("locked.mid", "cannot be read (Permission denied)")]


def test_a_folder_of_one_frame_rolls_is_named(tmp_path, capsys):
    for i in range(3):
        symbolic.notes_to_midi([Note(60 + i, 0, 1)], tmp_path / f"{i}.mid")
    with pytest.raises(BadInputError, match="0 usable piano-roll file") as error:
        user.read_pianoroll_folder(tmp_path)
    assert "num_samples" not in str(error.value)
    assert "0.mid: 1 roll(s) of fewer than 2 frames" in capsys.readouterr().err
    assert cli.main(["train", "poly-rnn", "--steps", "2", "--data", str(tmp_path)]) != 0


def test_score_refuses_an_endless_midi(tmp_path, capsys):
    (tmp_path / "endless.mid").write_bytes(_long_note_midi())
    assert cli.main(["score", "poly-rnn", str(tmp_path / "endless.mid")]) != 0
    assert "endless.mid: too long" in capsys.readouterr().err


def test_a_missing_class_folder_says_so(tmp_path, capsys):
    assert cli.main(["train", "cyclegan-symbolic", "--steps", "2", "--data", str(tmp_path / "nowhere")]) != 0
    err = capsys.readouterr().err
    assert "nowhere: no such file or folder" in err and "subfolder" not in err


# Recordings ----------------------------------------------------------------------------------------

def _tones(seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    pitch_hz = 440 * 2 ** (np.floor(t * 2) % 5 / 12)  # a new note every half second
    return (0.4 * np.sin(2 * np.pi * np.cumsum(pitch_hz) / sr)).astype(np.float32)


def test_audio_models_say_what_they_need(tmp_path):
    soundfile.write(tmp_path / "a.wav", _tones(2.0), 16000)
    soundfile.write(tmp_path / "short.wav", _tones(0.3), 16000)
    segments, description, skipped = user.read_audio_segments(tmp_path, 8000, 0.5, "the audio RNN")
    assert skipped == [("short.wav", "too short (0.30 s < 0.5 s); the audio RNN learns from 0.5 s segments")]
    assert sum(len(v) for v in segments.values()) == 4 and "1 skipped" in description


def test_train_gan_on_recordings_lists_what_it_skipped(tmp_path, capsys):
    folder = tmp_path / "takes"
    folder.mkdir()
    soundfile.write(folder / "take.wav", _tones(6.0), 16000)
    soundfile.write(folder / "short.wav", _tones(1.0), 16000)
    assert cli.main(["train", "gan", "--steps", "2", "--data", str(folder), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 unusable file(s)" in err and "short.wav: too short (1.00 s < 5 s)" in err


def _wav_bytes(y, sr=16000):
    import io

    buffer = io.BytesIO()
    soundfile.write(buffer, y, sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_upload_of_a_short_or_damaged_recording_is_named():
    with pytest.raises(BadInputError, match=r"blip.wav: too short \(0.10 s < 1 s\); the evaluator needs"):
        upload.read_piece(_wav_bytes(_tones(0.1)), "blip.wav")
    data = bytearray(_wav_bytes(_tones(3.0)))
    at = data.index(b"data")
    data[at + 4:at + 8] = struct.pack("<I", 200)  # the header says 100 samples; the file holds 48,000
    with pytest.raises(BadInputError, match=r"liar.wav: damaged \(its header does not match its contents"):
        upload.read_piece(bytes(data), "liar.wav")
    assert len(upload.read_piece(_wav_bytes(_tones(3.0)), "fine.wav")) > 0


def test_upload_paths_that_are_not_files_are_named(tmp_path):
    with pytest.raises(BadInputError, match="gone.mid: file not found"):
        upload.read_piece(tmp_path / "gone.mid", "gone.mid")
    (tmp_path / "folder.mid").mkdir()
    with pytest.raises(BadInputError, match="folder.mid: a folder, not a file"):
        upload.read_piece(tmp_path / "folder.mid", "folder.mid")
    (tmp_path / "loop.mid").symlink_to(tmp_path / "loop.mid")
    with pytest.raises(BadInputError, match="loop.mid: cannot be read"):
        upload.read_piece(tmp_path / "loop.mid", "loop.mid")


def test_an_unreadable_class_folder_is_skipped(tmp_path, monkeypatch):
    for name in ("airs", "reels", "locked"):
        _user_folder(tmp_path / "styles" / name)
    iterdir = type(tmp_path).iterdir

    def refuse_locked(folder):  # what a folder without read permission does (as root too)
        if folder.name == "locked":
            raise PermissionError(13, "Permission denied", str(folder))
        return iterdir(folder)

    monkeypatch.setattr(type(tmp_path), "iterdir", refuse_locked)
    _, classes, _, skipped = user.read_classes(tmp_path / "styles")
    assert classes == ["airs", "reels"] and skipped == [("locked/", "cannot be read (Permission denied)")]


def test_legato_releases_end_on_the_beat_in_piano_rolls(tmp_path, capsys):
    """Four voices, each note held a 1/10 quarter into the next chord (performed legato): every frame
    of the roll holds the four sounding notes, not eight, and the reader says what it did; an
    overhang longer than a 32nd note is a held note and stays."""
    chords = [(60, 64, 67, 72), (62, 65, 69, 74), (59, 63, 66, 71), (60, 64, 67, 72)]  # no tone held over
    legato = [Note(p, float(i), 1.1) for i, chord in enumerate(chords) for p in chord]
    symbolic.notes_to_midi(legato, tmp_path / "legato.mid")
    (roll,) = user.read_pianorolls(tmp_path / "legato.mid")
    assert roll.sum(axis=1).tolist() == [4, 4, 4, 4]
    assert [sorted(np.flatnonzero(frame) + 21) for frame in roll] == [sorted(c) for c in chords]
    assert "16 note(s) held at most a 32nd note past a beat" in capsys.readouterr().err
    held = [Note(60, 0.0, 1.5), Note(64, 1.0, 1.0)]
    symbolic.notes_to_midi(held, tmp_path / "held.mid")
    (roll,) = user.read_pianorolls(tmp_path / "held.mid")
    assert roll[1, 60 - 21] == 1 and roll.sum() == 3
