"""Chapter 13: every symbolic metric on inputs small enough to compute by hand, the KDE-based KL and
overlap against closed forms, and the copy rate shared with chapters 4 and 15."""
import math

import numpy as np
import pytest
import scipy.stats

from musiclab import metrics, symbolic
from musiclab.errors import BadInputError

C4, D4, E4, G4, C5 = (symbolic.pitch_to_token(p) for p in (60, 62, 64, 67, 72))
H, R = symbolic.HOLD, symbolic.REST
# C4 quarter, D4 8th + 8th rest, E4 dotted quarter, C5 16th, G4 16th then 3 rests (16 steps)
GRID = np.array([C4, H, H, H, D4, H, R, R, E4, H, H, H, H, H, C5, G4])


def test_note_lengths_exclude_rests_and_iois_include_them():
    assert metrics.grid_note_lengths(GRID).tolist() == [4, 2, 6, 1, 1]
    pitches, iois = metrics.grid_notes(GRID)
    assert pitches.tolist() == [60, 62, 64, 72, 67] and iois.tolist() == [4, 4, 6, 1, 1]
    assert metrics.grid_note_lengths(np.array([R, H, C4, R])).tolist() == [1]


def test_piece_features_by_hand():
    f = metrics.piece_features(GRID)
    assert f["pitch_count"] == 5 and f["note_count"] == 5
    assert f["pitch_range"] == 72 - 60
    assert f["average_interval"] == pytest.approx((2 + 2 + 8 + 5) / 4)
    assert f["average_ioi"] == pytest.approx((4 + 4 + 6 + 1) / 4 / 4)  # quarter notes
    assert f["pitch_class_histogram"][[0, 2, 4, 7]].tolist() == [0.4, 0.2, 0.2, 0.2]
    pct = f["pitch_class_transitions"]
    assert pct.sum() == pytest.approx(1) and pct[0, 2] == pct[2, 4] == pct[4, 0] == pct[0, 7] == 0.25
    names = metrics.NOTE_LENGTH_NAMES
    nlh = dict(zip(names, f["note_length_histogram"]))
    assert nlh["quarter"] == nlh["8th"] == nlh["dotted quarter"] == 0.2 and nlh["16th"] == 0.4
    nlt = f["note_length_transitions"]
    q, e, dq, s = (names.index(n) for n in ("quarter", "8th", "dotted quarter", "16th"))
    assert nlt[q, e] == nlt[e, dq] == nlt[dq, s] == nlt[s, s] == 0.25


def test_note_length_classes_and_empty_piece():
    assert metrics.note_length_classes([1, 2, 3, 4, 5, 6, 8, 12, 16, 17, 40]).tolist() == [0, 1, 2, 3, 8, 4, 5, 6, 7, 8, 8]
    f = metrics.piece_features(np.array([R, R, H], dtype=np.int64))
    assert f["note_count"] == 0 and f["pitch_range"] == 0 and f["pitch_class_histogram"].sum() == 0
    with pytest.raises(BadInputError):
        metrics.piece_features(np.array([[2, 3]]))


def test_intra_and_inter_set_distances():
    a = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    assert sorted(metrics.feature_distances(a).tolist()) == pytest.approx([1.0, math.sqrt(18), 5.0])
    assert metrics.feature_distances(a, np.array([[0.0, 0.0]])).tolist() == [0.0, 5.0, 1.0]
    with pytest.raises(BadInputError):
        metrics.feature_distances(a[:1])


def test_kde_matches_scipy_and_integrates_to_one():
    rng = np.random.default_rng(0)
    s = rng.normal(size=50)
    x = np.linspace(-4, 4, 9)
    assert np.exp(metrics.kde_log_density(s, x)) == pytest.approx(scipy.stats.gaussian_kde(s)(x), rel=1e-9)
    grid = metrics.density_grid(s, s + 3)
    assert np.trapezoid(np.exp(metrics.kde_log_density(s, grid)), grid) == pytest.approx(1, abs=1e-9)
    many = rng.gamma(2.0, size=20_000)  # more samples than one chunk of the computation
    assert np.exp(metrics.kde_log_density(many, x)) == pytest.approx(scipy.stats.gaussian_kde(many)(x), rel=1e-9)
    # identical values: a narrow spike, not a crash (scipy's kde raises on singular data)
    assert np.isfinite(metrics.kde_log_density([2.0, 2.0, 2.0], [2.0])).all()


@pytest.mark.parametrize("mu", [0.0, 0.5, 2.0])
def test_kl_and_overlap_of_two_unit_gaussians(mu):
    # one sample each with bandwidth 1: p = N(0, 1), q = N(mu, 1)
    # KL(p || q) = mu^2 / 2; overlap = 2 Phi(-|mu| / 2)
    bandwidths = (1.0, 1.0)
    assert metrics.kl_divergence_kde([0.0], [mu], bandwidths) == pytest.approx(mu ** 2 / 2, abs=1e-6)
    expected = 2 * scipy.stats.norm.cdf(-abs(mu) / 2)
    # min(p, q) has a kink where p = q, so the trapezoid rule is only second-order accurate there
    assert metrics.overlap_area([0.0], [mu], bandwidths) == pytest.approx(expected, abs=1e-4)


def test_kl_of_gaussians_with_different_widths():
    # KL(N(0, 1) || N(0, 2^2)) = log 2 + 1 / 8 - 1 / 2
    assert metrics.kl_divergence_kde([0.0], [0.0], (1.0, 2.0)) == pytest.approx(math.log(2) + 1 / 8 - 0.5, abs=1e-6)


def test_compare_sets_identical_vs_different():
    rng = np.random.default_rng(0)
    scale = [symbolic.pitch_to_token(p) for p in (60, 62, 64, 65, 67, 69, 71, 72)]
    def tune(tokens):
        return np.array([t for tok in tokens for t in (tok, H)])
    real, more_real = ([tune(rng.choice(scale, 16)) for _ in range(40)] for _ in range(2))
    same = metrics.compare_sets(real, more_real)
    other = metrics.compare_sets(real, [tune([C4] * 16) for _ in range(30)])
    # inter-set distances of two samples of one distribution look like intra-set ones
    assert same["pitch_range"]["overlap"] > 0.85 and same["pitch_range"]["kl"] < 0.1
    assert other["pitch_range"]["overlap"] < 0.3 and other["pitch_range"]["kl"] > 1
    assert other["pitch_count"]["mean_generated"] == 1 and other["note_count"]["mean_reference"] == 16
    assert len(other["note_count"]["intra_reference"]) == 40 * 39 // 2
    assert len(other["note_count"]["inter"]) == 40 * 30


def test_copy_rate_counts_runs_found_in_training():
    scale = np.array([2 + 24 + i for i in range(10)])  # C4, C#4, ... (10 notes: 3 runs of 8)
    assert metrics.copy_rate([scale], [scale]) == 1.0
    assert metrics.copy_rate([scale], [scale[::-1]]) == 0.0
    assert metrics.copy_rate([scale], [scale[:9]]) == pytest.approx(2 / 3)
    assert np.isnan(metrics.copy_rate([scale[:5]], [scale]))
    # a transposed copy: found only when comparing intervals
    assert metrics.copy_rate([scale + 2], [scale]) == pytest.approx(1 / 3)  # 1 run overlaps in pitch
    assert metrics.copy_rate([scale + 2], [scale], transposition_invariant=True) == 1.0
    assert metrics.pitch_ngrams(scale, 3) >= {(60, 61, 62)}
    index = metrics.ngram_index([scale[:9]], n=8)
    assert len(index) == 2 and metrics.copy_rate([scale], index) == pytest.approx(2 / 3)


def test_histogram_js_divergences():
    a = np.array([C4, D4])
    js = metrics.histogram_js_divergences([a], [a])
    assert all(v == pytest.approx(0, abs=1e-12) for v in js.values())
    # pitch classes {C, D} vs {E}: disjoint, JSD = log 2
    assert metrics.histogram_js_divergences([a], [np.array([E4])])["pitch_class"] == pytest.approx(math.log(2))


def test_frechet_distance_of_one_dimensional_gaussians():
    # FD of N(m1, s1^2) and N(m2, s2^2) in 1-D = (m1 - m2)^2 + (s1 - s2)^2
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (20000, 1)), rng.normal(3, 2, (20000, 1))
    assert metrics.frechet_distance(a, b) == pytest.approx(9 + 1, rel=0.02)
