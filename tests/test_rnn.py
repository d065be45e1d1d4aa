"""Chapter 4: sequence losses against likelihoods computed another way, the piano-roll scorer's
units on a hand-computable roll, the RNN models' shapes and sampling, and bad input."""
import itertools
import math

import numpy as np
import pytest
import torch

from musiclab import cli, datasets, losses, metrics, recipes, symbolic, weights
from musiclab.datasets import user
from musiclab.errors import BadInputError
from musiclab.models import audio_rnn, rnn


# Losses --------------------------------------------------------------------------------------------


def test_sequence_nll_is_the_mean_log_probability_of_the_real_tokens_ignoring_padding():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    targets = torch.randint(0, 7, (2, 5))
    targets[1, 3:] = -100
    probs = torch.softmax(logits, -1)
    terms = [-math.log(probs[b, t, targets[b, t]]) for b in range(2) for t in range(5) if targets[b, t] >= 0]
    assert losses.sequence_nll(logits, targets).item() == pytest.approx(np.mean(terms), rel=1e-5)


def test_pianoroll_nll_is_the_log_of_a_product_of_bernoullis():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 6)
    roll = (torch.rand(3, 4, 6) < 0.3).float()
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.float)
    p = torch.sigmoid(logits).double()
    frame_prob = torch.where(roll.bool(), p, 1 - p).prod(-1)  # the frame's probability, directly
    expected = -(torch.log(frame_prob) * mask).sum() / mask.sum()
    assert losses.pianoroll_nll(logits, roll, mask).item() == pytest.approx(expected.item(), rel=1e-5)
    assert losses.pianoroll_nll(logits, roll).item() == pytest.approx(-torch.log(frame_prob).mean().item(), rel=1e-5)


def test_made_output_is_a_normalised_joint_distribution_over_each_frame():
    # With 5 keys there are 32 possible frames: enumerate them. The chain-rule sum of the Bernoulli
    # terms must be the log of a distribution whose 32 probabilities add up to exactly 1, which only
    # holds if key k's log-odds depend on keys j < k alone.
    torch.manual_seed(0)
    model = rnn.PolyRNN(rnn.PolyConfig(n_keys=5, hidden_dim=8, made_dim=12, output="made", dropout=0.0)).eval()
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, std=1.0)
    h = torch.randn(1, 8)
    frames = torch.tensor(list(itertools.product([0, 1], repeat=5)), dtype=torch.float)
    with torch.no_grad():
        logits = model.frame_logits(h.expand(32, -1), frames)
        log_p = torch.stack([-losses.pianoroll_nll(logits[i], frames[i]) for i in range(32)])
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    # And the probabilities really depend on the frame (it is not 88 independent coin flips):
    independent = rnn.PolyRNN(rnn.PolyConfig(n_keys=5, hidden_dim=8, output="independent")).eval()
    assert (log_p.exp() - log_p.exp().mean()).abs().max() > 1e-3
    assert independent.frame_logits(h, frames[:1]).shape == (1, 5)


def test_made_masks_let_each_key_see_only_lower_keys():
    to_hidden, to_output, direct = rnn.made_masks(6, 10)
    reach = (to_output @ to_hidden + direct) > 0  # output k <- input j through any path
    assert torch.equal(reach, torch.tril(torch.ones(6, 6, dtype=torch.bool), diagonal=-1))


def test_gaussian_binned_nll_sums_to_one_and_matches_the_integral():
    edges = audio_rnn.mu_law_bin_edges(256)
    mean, sigma = torch.tensor(0.1, dtype=torch.float64), 0.05
    all_bins = torch.arange(256)
    probs = torch.stack([torch.exp(-losses.gaussian_binned_nll(b[None], mean[None], sigma, edges)) for b in all_bins])
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-6)
    # A bin far from the tails: probability = the Gaussian density integrated by the midpoint rule.
    b = int(np.argmax(probs.numpy()))
    lo, hi = edges[b].item(), edges[b + 1].item()
    xs = np.linspace(lo, hi, 2001)
    density = np.exp(-(xs - 0.1) ** 2 / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))
    assert probs[b].item() == pytest.approx(np.trapezoid(density, xs), rel=1e-4)


# The scorer ---------------------------------------------------------------------------------------


def _constant_model(p_on: float) -> rnn.PolyRNN:
    """A model that predicts every key on with probability p_on, whatever the past."""
    model = rnn.PolyRNN(rnn.PolyConfig(hidden_dim=4, dropout=0.0))
    with torch.no_grad():
        model.key_bias.weight.zero_()
        model.key_bias.bias.fill_(math.log(p_on / (1 - p_on)))
    return model.eval()


def _hand_roll() -> np.ndarray:
    roll = np.zeros((4, 88), dtype=np.uint8)
    roll[0, :] = 1  # the first frame is context only: all 88 keys on would cost a lot if it counted
    roll[1, [39, 43, 46]] = 1  # C major triad
    roll[2, [39, 43, 46, 51]] = 1
    return roll  # frame 3: silence


def test_scorer_units_on_a_hand_computable_roll():
    score = metrics.score_rolls(_constant_model(0.5), [_hand_roll()])
    assert score["n_frames"] == 3 and score["n_rolls"] == 1
    assert score["nll_per_frame"] == pytest.approx(88 * math.log(2), rel=1e-5)  # 61.0 nats per frame
    # p = 0.1: frames 1..3 have 3, 4 and 0 keys on.
    on = np.array([3, 4, 0])
    expected = -np.mean(on * math.log(0.1) + (88 - on) * math.log(0.9))
    score = metrics.score_rolls(_constant_model(0.1), [_hand_roll()])
    assert score["nll_per_frame"] == pytest.approx(expected, rel=1e-5)


def test_scorer_pools_frames_over_rolls_of_different_lengths():
    model = _constant_model(0.1)
    short, long = _hand_roll()[:2], _hand_roll()
    pooled = metrics.score_rolls(model, [short, long])
    per_frame = [-(3 * math.log(0.1) + 85 * math.log(0.9))] * 2 + [-(4 * math.log(0.1) + 84 * math.log(0.9)),
                                                                  -88 * math.log(0.9)]
    assert pooled["n_frames"] == 4 and pooled["nll_per_frame"] == pytest.approx(np.mean(per_frame), rel=1e-5)


def test_score_command_on_npz_and_midi(tmp_path, capsys):
    weights_path = tmp_path / "constant.safetensors"
    weights.save_weights(weights_path, "poly-rnn", _constant_model(0.5), rnn.PolyConfig(hidden_dim=4, dropout=0.0), {})
    np.savez(tmp_path / "rolls.npz", a=_hand_roll(), b=_hand_roll())
    assert cli.main(["score", "poly-rnn", str(tmp_path / "rolls.npz"), "--weights", str(weights_path)]) == 0
    out = capsys.readouterr().out
    assert f"{88 * math.log(2):.4f} nats per frame" in out and "6 frames in 2 piano roll(s)" in out
    notes = symbolic.pianoroll_to_notes(_hand_roll()[1:3])
    symbolic.notes_to_midi(notes, tmp_path / "chords.mid")
    result = recipes.rnn.score_pianoroll_file("poly-rnn", tmp_path / "chords.mid", weights_path)
    assert result["n_frames"] == 1 and result["nll_per_frame"] == pytest.approx(88 * math.log(2), rel=1e-5)


@pytest.mark.parametrize("arrays, message", [
    ({"a": np.zeros((5, 12))}, "expected shape (T, 88)"),
    ({"a": np.full((5, 88), 2)}, "values must be 0 or 1"),
    ({"a": np.full((5, 88), np.nan)}, "values must be 0 or 1"),
    ({"a": np.zeros((1, 88))}, "fewer than 2 frames"),
    ({}, "empty"),
])
def test_bad_piano_rolls_are_named(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(BadInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        metrics.score_rolls(_constant_model(0.5), user.read_pianorolls(tmp_path / "bad.npz"))


def test_bad_files_are_named(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(BadInputError, match="empty file"):
        user.read_pianorolls(tmp_path / "empty.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(BadInputError, match="not a readable .npz"):
        user.read_pianorolls(tmp_path / "junk.npz")
    (tmp_path / "roll.txt").write_text("0 1")
    with pytest.raises(BadInputError, match="expected a MIDI file"):
        user.read_pianorolls(tmp_path / "roll.txt")
    with pytest.raises(BadInputError, match=r"0 usable piano-roll file\(s\) \(2 skipped\)"):
        user.read_pianoroll_folder(tmp_path)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(BadInputError, match="no train.npz"):
        user.read_pianoroll_folder(tmp_path / "nothing")


def test_train_poly_on_user_npz_folder(tmp_path):
    rng = np.random.default_rng(0)
    rolls = {f"r{i}": (rng.random((12, 88)) < 0.05).astype(np.uint8) for i in range(6)}
    np.savez(tmp_path / "train.npz", **rolls)
    np.savez(tmp_path / "valid.npz", **dict(list(rolls.items())[:2]))
    result = recipes.rnn.train_poly(out_dir=tmp_path / "out", steps=3, data=str(tmp_path), progress=False)
    assert (tmp_path / "out" / "poly-rnn.safetensors").exists() and "test_nll" not in result
    assert 0 < result["valid_nll"] < 88 * math.log(2) + 1
    np.savez(tmp_path / "test.npz", **dict(list(rolls.items())[2:4]))
    result = recipes.rnn.train_poly(out_dir=tmp_path / "out2", steps=3, data=str(tmp_path), progress=False)
    assert 0 < result["test_nll"] < 88 * math.log(2) + 1


def test_transpose_pianoroll_moves_notes_and_refuses_to_drop_them():
    roll = np.zeros((3, 88), dtype=np.uint8)
    roll[0, 39], roll[2, 86] = 1, 1  # C4 and the second-highest key
    up = symbolic.transpose_pianoroll(roll, 1)
    assert up[0, 40] == 1 and up[2, 87] == 1 and up.sum() == roll.sum()
    np.testing.assert_array_equal(symbolic.transpose_pianoroll(up, -1), roll)
    with pytest.raises(BadInputError, match="transpose by 2"):
        symbolic.transpose_pianoroll(roll, 2)


def test_transposed_rolls_draw_every_shift_that_fits_and_no_other():
    roll = np.zeros((4, 88), dtype=np.uint8)
    roll[:, [2, 84]] = 1  # 2 keys of room below, 3 above
    data = datasets.TransposedRolls([roll], transpose=range(-6, 7))
    torch.manual_seed(0)
    shifts = {int(np.flatnonzero(data[0][0])[0]) - 2 for _ in range(200)}
    assert shifts == set(range(-2, 4))
    np.testing.assert_array_equal(datasets.TransposedRolls([roll], transpose=None)[0], roll)


def test_chorales_move_back_to_the_key_bach_wrote_them_in():
    chorale = next(c for c in datasets.load_chorales(progress=False) if c.key.split()[0] not in ("C", "c"))
    tonic = symbolic.pitch_class_of(chorale.key.split()[0])
    shift = (chorale.original_roll.argmax(axis=1) - chorale.roll.argmax(axis=1))[chorale.roll.any(axis=1)]
    assert len(set(shift)) == 1 and shift[0] % 12 == tonic  # the whole roll moves from C to the tonic


# Models -------------------------------------------------------------------------------------------


def test_poly_generate_keeps_the_prime_and_returns_binary_frames():
    for output in ("independent", "made"):
        model = rnn.PolyRNN(rnn.PolyConfig(hidden_dim=16, made_dim=32, output=output))
        roll = model.generate(3, generator=torch.Generator().manual_seed(0))
        assert roll.shape == (4, 88) and set(np.unique(roll)) <= {0, 1}
        assert roll[0, 60 - 21] == 1  # the default prime, a C major triad


def _melody_model():
    config = rnn.MelodyConfig(regions=[rnn.UNKNOWN, "Irish"], tune_types=[rnn.UNKNOWN, "reel"],
                              embed_dim=8, condition_dim=4, hidden_dim=16, n_layers=1)
    return rnn.MelodyRNN(config)


def test_melody_rnn_shapes_top_k_and_conditions():
    model = _melody_model()
    logits, _ = model(torch.zeros(2, 7, dtype=torch.long), torch.tensor([0, 1]), torch.tensor([1, 0]))
    assert logits.shape == (2, 7, symbolic.VOCAB_SIZE)
    assert model.condition_index("Irish", "jig") == (1, 0)  # an unseen label falls back to UNKNOWN
    a = model.generate(20, prime=[2, 1, 1, 1], top_k=1)
    b = model.generate(20, prime=[2, 1, 1, 1], top_k=1)
    assert np.array_equal(a, b) and a.shape == (20,) and a.max() < symbolic.VOCAB_SIZE  # top-1 = greedy
    with pytest.raises(BadInputError, match="temperature"):
        model.generate(5, temperature=0)
    with pytest.raises(BadInputError, match="prime"):
        model.generate(5, prime=[99])


def test_melody_sequences_shift_by_one_and_pad_with_ignore():
    config = _melody_model().config
    tune = type("T", (), {"region": "Irish", "tune_type": "reel", "grid": np.array([2, 1, 5, 0, 7])})()
    x, y, region, tune_type = recipes.rnn.melody_sequences([tune], config, length=4)
    assert x.tolist() == [[config.start_token, 2, 1, 5], [0, 0, 0, 0]]
    assert y.tolist() == [[2, 1, 5, 0], [7, -100, -100, -100]]
    assert region.tolist() == [1, 1] and tune_type.tolist() == [1, 1]


def test_melody_prime_rejects_polyphony_and_reads_abc():
    with pytest.raises(BadInputError):
        rnn.melody_to_prime("X:1\nK:C\n[CE]2 G2|\n")
    prime = rnn.melody_to_prime("X:1\nM:4/4\nL:1/8\nK:C\nCDEF GABc|\n")
    assert prime[0] == symbolic.pitch_to_token(60) and len(prime) == 16


def test_melody_statistics():
    grid = np.array([2 + 24, 1, 2 + 26, 1, 1, 1, 0, 2 + 24])  # C4 (2), D4 (4 + rest), C4 (1)
    pitches, durations = metrics.grid_notes(grid)
    assert pitches.tolist() == [60, 62, 60] and durations.tolist() == [2, 5, 1]
    h = metrics.melody_histograms([grid])
    assert h["interval"][12 + 2] == 0.5 and h["pitch_class"][0] == pytest.approx(2 / 3)
    long_run = np.array([2 + i for i in range(10)])
    assert metrics.copy_rate([long_run], [long_run]) == 1.0
    assert metrics.copy_rate([long_run], [long_run[::-1]]) == 0.0


def test_audio_rnn_outputs_and_generation():
    for output in ("categorical", "gaussian"):
        model = audio_rnn.AudioRNN(audio_rnn.AudioConfig(hidden_dim=8, embed_dim=4, output=output))
        out, _ = model(torch.zeros(2, 10, dtype=torch.long))
        assert out.shape == ((2, 10, 256) if output == "categorical" else (2, 10))
        levels = model.generate(50, prime=[128, 130], sigma=0.01, generator=torch.Generator().manual_seed(0))
        assert levels.shape == (50,) and 0 <= levels.min() and levels.max() <= 255


def test_train_command_with_data_on_a_midi_folder(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for i in range(12):  # enough files that the 90/10 split by name leaves some in each part
        roll = (rng.random((10, 88)) < 0.04).astype(np.uint8)
        roll[:, 39] = 1  # never an empty file
        symbolic.notes_to_midi(symbolic.pianoroll_to_notes(roll), tmp_path / f"piece{i}.mid")
    data, description, skipped = user.read_pianoroll_folder(tmp_path)
    assert len(data["train"]) + len(data["valid"]) == 12 and data["valid"] and not skipped
    assert "12 files split by file" in description
    out = tmp_path / "out"
    assert cli.main(["train", "poly-made", "--steps", "2", "--data", str(tmp_path), "--out", str(out)]) == 0
    assert (out / "poly-made.safetensors").exists() and "history" not in capsys.readouterr().out


@pytest.mark.parametrize("name", ["poly-rnn", "poly-made"])
def test_shipped_polyphonic_models_score_every_key_alike(name):
    """A chorale a few semitones up or down is as likely as in C: within 0.3 nats per frame."""
    model, _ = rnn.load_pretrained(name)
    rolls = [c.roll for c in datasets.load_chorales("test", progress=False)]
    in_c = metrics.score_rolls(model, rolls)["nll_per_frame"]
    for shift in (-3, -2, -1, 1, 2, 3):
        moved = metrics.score_rolls(model, [symbolic.transpose_pianoroll(r, shift) for r in rolls])["nll_per_frame"]
        assert abs(moved - in_c) <= 0.3, f"{name}: {moved:.2f} nats/frame at {shift:+d} against {in_c:.2f} in C"
