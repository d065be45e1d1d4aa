"""Chapter 13's upload evaluator, transcription and leaderboard: every format read, every bad upload
refused with a message that names the problem, and the report of a real tune."""
import io

import numpy as np
import pytest
import soundfile

from musiclab import audio, datasets, leaderboard, metrics, symbolic, transcription, upload
from musiclab.errors import BadInputError

ABC = "X:1\nT:test\nM:4/4\nL:1/8\nK:G\nGABc d2 B2|c2 A2 G4|\n"


def _wav_bytes(y, sr=audio.DEFAULT_SR):
    buffer = io.BytesIO()
    soundfile.write(buffer, y, sr, format="WAV")
    return buffer.getvalue()


def test_reads_abc_midi_and_musicxml_alike(tmp_path):
    grid = upload.read_piece(ABC.encode(), "tune.abc")
    notes = symbolic.grid_to_notes(grid)
    assert [n.pitch for n in notes] == [67, 69, 71, 72, 74, 71, 72, 69, 67]
    symbolic.notes_to_midi(notes, tmp_path / "t.mid")
    assert np.array_equal(upload.read_piece(tmp_path / "t.mid", "t.mid"), grid)
    assert np.array_equal(upload.read_piece((tmp_path / "t.mid").read_bytes(), "t.midi"), grid)
    from music21 import converter
    converter.parse(ABC, format="abc").write("musicxml", fp=tmp_path / "t.musicxml")
    assert np.array_equal(upload.read_piece(tmp_path / "t.musicxml", "t.musicxml"), grid)


@pytest.mark.parametrize("name, data, message", [
    ("tune.txt", b"X:1", "unknown format"),
    ("tune.abc", b"", "empty file"),
    ("tune.mid", b"MThd\x00\x00", "corrupt"),
    ("tune.mid", b"RIFF1234", "not a MIDI file"),
    ("tune.mid", b"x" * (symbolic.MAX_BYTES + 1), "too large"),
    ("tune.abc", b"X:1\nL:1/8\nK:C\n[CEG]2 c2|\n", "polyphonic"),
    ("tune.wav", b"RIFF not really a wav", "not a readable audio file"),
])
def test_bad_uploads_get_clear_messages(name, data, message):
    with pytest.raises(BadInputError, match=message) as error:
        upload.read_piece(data, name)
    assert name in str(error.value) and "upload" not in str(error.value).split(name)[0]


def test_polyphonic_midi_says_how_many_notes_and_where(tmp_path):
    notes = [symbolic.Note(60, 0, 1), symbolic.Note(62, 1, 1), symbolic.Note(64, 4, 2), symbolic.Note(67, 4.5, 1),
             symbolic.Note(71, 4.5, 1)]
    symbolic.notes_to_midi(notes, tmp_path / "p.mid")
    with pytest.raises(BadInputError, match=r"quarter note 4.5 \(bar 2 .*\) 3 notes sound at once: E4, G4, B4"):
        upload.read_piece(tmp_path / "p.mid", "p.mid")
    # a legato overlap shorter than a 32nd note is not polyphony
    symbolic.notes_to_midi([symbolic.Note(60, 0, 1.05), symbolic.Note(62, 1, 1)], tmp_path / "l.mid")
    assert upload.read_piece(tmp_path / "l.mid", "l.mid").tolist() == [26, 1, 1, 1, 28, 1, 1, 1]


def test_out_of_range_pitch_names_the_upload(tmp_path):
    symbolic.notes_to_midi([symbolic.Note(20, 0, 1), symbolic.Note(60, 1, 1)], tmp_path / "low.mid")
    with pytest.raises(BadInputError, match=r"low.mid: pitch 20: outside the melody range"):
        upload.read_piece(tmp_path / "low.mid", "low.mid")


def test_too_long_a_piece_is_refused(tmp_path):
    symbolic.notes_to_midi([symbolic.Note(60, 4 * bar, 4) for bar in range(upload.MAX_BARS + 1)], tmp_path / "long.mid")
    with pytest.raises(BadInputError, match=f"long.mid: too long .* > {upload.MAX_BARS}"):
        upload.read_piece(tmp_path / "long.mid", "long.mid")


def test_wav_is_pitch_tracked_and_silence_or_noise_refused():
    notes = [symbolic.Note(p, i, 1) for i, p in enumerate([60, 64, 67, 72, 67, 64, 60, 62])]
    y = audio.render_notes(notes, program=73, qpm=120)
    grid = upload.read_piece(_wav_bytes(y), "flute.wav", qpm=120)
    pitches = [n.pitch for n in symbolic.grid_to_notes(grid)]
    assert pitches == [60, 64, 67, 72, 67, 64, 60, 62]
    onsets = [n.start for n in symbolic.grid_to_notes(grid)]
    assert np.allclose(onsets, np.arange(8) + onsets[0], atol=0.25)
    with pytest.raises(BadInputError, match="silent"):
        upload.read_piece(_wav_bytes(np.zeros(16000, np.float32)), "silent.wav")
    noise = np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32)
    with pytest.raises(BadInputError, match="no pitched notes"):
        upload.read_piece(_wav_bytes(noise), "noise.wav")


def test_transcription_scores_by_hand():
    true = np.array([26, 1, 1, 1, 28, 1, 1, 1, 30, 1, 1, 1])  # notes at steps 0, 4, 8
    found = np.array([0, 26, 1, 1, 1, 1, 1, 1, 32, 1, 1, 1, 34, 1])  # at 1 (same pitch), 8 (other pitch), 12
    scores = transcription.transcription_scores(true, found)
    assert scores["onset_precision"] == scores["onset_recall"] == scores["onset_f1"] == pytest.approx(2 / 3)
    assert scores["pitch_accuracy"] == 0.5
    assert scores["voiced_recall"] == pytest.approx(11 / 12)  # step 0 is silent in the transcription
    assert transcription.transcription_scores(true, true)["onset_f1"] == 1
    assert transcription.transcription_scores(true, found, tolerance_steps=0)["onset_recall"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("program", [0, 40, 73])  # piano, violin, flute
def test_transcription_of_a_rendered_tune_recovers_its_notes(program):
    tune = next(t for t in datasets.load_folk("test", progress=False)
                if t.region == "Irish" and np.count_nonzero(t.grid[:64] >= 2) >= 20)
    true_grid = tune.grid[:64]  # 4 bars of a held-out tune, 16th notes and repeated notes included
    y = audio.render_notes(symbolic.grid_to_notes(true_grid), program=program, qpm=120)
    scores = transcription.transcription_scores(true_grid, upload.read_piece(_wav_bytes(y), "tune.wav", qpm=120))
    assert scores["onset_f1"] >= 0.85 and scores["pitch_accuracy"] >= 0.9 and scores["voiced_recall"] >= 0.9, scores


def test_repeated_notes_are_split_at_their_onsets():
    notes = [symbolic.Note(p, 0.5 * i, 0.5) for i, p in enumerate([67, 67, 67, 69, 71, 71, 69, 67])]
    grid = upload.read_piece(_wav_bytes(audio.render_notes(notes, program=0, qpm=120)), "r.wav", qpm=120)
    found = symbolic.grid_to_notes(grid)
    assert [n.pitch for n in found] == [67, 67, 67, 69, 71, 71, 69, 67]
    assert np.allclose([n.start for n in found], [0.5 * i for i in range(8)], atol=0.25)


def test_wav_tracking_follows_the_tempo():
    notes = [symbolic.Note(p, i, 1) for i, p in enumerate([60, 64, 67, 72])]
    for qpm in (80, 160):
        y = audio.render_notes(notes, program=73, qpm=qpm)
        found = symbolic.grid_to_notes(upload.read_piece(_wav_bytes(y), "t.wav", qpm=qpm))
        assert [n.pitch for n in found] == [60, 64, 67, 72]
        assert np.allclose([n.start for n in found], np.arange(4) + found[0].start, atol=0.25)
    with pytest.raises(BadInputError, match="qpm"):
        transcription.wav_to_notes(y, audio.DEFAULT_SR, qpm=0)


def test_report_of_a_real_tune():
    tune = next(t for t in datasets.load_folk("test", progress=False) if t.region == "Irish")
    report = upload.evaluate_piece(tune.grid, corpus="Irish")
    for task, ranked in report["predictions"].items():
        assert sum(p for _, p in ranked) == pytest.approx(1, abs=1e-4) and ranked[0][1] >= ranked[-1][1]
    assert set(report["features"]) == set(metrics.FEATURES)
    assert all(0 <= row["more_unusual_pct"] <= 100 for row in report["features"].values())
    assert report["features"]["note_count"]["value"] == np.count_nonzero(tune.grid >= 2)
    assert 0 <= report["copy_rate"] <= 1 and len(report["surprise"]["notes"]) == 5
    text = upload.report_text(report)
    assert "region" in text and "surprising" in text
    with pytest.raises(BadInputError, match="corpus"):
        upload.evaluate_piece(tune.grid, corpus="Atlantis")
    with pytest.raises(BadInputError, match="no notes"):
        upload.evaluate_piece(np.zeros(32, dtype=np.int64))


def test_feature_positions_by_hand():
    grid = np.array([26, 1, 28, 1])  # two notes
    reference = {"features": metrics.set_features([grid, np.array([26, 1, 28, 1, 30, 1])]),
                 "typical_distance": {name: np.array([0.0, 2.0]) for name in metrics.FEATURES}}
    positions = upload.feature_positions(grid, reference)
    assert positions["note_count"]["value"] == 2 and positions["note_count"]["percentile"] == 25  # tie counts half
    assert positions["note_count"]["mean_distance"] == 0.5  # |2 - 2| and |2 - 3|
    assert positions["note_count"]["more_unusual_pct"] == 50


def test_widget_path_shows_the_message_not_a_traceback():
    text, grid, report = upload.evaluate_upload(b"MThd\x00\x00", "broken.mid")
    assert grid is None and report is None
    assert "broken.mid" in text and "corrupt" in text and "Traceback" not in text
    text, grid, report = upload.evaluate_upload(ABC.encode(), "tune.abc", "Irish")
    assert report["corpus"] == "Irish" and text.startswith("<pre>")
    widget = upload.evaluator_widget()
    assert widget.children[0].children[1].options[0] == datasets.REGIONS[0]


def test_leaderboard_has_a_noisy_ceiling_and_separates_a_collapsed_set():
    rng = np.random.default_rng(0)
    scale = [symbolic.pitch_to_token(p) for p in (60, 62, 64, 65, 67, 69, 71, 72)]

    def tunes(n):
        return [np.array([t for tok in rng.choice(scale, 16) for t in (tok, symbolic.HOLD)]) for _ in range(n)]

    reference, training = tunes(30), tunes(60)
    index = metrics.ngram_index(training, n=8, transposition_invariant=True)
    rows = leaderboard.leaderboard(reference, {"collapsed": [reference[0]] * 30}, [tunes(30), tunes(30), tunes(30)], index)
    ceiling = rows["real (ceiling)"]
    assert set(ceiling["spread"]) == set(leaderboard.LEADERBOARD_COLUMNS) - {"frechet"}  # no embedding given
    assert ceiling["spread"]["overlap"] > 0
    assert ceiling["copy_rate"] == metrics.copy_rate(reference, index, n=8, transposition_invariant=True)
    assert rows["collapsed"]["overlap"] < ceiling["overlap"] - 5 * ceiling["spread"]["overlap"]
    assert rows["collapsed"]["notes_per_bar"] == 8
    with pytest.raises(BadInputError, match="2 real draws"):
        leaderboard.leaderboard(reference, {}, [training], index)
    assert [len(g) for g in leaderboard.excerpts(reference, 2, n=5, seed=1)] == [32] * 5
