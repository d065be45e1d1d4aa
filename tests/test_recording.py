"""Tests of musiclab.recording and the recording-gan recipe: loading, checks, slicing, bad recordings."""
import json

import librosa
import numpy as np
import pytest
import soundfile

from musiclab import audio, recording
from musiclab.datasets import user
from musiclab.errors import BadInputError
from musiclab.models import gan
from musiclab.recipes import recording as recording_recipe

SR = 44100
TUNE = [(62 + step, i / 2, 0.45, 90) for i, step in enumerate([0, 2, 4, 5, 7, 9, 7, 5, 4, 2, 0, 7] * 2)]


@pytest.fixture(scope="module")
def music():
    y = audio.render_notes(TUNE, program=40, qpm=150, sr=SR, tail_s=0.5)
    return (0.8 * y / np.abs(y).max()).astype(np.float32)  # about 6 s


def write(path, y, sr=SR, subtype=None):
    soundfile.write(str(path), np.asarray(y).T, sr, subtype=subtype)
    return path


def test_stereo_44k_file_becomes_normalised_mono_16k(tmp_path, music):
    path = write(tmp_path / "take.wav", np.stack([music, 0.5 * music]))
    y, info = user.read_recording(path, sr=16000)
    assert info == {"file_sr": SR, "channels": 2, "duration_s": round(len(music) / SR, 3), "peak": pytest.approx(0.8, abs=1e-3)}
    assert y.ndim == 1 and y.dtype == np.float32 and abs(len(y) - len(music) * 16000 / SR) <= 1
    assert np.abs(y).max() == pytest.approx(recording.PEAK, abs=1e-6)


def test_mono_flac_at_another_rate(tmp_path, music):
    y, info = user.read_recording(write(tmp_path / "take.flac", music[::2], sr=22050), sr=16000)
    assert info["channels"] == 1 and info["file_sr"] == 22050 and len(y) > 5 * 16000


def test_a_clean_rendering_is_not_clipped(music):
    assert recording.clipped_fraction(music) < recording.MAX_CLIPPED_FRACTION


@pytest.mark.parametrize("gain_after", [1.0, 0.5])  # clipped, and clipped then turned down
def test_clipped_recording(tmp_path, music, gain_after):
    clipped = np.clip(4 * music, -1, 1) * gain_after
    assert recording.clipped_fraction(clipped) > 0.01
    with pytest.raises(BadInputError, match=r"take.wav: clipped \(.* record again at a lower input gain"):
        user.read_recording(write(tmp_path / "take.wav", clipped))


@pytest.mark.parametrize("make, message", [
    (lambda music: np.zeros(SR * 6, np.float32), "silent"),
    (lambda music: 1e-5 * music, "silent"),
    (lambda music: music[:2 * SR], r"too short \(2.00 s < 5 s\); the recording GAN"),
])
def test_bad_recordings(tmp_path, music, make, message):
    with pytest.raises(BadInputError, match=message):
        user.read_recording(write(tmp_path / "take.wav", make(music), subtype="FLOAT"))


def test_nan_samples(tmp_path, music):
    y = music.copy()
    y[100] = np.nan
    with pytest.raises(BadInputError, match="NaN"):
        user.read_recording(write(tmp_path / "take.wav", y, subtype="FLOAT"))


def test_unreadable_corrupt_and_wrong_format_files(tmp_path, music):
    with pytest.raises(BadInputError, match="file not found"):
        user.read_recording(tmp_path / "missing.wav")
    (tmp_path / "notes.wav").write_text("these are my notes, not audio")
    with pytest.raises(BadInputError, match="not a readable audio file"):
        user.read_recording(tmp_path / "notes.wav")
    data = write(tmp_path / "full.wav", music).read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:len(data) // 3])
    with pytest.raises(BadInputError, match="truncated"):
        user.read_recording(tmp_path / "cut.wav")
    from musiclab import symbolic
    symbolic.notes_to_midi([symbolic.Note(*note) for note in TUNE], tmp_path / "tune.mid")
    with pytest.raises(BadInputError, match="tune.mid: unknown audio format '.mid'"):
        user.read_recording(tmp_path / "tune.mid")


def test_slices_drop_quiet_parts(music):
    y = np.concatenate([music, np.zeros(SR * 2, np.float32), music])
    n = SR // 2
    slices = recording.slice_recording(y, SR, n, n // 2)
    assert slices.shape[1] == n
    all_starts = (len(y) - n) // (n // 2) + 1
    assert all_starts - 8 <= len(slices) < all_starts  # the 2 s pause (7 slices) is gone
    assert np.sqrt((slices ** 2).mean(axis=1)).min() > 10 ** (-30 / 20) * np.sqrt((slices ** 2).mean(axis=1)).max()
    with pytest.raises(BadInputError, match="shorter than one slice"):
        recording.slice_recording(music[:n - 1], SR, n)


def test_recording_slices_fit_the_gan(music):
    cfg = gan.GanConfig(programs=(0,), pitches=(0,), width=8)
    slices = recording_recipe.recording_slices(librosa.resample(music, orig_sr=SR, target_sr=cfg.sr), cfg)
    assert slices["log_mel"].shape[1:] == (cfg.n_mels, cfg.n_frames)
    assert len(slices["y"]) == len(slices["log_mel"]) == len(slices["program"]) == len(slices["pitch"])


def test_train_on_a_folder_skips_bad_files(tmp_path, music):
    folder = tmp_path / "takes"
    folder.mkdir()
    write(folder / "good.wav", music)
    write(folder / "silent.wav", np.zeros(SR * 6, np.float32))
    (folder / "readme.txt").write_text("not audio, not even looked at")
    result = recording_recipe.train_recording_gan(tmp_path / "run", steps=3, data=folder, progress=False)
    sidecar = json.loads((tmp_path / "run" / "recording-gan.json").read_text())
    assert [file for file, _ in sidecar["skipped"]] == ["silent.wav"]
    assert "silent" in sidecar["skipped"][0][1] and result["n_slices"] > 10
    generator, _ = gan.load_pretrained("recording-gan", result["weights"])
    assert generator.config.n_frames == 48
    with pytest.raises(BadInputError, match="no usable recording"):
        recording_recipe.train_recording_gan(tmp_path / "run2", steps=3, data=folder / "silent.wav", progress=False)
