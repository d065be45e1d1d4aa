"""Tests of musiclab.memorisation: copy-rate curves and nearest-neighbour checks."""
import numpy as np

from musiclab import memorisation, symbolic
from musiclab.models import gan


def grid(pitches):
    return symbolic.notes_to_grid([symbolic.Note(p, i / 4, 0.25, 80) for i, p in enumerate(pitches)])


def test_copy_rate_curve_copies_and_originals():
    training = [grid([60, 62, 64, 65, 67, 69, 71, 72, 74, 76])]
    copy = [grid([60, 62, 64, 65, 67, 69, 71, 72])]
    transposed = [grid([62, 64, 66, 67, 69, 71, 73, 74])]
    curve = memorisation.copy_rate_curve(copy, training, transposed, ns=[4, 8])
    assert curve == {"n": [4, 8], "generated": [1.0, 1.0], "held_out": [0.0, 0.0]}
    invariant = memorisation.copy_rate_curve(copy, training, transposed, ns=[4, 8], transposition_invariant=True)
    assert invariant["held_out"] == [1.0, 1.0]  # same intervals in another key


def test_nearest_distances():
    references = np.arange(12.0).reshape(3, 4)
    queries = np.stack([references[1], references[2] + 2.0])
    assert np.allclose(memorisation.nearest_distances(queries, references), [0.0, 2.0])


def test_gan_nearest_training_distances_shapes():
    cfg = gan.GanConfig(programs=(40,), pitches=(60, 62), width=4)
    result = memorisation.gan_nearest_training_distances(gan.Generator(cfg), n_train_per_condition=3,
                                                         n_per_condition=2)
    assert set(result) == {"generated", "held_out"}
    assert result["generated"].shape == result["held_out"].shape == (4,)
    assert np.all(result["held_out"] > 0) and np.all(np.isfinite(result["generated"]))
