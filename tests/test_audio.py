"""Tests of musiclab.audio: rendering, spectrograms, mu-law, files, players, bad input."""
import base64
import io
import re
import sys

import librosa
import numpy as np
import pretty_midi
import pytest
import soundfile
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from musiclab import audio
from musiclab.errors import BadInputError, MusiclabError

SR = audio.DEFAULT_SR
MELODY = [(60, 0, 1, 80), (64, 1, 1, 90), (67, 2, 0.5, 100), (72, 2.5, 1.5, 70), (60, 2.5, 1.5, 70)]


@pytest.fixture(scope="module")
def flute_a4():
    return audio.render_note(69, program=73)


def median_f0_hz(y, fmin, fmax):
    f0 = librosa.yin(y, fmin=fmin, fmax=fmax, sr=SR, frame_length=2048)
    return float(np.median(f0))


def cents(f_hz, ref_hz):
    return 1200 * np.log2(f_hz / ref_hz)


# Rendering -------------------------------------------------------------------------------------

def test_render_is_deterministic_even_after_other_renders(flute_a4):
    audio.render_notes(MELODY, program=0)  # leaves voices ringing in the cached synth
    assert np.array_equal(audio.render_note(69, program=73), flute_a4)
    assert np.array_equal(audio.render_notes(MELODY, 40), audio.render_notes(MELODY, 40))


@pytest.mark.parametrize("program, pitch, ref_hz", [(73, 69, 440.0), (0, 60, 261.63)])
def test_rendered_note_has_the_right_pitch(program, pitch, ref_hz):
    y = audio.render_note(pitch, program=program, duration_s=1.0)
    held = y[int(0.1 * SR):int(0.9 * SR)]
    assert abs(cents(median_f0_hz(held, ref_hz / 2, ref_hz * 2), ref_hz)) < 50


def test_render_note_length_and_dtype():
    for duration_s, release_s in [(1.0, 0.25), (0.3, 0.0), (0.51, 0.123)]:
        y = audio.render_note(60, duration_s=duration_s, release_s=release_s, sr=22050)
        assert y.shape == (round((duration_s + release_s) * 22050),)
        assert y.dtype == np.float32


def test_render_notes_timing_is_sample_accurate():
    # quarter note 1 at 120 qpm starts at 0.5 s = sample 8000
    y = audio.render_notes([(69, 1.0, 1.0, 100)], program=73, qpm=120, tail_s=0.25)
    assert y.shape == (round((2 * 0.5 + 0.25) * SR),)
    assert not np.any(y[:8000])
    assert np.any(y[8000:8100])


def test_render_notes_length_uses_the_last_note_off():
    y = audio.render_notes(MELODY, qpm=90, tail_s=0.5)
    assert y.shape == (round(4 * 60 / 90 * SR) + round(0.5 * SR),)


def test_render_notes_accepts_named_tuples():
    from collections import namedtuple

    note = namedtuple("Note", "pitch start duration velocity")
    plain = audio.render_notes(MELODY, program=24)
    named = audio.render_notes([note(*n) for n in MELODY], program=24)
    assert np.array_equal(plain, named)


def test_render_paired_shapes_and_timbres_differ():
    y = audio.render_paired(MELODY, programs=[0, 73, 56])
    assert y.shape == (3, audio.render_notes(MELODY).shape[0])
    assert np.array_equal(y[1], audio.render_notes(MELODY, program=73))
    spectra = np.abs(np.fft.rfft(y, axis=1))
    spectra /= np.linalg.norm(spectra, axis=1, keepdims=True)
    similarity = spectra @ spectra.T
    assert np.all(similarity[~np.eye(3, dtype=bool)] < 0.9)


def test_one_shot_note_set_order_and_labels():
    data = audio.one_shot_note_set([0, 73], [60, 62, 64], velocities=(60, 120), duration_s=0.25,
                                   release_s=0.05)
    assert data["y"].shape == (12, round(0.3 * SR)) and data["sr"] == SR
    assert list(data["program"]) == [0] * 6 + [73] * 6
    assert list(data["pitch"][:6]) == [60, 60, 62, 62, 64, 64]
    assert list(data["velocity"][:4]) == [60, 120, 60, 120]
    assert np.array_equal(data["y"][3], audio.render_note(62, 0, 120, 0.25, 0.05))
    loud, soft = np.abs(data["y"][1]).max(), np.abs(data["y"][0]).max()
    assert loud > soft


def test_silent_notes_raise_or_are_dropped():
    with pytest.raises(BadInputError, match="silent"):
        audio.render_note(120, program=0)
    with pytest.raises(BadInputError, match="pitch 64.*silent"):
        audio.one_shot_note_set([65], [63, 64, 65])  # Alto Sax has a hole at pitch 64
    data = audio.one_shot_note_set([65], [63, 64, 65], drop_silent=True)
    assert list(data["pitch"]) == [63, 65] and data["y"].shape[0] == 2


@pytest.mark.parametrize("call", [
    lambda: audio.render_note(128),
    lambda: audio.render_note(60.5),
    lambda: audio.render_note(60, program=200),
    lambda: audio.render_note(60, velocity=0),
    lambda: audio.render_note(60, duration_s=0),
    lambda: audio.render_notes([]),
    lambda: audio.render_notes([(60, -1, 1, 80)]),
    lambda: audio.render_notes([(60, 0, 1)]),
    lambda: audio.render_notes(MELODY, qpm=0),
    lambda: audio.render_paired(MELODY, []),
])
def test_bad_render_arguments_raise(call):
    with pytest.raises(BadInputError):
        call()


def test_missing_tinysoundfont_says_how_to_install(monkeypatch):
    audio._load_synth.cache_clear()
    monkeypatch.setitem(sys.modules, "tinysoundfont", None)
    try:
        with pytest.raises(MusiclabError, match=r"pip install --no-deps tinysoundfont==0\.3\.7"):
            audio.render_note(60)
    finally:
        audio._load_synth.cache_clear()


def test_program_names_match_general_midi():
    assert audio.SOUNDFONT_PATH.is_file()
    for program, name in audio.PROGRAM_NAMES.items():
        assert name == pretty_midi.program_to_instrument_name(program) == audio.program_name(program)
    with pytest.raises(BadInputError):
        audio.program_name(128)


# Spectrograms ----------------------------------------------------------------------------------

def test_spectrogram_shapes_and_floor(flute_a4):
    n_frames = 1 + len(flute_a4) // 256
    assert audio.stft(flute_a4).shape == (513, n_frames)
    log_s = audio.log_magnitude(flute_a4, n_fft=512, hop_length=128)
    assert log_s.shape == (257, 1 + len(flute_a4) // 128)
    log_m = audio.log_mel(flute_a4, SR, n_mels=64)
    assert log_m.shape == (64, n_frames)
    assert log_m.min() >= np.log(audio.LOG_FLOOR) - 1e-6 and np.all(np.isfinite(log_m))


def test_griffin_lim_converges(flute_a4):
    y = flute_a4[:SR]
    magnitude = np.exp(audio.log_magnitude(y))
    y_hat = audio.griffin_lim(magnitude, length=len(y))
    assert y_hat.shape == y.shape
    magnitude_hat = np.abs(audio.stft(y_hat))
    spectral_convergence = np.linalg.norm(magnitude_hat - magnitude) / np.linalg.norm(magnitude)
    assert spectral_convergence < 0.25
    assert np.array_equal(y_hat, audio.griffin_lim(magnitude, length=len(y)))


def test_mel_to_audio_keeps_length_and_pitch(flute_a4):
    y = flute_a4[:SR]
    y_hat = audio.mel_to_audio(audio.log_mel(y, SR), SR, length=len(y))
    assert y_hat.shape == y.shape
    assert abs(cents(median_f0_hz(y_hat[2000:-2000], 220, 880), 440)) < 50


def test_spectral_functions_reject_nan():
    with pytest.raises(BadInputError, match="NaN"):
        audio.log_mel(np.array([0.1, np.nan] * 2000, dtype=np.float32), SR)


# mu-law ----------------------------------------------------------------------------------------

def test_mu_law_round_trip_numpy_and_torch(flute_a4):
    y = flute_a4 / np.abs(flute_a4).max()
    q = audio.mu_law_encode(y)
    assert q.dtype == np.int64 and q.min() >= 0 and q.max() <= 255
    # one code step at full scale is (256^(1/255) - 1) * 256 / 255 ~ 0.022
    assert np.abs(audio.mu_law_decode(q) - y).max() < 0.022
    q_tensor = audio.mu_law_encode(torch.from_numpy(y))
    assert q_tensor.dtype == torch.int64 and np.array_equal(q_tensor.numpy(), q)
    y_tensor = audio.mu_law_decode(q_tensor)
    assert isinstance(y_tensor, torch.Tensor) and y_tensor.dtype == torch.float32
    assert list(audio.mu_law_encode(np.array([-1.0, 0.0, 1.0]))) == [0, 128, 255]


def test_mu_law_rejects_bad_input():
    with pytest.raises(BadInputError, match="NaN"):
        audio.mu_law_encode(np.array([0.0, np.nan]))
    with pytest.raises(BadInputError, match=r"\[0, 255\]"):
        audio.mu_law_decode(np.array([0, 256]))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(1, 200), elements=st.floats(-2, 2)),
       st.sampled_from([15, 255, 1023]))
def test_mu_law_properties(y, mu):
    q = audio.mu_law_encode(np.sort(y), mu=mu)
    assert q.min() >= 0 and q.max() <= mu
    assert np.all(np.diff(q) >= 0)  # monotonic
    step = (1 + mu) ** (1 / mu) - 1
    assert np.all(np.abs(audio.mu_law_decode(q, mu) - np.clip(np.sort(y), -1, 1))
                  <= step * (1 + mu) / mu + 1e-6)


# Files -----------------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path, flute_a4):
    path = audio.save_audio(tmp_path / "flute.wav", flute_a4, SR, subtype="FLOAT")
    y, sr = audio.load_audio(path)
    assert sr == SR and np.array_equal(y, flute_a4)
    audio.save_audio(tmp_path / "flute.wav", flute_a4, SR)  # overwrite, PCM_16
    y, _ = audio.load_audio(tmp_path / "flute.wav")
    assert np.abs(y - flute_a4).max() <= 1 / 32768
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flute.wav"]  # no temporary files


def test_load_audio_resamples_and_mixes_down(tmp_path, flute_a4):
    stereo = np.stack([flute_a4, 0.5 * flute_a4])
    audio.save_audio(tmp_path / "stereo.flac", stereo, SR)
    y, sr = audio.load_audio(tmp_path / "stereo.flac")
    assert y.shape == flute_a4.shape and np.abs(y - 0.75 * flute_a4).max() < 1e-3
    y, sr = audio.load_audio(tmp_path / "stereo.flac", mono=False)
    assert y.shape == (2, len(flute_a4))
    y, sr = audio.load_audio(tmp_path / "stereo.flac", sr=8000)
    assert sr == 8000 and abs(len(y) - len(flute_a4) // 2) <= 1


def test_save_audio_failure_leaves_old_file_and_no_temporary(tmp_path, flute_a4):
    path = audio.save_audio(tmp_path / "keep.wav", flute_a4, SR)
    before = path.read_bytes()
    with pytest.raises(BadInputError, match="clip"):
        audio.save_audio(path, 2 * flute_a4 / np.abs(flute_a4).max(), SR)
    with pytest.raises(BadInputError, match="NaN"):
        audio.save_audio(path, np.full(100, np.nan), SR)
    with pytest.raises(BadInputError, match="extension"):
        audio.save_audio(tmp_path / "keep.xyz", flute_a4, SR)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["keep.wav"]


@pytest.fixture
def bad_files(tmp_path, flute_a4):
    good = audio.save_audio(tmp_path / "good.wav", flute_a4, SR)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio")
    (tmp_path / "truncated.wav").write_bytes(good.read_bytes()[:5000])
    (tmp_path / "header_only.wav").write_bytes(good.read_bytes()[:30])
    soundfile.write(tmp_path / "nan.wav", np.array([0.1, np.nan, 0.2] * 100, np.float32), SR,
                    subtype="FLOAT")
    return tmp_path


@pytest.mark.parametrize("name, kwargs, word", [
    ("missing.wav", {}, "no such file"),
    ("empty.wav", {}, "empty"),
    ("text.wav", {}, "not a readable audio file"),
    ("header_only.wav", {}, "not a readable audio file"),
    ("truncated.wav", {}, "truncated"),
    ("good.wav", {"max_duration_s": 0.5}, "too long"),
    ("nan.wav", {}, "NaN"),
])
def test_load_audio_bad_files(bad_files, name, kwargs, word):
    with pytest.raises(BadInputError, match=word) as info:
        audio.load_audio(bad_files / name, **kwargs)
    assert name in str(info.value)


@pytest.mark.parametrize("y, sr, kwargs, word", [
    (np.zeros(0), SR, {}, "empty"),
    (np.array([0.1, np.nan]), SR, {}, "NaN"),
    (np.array([0.1, np.inf]), SR, {}, "NaN or infinite"),
    (np.zeros(1000), SR, {}, "silent"),
    (np.ones((2, 100)) * 0.1, SR, {}, "1-D"),
    (np.ones(100) * 0.1, 0, {}, "sr"),
    (np.ones(100) * 0.1, 10**6, {}, "sr"),
])
def test_check_audio_bad_input(y, sr, kwargs, word):
    with pytest.raises(BadInputError, match=word):
        audio.check_audio(y, sr, name="clip", **kwargs)


def test_check_audio_accepts_tensors_and_returns_float32():
    y = audio.check_audio(torch.ones(100) * 0.1, SR)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32


def test_require_sr_says_how_to_resample():
    audio.require_sr(16000, 16000)
    with pytest.raises(BadInputError, match=re.escape(
            "expected 16000 Hz, got 44100 Hz; resample with load_audio(path, sr=16000)")):
        audio.require_sr(44100, 16000, name="song.wav")


# Players ---------------------------------------------------------------------------------------

def decode_players(html_text):
    clips = []
    for match in re.finditer(r'src="data:(audio/[a-z]+);base64,([A-Za-z0-9+/=]+)"', html_text):
        clips.append(soundfile.read(io.BytesIO(base64.b64decode(match[2]))))
    return clips


def test_player_embeds_small_compressed_audio():
    y = audio.render_notes([(60 + i % 12, i, 1, 90) for i in range(20)], program=73)
    assert len(y) >= 10 * SR
    html_text = audio.player(y, SR, title="Flute <scale>").data
    assert "data:audio/" in html_text and "&lt;scale&gt;" in html_text
    assert len(html_text) < 200_000
    [(decoded, sr)] = decode_players(html_text)
    assert sr == SR and abs(len(decoded) - len(y)) < 0.05 * SR
    assert 0.7 < np.abs(decoded).max() < 1.0  # about -1 dBFS after the codec


def test_player_at_a_rate_mp3_lacks():
    [(decoded, sr)] = decode_players(audio.player(np.sin(np.arange(12345) / 5), 12345).data)
    assert sr == 12345


def _decoded(data):
    decoded, sr = soundfile.read(io.BytesIO(data), dtype="float32")
    return decoded, sr


def log_mel_distance_db(y, y_coded):
    """`audio.log_spectral_distance_db` between the log-mel spectrograms of a clip and its decoding."""
    y_coded = np.pad(y_coded, (0, max(0, len(y) - len(y_coded))))[:len(y)]
    return audio.log_spectral_distance_db(audio.log_mel(y, SR), audio.log_mel(y_coded, SR))


@pytest.fixture(scope="module")
def organ_and_flute():
    """Sustained organ chords, then a flute melody: 10 s, peak -1 dBFS as a player makes it."""
    chords = audio.render_notes([(n, i, 1, 80) for i in range(6) for n in (48 + i, 52 + i, 55 + i)], program=19)
    melody = audio.render_notes([(60 + i % 12, i * 0.5, 0.5, 90) for i in range(8)], program=73)
    y = np.concatenate([chords, melody])
    return (y * (10 ** (-1 / 20) / np.abs(y).max())).astype(np.float32)


def test_player_encoding_is_small_and_keeps_the_sound(organ_and_flute):
    """The players' compression: much smaller than libsndfile's default MP3 and about as close to the
    original (3.6 dB against 1.7; a smaller setting, 0.93 and up at 5.7 dB or more, fails the bound)."""
    data, mime = audio.encode_for_player(organ_and_flute, SR)
    default = io.BytesIO()
    soundfile.write(default, organ_and_flute, SR, format="MP3", subtype="MPEG_LAYER_III")
    seconds = len(organ_and_flute) / SR
    kbps, default_kbps = (8 * len(b) / seconds / 1000 for b in (data, default.getvalue()))
    assert mime == "audio/mpeg" and kbps < 32 and kbps < 0.8 * default_kbps
    distance = log_mel_distance_db(organ_and_flute, _decoded(data)[0])
    default_distance = log_mel_distance_db(organ_and_flute, _decoded(default.getvalue())[0])
    assert distance < 4.5 and distance < default_distance + 2.5, (distance, default_distance)


def test_player_encoding_keeps_the_pitch(flute_a4):
    f0, voiced, _ = librosa.pyin(flute_a4, fmin=200, fmax=1000, sr=SR)
    decoded, sr = _decoded(audio.encode_for_player(flute_a4, SR)[0])
    f0_coded, voiced_coded, _ = librosa.pyin(decoded[:len(flute_a4)], fmin=200, fmax=1000, sr=sr)
    assert sr == SR and voiced.sum() > 20
    assert abs(cents(np.nanmedian(f0_coded[voiced_coded]), np.nanmedian(f0[voiced]))) < 5
    assert abs(cents(np.nanmedian(f0[voiced]), 440.0)) < 15  # and pYIN hears the A4 that was rendered


def test_player_grid_has_every_cell(flute_a4):
    grid = audio.player_grid([[("a", flute_a4), ("b", flute_a4)], [("c", flute_a4), None]], SR,
                             col_labels=["piano", "flute"], row_labels=["one", "two"]).data
    assert grid.count("<audio") == 3 and len(decode_players(grid)) == 3
    assert grid.startswith("<table") and "flute" in grid and "two" in grid
    with pytest.raises(BadInputError, match="row_labels"):
        audio.player_grid([[("a", flute_a4)]], SR, row_labels=["x", "y"])


@pytest.mark.parametrize("y, word", [(np.zeros(0), "empty"), (np.array([0.1, np.nan]), "NaN")])
def test_players_reject_bad_audio(y, word):
    with pytest.raises(BadInputError, match=word):
        audio.player(y, SR)
    with pytest.raises(BadInputError, match=word):
        audio.player_grid([[("x", y)]], SR)
