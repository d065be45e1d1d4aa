"""The book's one way back to sound, `vocoder.to_audio`: shapes, the three methods, mel bands of other
settings, the chapters' helpers, and bad settings refused by name."""
import librosa
import numpy as np
import pytest

from musiclab import audio, recipes
from musiclab.errors import BadInputError
from musiclab.models import cyclegan, gan, vae, vocoder

SR, N_FFT, HOP = 16000, 1024, 256
# held-out one-shot notes (program, pitch, velocity) of three families: bowed, reed, brass
NOTES = ((40, 66, 77), (71, 62, 90), (56, 70, 100))


@pytest.fixture(scope="module")
def notes():
    return [audio.render_note(pitch, program=program, velocity=velocity, duration_s=0.5, release_s=0.3)
            for program, pitch, velocity in NOTES]


def mean_lsd(ys, log_mels, **settings) -> float:
    """Mean `recipes.synthesis.spectral_lsd_db` of ``to_audio(log_mel, **settings)`` to each original."""
    return float(np.mean([recipes.synthesis.spectral_lsd_db(vocoder.to_audio(x, SR, **settings), y)
                          for x, y in zip(log_mels, ys)]))


@pytest.mark.parametrize("method", vocoder.METHODS)
def test_every_method_keeps_the_shape_of_a_note_and_of_a_batch(notes, method):
    x = audio.log_mel(notes[0], SR)
    y = vocoder.to_audio(x, SR, method=method, n_iter=2)
    assert y.shape == (HOP * (x.shape[1] - 1),) and y.dtype == np.float32 and np.isfinite(y).all()
    batch = np.stack([x[:, :20]] * 6).reshape(2, 3, 80, 20)
    assert vocoder.to_audio(batch, SR, method=method, n_iter=2).shape == (2, 3, HOP * 19)


def test_the_vocoder_is_loaded_once():
    assert vocoder.shipped_vocoder() is vocoder.shipped_vocoder()


def test_the_griffin_lim_methods_are_the_mel_inverses_of_chapter_1(notes):
    x = audio.log_mel(notes[0], SR)
    for method, inverse in (("griffin-lim", "nnls"), ("pseudo-inverse", "pinv")):
        np.testing.assert_array_equal(vocoder.to_audio(x, SR, method=method, n_iter=4),
                                      audio.mel_to_audio(x, SR, n_iter=4, inverse=inverse))


def test_the_vocoder_is_closer_to_real_notes_than_griffin_lim_on_the_same_mels(notes):
    log_mels = [audio.log_mel(y, SR) for y in notes]
    by_vocoder = mean_lsd(notes, log_mels)
    assert by_vocoder < mean_lsd(notes, log_mels, method="pseudo-inverse")
    assert by_vocoder < mean_lsd(notes, log_mels, method="griffin-lim")


def test_mel_bands_of_other_settings_are_converted_to_the_vocoders(notes):
    config = vocoder.shipped_vocoder().config
    for y in notes:
        own, fewer = audio.log_mel(y, SR), audio.log_mel(y, SR, n_mels=64)
        np.testing.assert_allclose(vocoder.convert_mel_bands(own, SR, 0.0, None, config), own, atol=1e-5)
        converted = vocoder.convert_mel_bands(fewer, SR, 0.0, None, config)
        assert converted.shape == own.shape
        # far closer to the 80 bands of the same audio than the 64 bands stretched frame-wise by index
        stretched = fewer[np.round(np.linspace(0, 63, 80)).astype(int)]
        assert audio.log_spectral_distance_db(converted, own) < 0.7 * audio.log_spectral_distance_db(stretched, own)
    # bands above the source's fmax carry nothing: silent
    low = vocoder.convert_mel_bands(audio.log_mel(notes[0], SR, fmax=4000.0), SR, 0.0, 4000.0, config)
    lower_edges = librosa.mel_frequencies(config.n_mels + 2, fmin=0.0, fmax=SR / 2)[:-2]
    assert np.all(low[lower_edges >= 4000.0] == np.float32(np.log(audio.LOG_FLOOR)))
    assert np.all(low[lower_edges < 3000.0].max(axis=1) > np.log(audio.LOG_FLOOR))


def test_the_timbre_vaes_64_bands_play_better_through_the_vocoder(notes):
    config = vae.TimbreVaeConfig()
    x = vae.timbre_log_mel(np.stack([y[:HOP * (config.n_frames - 1)] for y in notes]), config)
    lsd = {method: np.mean([recipes.synthesis.spectral_lsd_db(vae.timbre_to_audio(xi, config, method=method), y)
                            for xi, y in zip(x, notes)]) for method in ("vocoder", "pseudo-inverse")}
    assert lsd["vocoder"] < lsd["pseudo-inverse"], lsd


def test_the_chapters_helpers_play_through_the_vocoder_and_keep_griffin_lim_by_name(notes):
    cfg = gan.GanConfig()
    x = gan.log_mel(notes[0][:cfg.n_samples], cfg)
    np.testing.assert_array_equal(gan.log_mel_to_audio(x, cfg), vocoder.to_audio(x, SR))
    assert gan.log_mel_to_audio(x, cfg).shape == (cfg.n_samples,)
    # the evaluation's way back to sound is unchanged: the pseudo-inverse and 32 Griffin-Lim iterations
    np.testing.assert_array_equal(gan.log_mel_to_audio(x, cfg, method="pseudo-inverse"),
                                  audio.mel_to_audio(x, SR, fmax=cfg.fmax, length=cfg.n_samples, inverse="pinv"))
    np.testing.assert_array_equal(cyclegan.log_mel_to_audio(x), vocoder.to_audio(x, SR))


@pytest.mark.parametrize("settings, match", [
    ({"method": "wavenet"}, "method='wavenet'"),
    ({"sr": 22050}, "sr=22050"),
    ({"hop_length": 512}, "hop_length=512"),
    ({"n_fft": 2048}, "n_fft=2048"),
])
def test_settings_the_vocoder_cannot_serve_are_refused_by_name(settings, match):
    x = np.full((80, 10), -5.0)
    with pytest.raises(BadInputError, match=match):
        vocoder.to_audio(x, **{"sr": SR, **settings})
    if "method" not in settings:  # Griffin-Lim serves any STFT settings
        assert np.isfinite(vocoder.to_audio(x, **{"sr": SR, **settings}, method="pseudo-inverse", n_iter=2)).all()


@pytest.mark.parametrize("log_mel, match", [
    (np.full(10, -5.0), "n_mels, T"),
    (np.full((80, 1), -5.0), "T >= 2"),
    (np.where(np.arange(10) == 3, np.nan, np.full((80, 10), -5.0)), "NaN"),
    (np.full((80, 10), np.log(audio.LOG_FLOOR)), "silent"),
])
def test_bad_log_mels_are_refused_by_name(log_mel, match):
    with pytest.raises(BadInputError, match=match):
        vocoder.to_audio(log_mel, SR)
