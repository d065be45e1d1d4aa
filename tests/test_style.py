"""Chapters 8-9: style-transfer measures on hand-computable grids, and their bad-input errors."""
import math
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest
import torch

from musiclab import style, symbolic
from musiclab.errors import BadInputError

C4, D4, E4, G4 = (symbolic.pitch_to_token(p) for p in (60, 62, 64, 67))
R, H = symbolic.REST, symbolic.HOLD


# Content preservation ---------------------------------------------------------------------------


def test_onset_agreement_is_the_f1_of_onset_steps():
    source = np.array([C4, H, D4, H, E4, H, G4, H])       # onsets at 0, 2, 4, 6
    shifted = np.array([D4, H, H, E4, H, G4, H, H])       # onsets at 0, 3, 5
    assert style.onset_agreement(source, shifted) == pytest.approx(2 * 1 / (4 + 3))
    other_pitches = np.array([G4, H, G4, H, C4, H, D4, R])
    assert style.onset_agreement(source, other_pitches) == 1.0  # rhythm only, pitches ignored
    assert style.onset_agreement(source, np.full(8, R)) == 0.0
    assert style.onset_agreement(np.full(8, R), np.full(8, H)) == 1.0  # both silent
    assert style.onset_agreement(source, shifted) == style.onset_agreement(shifted, source)


def test_contour_agreement_reads_the_transfer_at_the_source_onsets():
    source = np.array([C4, H, D4, H, E4, H, C4, H])       # up, up, down
    assert style.contour_agreement(source, source) == 1.0
    transposed = symbolic.transpose_grid(source, 5)
    assert style.contour_agreement(source, transposed) == 1.0
    inverted = np.array([G4, H, E4, H, D4, H, G4, H])     # down, down, up
    assert style.contour_agreement(source, inverted) == 0.0
    # one held note across the first two onsets: "same" where the source goes up; then up, down
    merged = np.array([C4, H, H, H, E4, H, D4, H])
    assert style.contour_agreement(source, merged) == pytest.approx(2 / 3)
    # a rest at the source's third onset breaks the two intervals that touch it; the first holds
    rested = np.array([C4, H, D4, H, R, H, C4, H])
    assert style.contour_agreement(source, rested) == pytest.approx(1 / 3)
    rested_last = np.array([C4, H, D4, H, E4, H, R, R])
    assert style.contour_agreement(source, rested_last) == pytest.approx(2 / 3)
    assert math.isnan(style.contour_agreement(np.array([C4, H, H, H]), np.array([C4, H, D4, H])))


def test_content_preservation_averages_over_the_batch():
    a = np.array([C4, H, D4, H, E4, H, C4, H])
    b = np.array([C4, H, H, H, R, R, R, R])               # one note: no contour
    sources = np.stack([a, b])
    transferred = np.stack([a, np.array([C4, H, D4, H, R, R, R, R])])
    out = style.content_preservation(sources, transferred)
    assert out["onset_agreement"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert out["contour_agreement"] == 1.0  # the one-note source is left out of the mean
    assert out["n"] == 2


def test_content_measures_reject_bad_input():
    with pytest.raises(BadInputError, match="length"):
        style.onset_agreement(np.array([C4, H]), np.array([C4, H, H]))
    with pytest.raises(BadInputError, match="tokens"):
        style.contour_agreement(np.array([C4, 99]), np.array([C4, H]))
    with pytest.raises(BadInputError, match="same shape"):
        style.content_preservation(np.zeros((2, 8), int), np.zeros((3, 8), int))


# Transfer strength ------------------------------------------------------------------------------


class HighNotesAreIrish:
    """Stand-in for the multi-task classifier: P(irish) = share of notes at or above E4."""

    labels: ClassVar[dict] = {"region": ["chinese", "irish"], "mode": ["major", "minor"]}

    def predict_proba(self, grids):
        grids = np.asarray(grids)
        high = np.array([np.mean(g[g >= 2] >= E4) for g in grids])
        return {"region": np.stack([1 - high, high], axis=1), "mode": np.full((len(grids), 2), 0.5)}


def test_transfer_strength_is_the_mean_target_probability():
    low = np.tile([C4, H, D4, H], 8)                      # 32 steps, no note >= E4
    high = np.tile([E4, H, G4, H], 8)
    mixed = np.tile([C4, H, G4, H], 8)
    clf = HighNotesAreIrish()
    grids = np.stack([low, high, mixed])
    assert style.transfer_strength(grids, "irish", clf) == pytest.approx((0 + 1 + 0.5) / 3)
    assert style.transfer_strength(grids, "chinese", clf) == pytest.approx((1 + 0 + 0.5) / 3)
    np.testing.assert_allclose(style.target_probabilities(grids, "irish", clf), [0, 1, 0.5])
    assert style.transfer_strength(high, "irish", clf) == 1.0  # one grid is a batch of one


def test_transfer_strength_rejects_short_or_bad_grids():
    clf = HighNotesAreIrish()
    with pytest.raises(BadInputError, match="at least 32"):
        style.transfer_strength(np.zeros((2, 16), int), "irish", clf)
    with pytest.raises(BadInputError, match="tokens"):
        style.transfer_strength(np.full((1, 32), 70), "irish", clf)
    assert style.transfer_strength(np.tile([C4, H], (3, 16)), "minor", clf, task="mode") == 0.5
    with pytest.raises(BadInputError, match="tempo"):
        style.transfer_strength(np.tile([C4, H], (1, 16)), "fast", clf, task="tempo")
    with pytest.raises(BadInputError, match="martian"):
        style.transfer_strength(np.tile([C4, H], (1, 16)), "martian", clf)


# Latent operations and timbre morphs ------------------------------------------------------------


class AddOneDecoder:
    """A 'VAE' whose code is the grid itself (as floats), decoded by rounding: makes latent moves visible."""

    config = SimpleNamespace(seq_len=32)

    def encode(self, tokens):
        tokens = torch.as_tensor(tokens).float()
        return tokens, torch.zeros_like(tokens)

    def decode(self, z):
        return torch.as_tensor(z).round().long()


def test_attribute_vector_is_a_difference_of_mean_codes_and_moves_decode():
    model = AddOneDecoder()
    with_attribute = np.array([[4, 1, 6, 1], [6, 1, 8, 1]])
    without = np.array([[2, 1, 4, 1]])
    v = style.attribute_vector(model, with_attribute, without)
    np.testing.assert_allclose(v.numpy(), [3, 0, 3, 0])
    z = style.latent_means(model, without)
    np.testing.assert_array_equal(style.decode_moved(model, z, v, 1.0), [[5, 1, 7, 1]])
    np.testing.assert_array_equal(style.decode_moved(model, z, v, 0.0), without)
    centroid = style.latent_means(model, with_attribute).mean(0)
    np.testing.assert_array_equal(style.decode_moved(model, z, centroid - z, 0.5), [[4, 1, 6, 1]])
    with pytest.raises(BadInputError, match="both groups"):
        style.attribute_vector(model, with_attribute, without[:0])


def test_morph_progress_rises_from_zero_to_one_along_a_straight_line():
    x_from, x_to = np.zeros((4, 3)), np.ones((4, 3))
    path = np.stack([x_from + t * (x_to - x_from) for t in np.linspace(0, 1, 5)])
    np.testing.assert_allclose(style.morph_progress(path, x_from, x_to), np.linspace(0, 1, 5))
    assert style.morph_progress(np.zeros((1, 4, 3)), x_from, x_from)[0] == 0.5  # both ends the same
    with pytest.raises(BadInputError, match="morph_progress"):
        style.morph_progress(path, x_from, np.ones(3))


def test_transfer_curve_and_operating_point():
    model = AddOneDecoder()
    sources = np.tile([C4, H, D4, H], (2, 8))  # (2, 32)
    shift = torch.zeros(32)
    shift[::2] = 4.0  # every note-on rises by a major third (C4, D4 -> E4, F#4)
    rows = style.transfer_curve(model, sources, [0.0, 1.0], vector=shift, target="irish",
                                classifier=HighNotesAreIrish())
    assert [r["strength"] for r in rows] == [0.0, 1.0]  # E4 and above count as Irish: only after the shift
    assert [r["onset_agreement"] for r in rows] == [1.0, 1.0] and rows[1]["contour_agreement"] == 1.0
    assert style.pick_operating_point(rows)["alpha"] == 1.0
    to_centroid = style.transfer_curve(model, sources, [0.0, 1.0], centroid=torch.zeros(32))
    assert to_centroid[1]["onset_agreement"] == 0.0 and "strength" not in to_centroid[1]
    weak = [{"alpha": 0.0, "strength": 0.2, "onset_agreement": 0.9}, {"alpha": 1.0, "strength": 0.6, "onset_agreement": 0.6},
            {"alpha": 2.0, "strength": 0.9, "onset_agreement": 0.3}]
    assert style.pick_operating_point(weak)["alpha"] == 1.0  # the strongest that keeps the onsets
    with pytest.raises(BadInputError, match="exactly one"):
        style.transfer_curve(model, sources, [0.0])


def test_long_melodies_move_phrase_by_phrase():
    grid = np.concatenate([np.tile([C4, H], 15), [D4, H], [H, H], np.tile([E4, H], 15)])  # D4 tied over the cut
    phrases = style.split_phrases(grid[None])
    assert phrases.shape == (2, 32) and phrases[1, 0] == D4 and phrases[1, 1] == H
    np.testing.assert_array_equal(style.split_phrases(grid[None]).reshape(1, -1)[:, :32], grid[None, :32])
    model = AddOneDecoder()
    rows = style.transfer_curve(model, np.stack([grid, grid]), [0.0], vector=torch.zeros(32),
                                target="irish", classifier=HighNotesAreIrish())
    assert rows[0]["grids"].shape == (2, 64)
    assert rows[0]["onset_agreement"] == pytest.approx(2 * 31 / (31 + 32))  # the re-struck D4 is one extra onset
    assert rows[0]["strength"] == pytest.approx(15 / 32)  # the whole melody is judged: 15 of its 32 notes are >= E4
    with pytest.raises(BadInputError, match="multiple of 32"):
        style.split_phrases(np.zeros((1, 40), int))


def test_strength_versus_the_source_renormalises_over_two_styles():
    class ThreeWay:
        labels: ClassVar[dict] = {"region": ["a", "b", "c"]}

        def predict_proba(self, grids):
            return {"region": np.tile([0.2, 0.1, 0.7], (len(grids), 1))}

    grids = np.tile([C4, H], (2, 16))
    assert style.transfer_strength(grids, "a", ThreeWay()) == pytest.approx(0.2)
    assert style.transfer_strength(grids, "a", ThreeWay(), versus="b") == pytest.approx(2 / 3)
    with pytest.raises(BadInputError, match="'d'"):
        style.transfer_strength(grids, "a", ThreeWay(), versus="d")


class IdentityEncoder:
    def encode(self, tokens):
        z = torch.as_tensor(tokens, dtype=torch.float64)
        return z, torch.zeros_like(z)


def test_attribute_vector_maps_one_gaussian_class_onto_the_other():
    """Chapter 8's derivation: with a shared covariance, z + v for z ~ N(m_B, S) is N(m_A, S), and the
    Bayes log-odds rise by alpha * Delta^2, Delta^2 = v' S^-1 v."""
    g = np.random.default_rng(0)
    m_a, m_b = np.array([1.0, -0.5]), np.array([-0.5, 0.5])
    cov = np.array([[1.0, 0.6], [0.6, 2.0]])
    z_a, z_b = g.multivariate_normal(m_a, cov, 100_000), g.multivariate_normal(m_b, cov, 100_000)
    v = style.attribute_vector(IdentityEncoder(), z_a, z_b).numpy()
    np.testing.assert_allclose(v, m_a - m_b, atol=0.03)
    moved = z_b + v
    np.testing.assert_allclose(moved.mean(0), z_a.mean(0), atol=1e-9)
    np.testing.assert_allclose(np.cov(moved.T), np.cov(z_a.T), atol=0.05)
    w = np.linalg.solve(cov, m_a - m_b)
    gain = ((z_b + 0.5 * (m_a - m_b)) @ w - z_b @ w).mean()
    assert gain == pytest.approx(0.5 * (m_a - m_b) @ w)


def test_operating_point_falls_back_to_the_most_faithful_row_and_needs_strengths():
    unfaithful = [{"alpha": 1.0, "strength": 0.9, "onset_agreement": 0.3}, {"alpha": 2.0, "strength": 0.95, "onset_agreement": 0.2}]
    assert style.pick_operating_point(unfaithful)["alpha"] == 1.0
    with pytest.raises(BadInputError, match="target"):
        style.pick_operating_point([{"alpha": 0.0, "onset_agreement": 1.0}])


def test_content_preservation_of_one_note_phrases_has_no_contour():
    one_note = np.array([[C4, H, H, H]])
    out = style.content_preservation(one_note, one_note)
    assert out["onset_agreement"] == 1.0 and math.isnan(out["contour_agreement"])
