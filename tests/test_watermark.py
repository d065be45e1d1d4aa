"""Tests of musiclab.watermark: detection, the null distribution, robustness, bad input."""
import librosa
import numpy as np
import pytest

from musiclab import audio, watermark
from musiclab.errors import BadInputError

SR = 22050
MELODY = [(60 + step, i, 0.9, 90) for i, step in enumerate([0, 2, 4, 5, 7, 5, 4, 2, 0, 7, 12, 7])]


@pytest.fixture(scope="module")
def music():
    y = audio.render_notes(MELODY, program=24, qpm=150, sr=SR)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture(scope="module")
def marked(music):
    return watermark.embed(music, SR, key=42)


def test_embed_keeps_length_dtype_and_is_quiet(music, marked):
    assert marked.shape == music.shape and marked.dtype == np.float32
    assert 22 < watermark.snr_db(music, marked) < 40  # 25 dB below the music in its band


def test_detects_own_key_only(music, marked):
    assert watermark.detect(marked, SR, 42) > 2 * watermark.THRESHOLD
    assert watermark.is_marked(marked, SR, 42)
    assert not watermark.is_marked(marked, SR, 43)
    assert not watermark.is_marked(music, SR, 42)


def test_null_scores_have_unit_variance_over_keys(music, marked):
    # without the key's mark, z = sum(c x) / |x| has mean 0, variance 1 over independent chips c
    for y in (music, marked):
        z = np.array([watermark.detect(y, SR, key) for key in range(1000, 1300)])
        assert abs(z.mean()) < 0.25 and 0.8 < z.std() < 1.2
        assert (z > watermark.THRESHOLD).sum() == 0


def test_chips_extend_the_same_sequence():
    assert np.array_equal(watermark.chips(7, 100), watermark.chips(7, 1000)[:100])
    assert set(np.unique(watermark.chips(7, 1000))) == {-1.0, 1.0}
    assert not np.array_equal(watermark.chips(7, 100), watermark.chips(8, 100))


def test_survives_noise_resampling_and_codecs(music, marked):
    noisy = watermark.add_noise(marked, snr_db=10)
    assert abs(10 * np.log10(np.mean(marked ** 2) / np.mean((noisy - marked) ** 2)) - 10) < 0.2
    assert watermark.is_marked(noisy, SR, 42)
    assert watermark.is_marked(watermark.resample_round_trip(marked, SR, 11025), SR, 42)
    halved = librosa.resample(marked, orig_sr=SR, target_sr=SR // 2)
    assert watermark.is_marked(halved, SR // 2, 42)  # detected at another rate, no resampling back
    for fmt in ("OGG", "MP3"):
        decoded = watermark.codec_round_trip(marked, SR, fmt)
        assert decoded.shape == marked.shape and watermark.is_marked(decoded, SR, 42)
        assert not watermark.is_marked(watermark.codec_round_trip(music, SR, fmt), SR, 42)


def test_stronger_mark_scores_higher(music):
    weak, strong = (watermark.detect(watermark.embed(music, SR, 5, mark_db=db), SR, 5) for db in (35, 15))
    assert strong > 2 * weak > 0


@pytest.mark.parametrize("y, message", [
    (np.zeros(SR * 2, np.float32), "silent"),
    (0.1 * np.ones(SR // 2, np.float32), "too short"),
    (np.full(SR * 2, np.nan, np.float32), "NaN"),
])
def test_bad_input(y, message):
    with pytest.raises(BadInputError, match=message):
        watermark.embed(y, SR, 1)
    with pytest.raises(BadInputError, match=message):
        watermark.detect(y, SR, 1)


def test_bad_strength(music):
    with pytest.raises(BadInputError, match="mark_db"):
        watermark.embed(music, SR, 1, mark_db=0)


def test_bad_codec(music):
    with pytest.raises(BadInputError, match="fmt"):
        watermark.codec_round_trip(music, SR, "WMA")
