"""Chapter 9: the CycleGAN losses on hand-computable values, the log-spectral distance, the models'
shapes, identity start and errors, the straight-through tokens, and the recipes' files."""
import json
import math

import numpy as np
import pytest
import torch

from musiclab import audio, losses, recipes, symbolic, weights
from musiclab.errors import BadInputError
from musiclab.models import cyclegan

# Losses ------------------------------------------------------------------------------------------------


def test_cycle_consistency_l1_by_hand():
    a, a_cycled = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.5, 1.0]])  # |.| = 0.5, 1.0 -> mean 0.75
    b, b_cycled = torch.zeros(1, 4), torch.full((1, 4), -0.25)  # mean 0.25
    assert losses.cycle_consistency_loss(a, a_cycled, b, b_cycled).item() == pytest.approx(1.0)
    assert losses.cycle_consistency_loss(a, a, b, b).item() == 0.0


def test_cycle_consistency_cross_entropy_by_hand():
    tokens = torch.tensor([[0, 2, 1]])
    uniform = torch.zeros(1, 4, 3)  # p = 1/4 for each of 4 tokens: -log p = log 4 per step
    assert losses.cycle_consistency_loss(tokens, uniform, tokens, uniform, "cross_entropy").item() == \
        pytest.approx(2 * math.log(4))
    certain = torch.nn.functional.one_hot(tokens, 4).permute(0, 2, 1).float() * 100
    assert losses.cycle_consistency_loss(tokens, certain, tokens, certain, "cross_entropy").item() == \
        pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="distance"):
        losses.cycle_consistency_loss(tokens, uniform, tokens, uniform, "l2")


def test_identity_loss_pairs_each_domain_with_the_generator_into_it():
    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    # F(a) = a and G(b) = b: nothing changed, no loss; G(b) = 0 costs mean |0 - 1| = 1
    assert losses.identity_loss(a, a.clone(), b, b.clone()).item() == 0.0
    assert losses.identity_loss(a, a.clone(), b, torch.zeros(2, 3)).item() == pytest.approx(1.0)


def test_cyclegan_generator_loss_is_the_weighted_sum():
    scores_b, scores_a = torch.tensor([1.0, 3.0]), torch.tensor([-2.0])  # hinge terms: -2 and +2
    total = losses.cyclegan_generator_loss(scores_b, scores_a, torch.tensor(0.5), torch.tensor(0.2),
                                           lambda_cycle=10.0, lambda_identity=5.0)
    assert total.item() == pytest.approx(-2 + 2 + 10 * 0.5 + 5 * 0.2)


# Log-spectral distance ----------------------------------------------------------------------------------


def test_log_spectral_distance_by_hand():
    a = np.zeros((4, 3), np.float32)
    one_nat = np.ones((4, 3), np.float32)  # 1 nat = 20 / ln 10 = 8.686 dB in every bin
    assert audio.log_spectral_distance_db(a, one_nat) == pytest.approx(20 / math.log(10), rel=1e-5)
    assert audio.log_spectral_distance_db(a, a) == 0.0
    b = a.copy()
    b[0, 0] = 2 * math.log(10) / 20 * 10  # +20 dB in one bin of frame 0: RMS = 20 / 2, mean over 3 frames
    assert audio.log_spectral_distance_db(a, b) == pytest.approx(20 / 2 / 3, rel=1e-5)
    # below the floor nothing counts: -200 dB and -100 dB both read as -80 dB
    quiet = np.full((4, 3), -200 / 20 * math.log(10), np.float32)
    quieter = np.full((4, 3), -100 / 20 * math.log(10), np.float32)
    assert audio.log_spectral_distance_db(quiet, quieter) == 0.0
    with pytest.raises(BadInputError, match="shape"):
        audio.log_spectral_distance_db(a, a[:, :2])


# Models --------------------------------------------------------------------------------------------------


def test_generators_start_as_the_identity_and_take_any_length():
    model = cyclegan.CycleGAN(cyclegan.CycleGanConfig(hidden=16, n_blocks=2))
    x = torch.rand(2, cyclegan.N_MELS, 37) * 2 - 1
    assert torch.equal(model.a_to_b(x), x)
    with torch.no_grad():
        model.a_to_b.output.bias.fill_(0.4)
    assert torch.allclose(model.a_to_b(x, strength=0.5), x + 0.2)
    assert cyclegan.Discriminator(model.config)(x).shape == (2, 37 // 4)
    with pytest.raises(BadInputError, match="expected shape"):
        model.a_to_b(torch.zeros(2, 10, 37))
    with pytest.raises(BadInputError, match="direction"):
        model.generator("sideways")


def test_symbolic_generator_copies_at_start_and_hard_tokens_are_straight_through():
    config = cyclegan.CycleGanConfig(n_channels=symbolic.VOCAB_SIZE, hidden=16, n_blocks=2, kind="symbolic")
    model = cyclegan.CycleGAN(config)
    grids = np.array([[2, 1, 0, 30, 1, 1, 5, 0]])
    assert np.array_equal(cyclegan.translate_grids(model, grids), grids)
    with torch.no_grad():
        model.a_to_b.output.bias[7] = 20.0  # a learned change towards token 7 everywhere
    assert (cyclegan.translate_grids(model, grids) == 7).all()
    assert np.array_equal(cyclegan.translate_grids(model, grids, strength=0.0), grids)
    logits = torch.randn(1, 5, 3, requires_grad=True)
    hard = cyclegan.hard_tokens(logits)
    assert torch.allclose(hard.detach(), torch.nn.functional.one_hot(logits.argmax(1), 5).permute(0, 2, 1).float())
    weights = torch.randn(1, 5, 3)
    (hard * weights).sum().backward()
    soft_logits = logits.detach().clone().requires_grad_(True)
    (soft_logits.softmax(1) * weights).sum().backward()
    assert torch.allclose(logits.grad, soft_logits.grad)
    with pytest.raises(BadInputError, match="tokens"):
        cyclegan.grids_to_one_hot(np.array([[0, symbolic.VOCAB_SIZE]]))


def test_log_mel_encoding_round_trip_above_the_floor():
    log_mel = np.array([[-9.0, -3.0, 0.0], [-20.0, -1.0, -5.0]], np.float32)  # -20 nats is below -80 dB
    x = cyclegan.encode_log_mel(log_mel)
    assert x.min() == pytest.approx(-1.0) and x.max() == pytest.approx(1.0)
    expected = np.maximum(log_mel, cyclegan.FLOOR_DB / 20 * math.log(10))
    assert np.allclose(cyclegan.decode_log_mel(x), expected, atol=1e-5)


def test_unpaired_batches_draw_windows_from_each_side():
    side_a = [np.zeros((3, 10), np.float32), np.zeros((3, 12), np.float32)]
    side_b = [np.ones((3, 9), np.float32)]
    batches = list(recipes.cyclegan.UnpairedBatches(side_a, side_b, batch_size=4, n_frames=8, batches_per_pass=2))
    assert len(batches) == 2
    a, b = batches[0]
    assert a.shape == b.shape == (4, 3, 8) and a.sum() == 0 and b.min() == 1


def test_cyclegan_step_trains_both_sides():
    torch.manual_seed(0)
    config = cyclegan.CycleGanConfig(n_channels=symbolic.VOCAB_SIZE, hidden=16, n_blocks=1, disc_hidden=8,
                                     kind="symbolic")
    model = cyclegan.CycleGAN(config)
    discriminator_a, discriminator_b = cyclegan.Discriminator(config), cyclegan.Discriminator(config)
    optimizers = {"generators": torch.optim.Adam(model.parameters(), 1e-3),
                  "discriminators": torch.optim.Adam(list(discriminator_a.parameters())
                                                     + list(discriminator_b.parameters()), 1e-3)}
    from musiclab.train import Updater
    before = [p.detach().clone() for p in model.parameters()]
    grids = torch.randint(0, symbolic.VOCAB_SIZE, (4, 16))
    logged = recipes.cyclegan.cyclegan_step(model, discriminator_a, discriminator_b)((grids, grids.flip(0)),
                                                                                     Updater(optimizers, None, torch.device("cpu")))
    assert all(math.isfinite(float(v.detach())) for v in logged.values())
    assert any(not torch.equal(p, q) for p, q in zip(before, model.parameters()))


# Recipes and shipped weights -------------------------------------------------------------------------------


def test_timbre_recipe_writes_loadable_weights(tmp_path):
    result = recipes.cyclegan.train_cyclegan_timbre(out_dir=tmp_path, steps=2, command="test", progress=False)
    model, sidecar = cyclegan.load_pretrained(path=tmp_path / "cyclegan-timbre.safetensors")
    assert sidecar["command"] == "test" and sidecar["metrics"]["steps"] == 2
    assert result["test_lsd_input"] > 0
    log_mel = cyclegan.melody_log_mel([symbolic.Note(67, 0, 1), symbolic.Note(69, 1, 1)], 73)
    assert cyclegan.translate_log_mel(model, log_mel).shape == log_mel.shape


def test_timbre_recipe_trains_on_a_folder_of_melodies_and_skips_bad_files(tmp_path):
    folder = tmp_path / "melodies"
    folder.mkdir()
    (folder / "one.abc").write_text("X:1\nT:one\nM:4/4\nL:1/8\nK:G\nGABc d2B2|c2A2 G4|GABc d2B2|c2A2 G4|\n")
    (folder / "two.abc").write_text("X:1\nT:two\nM:4/4\nL:1/8\nK:D\nDEFG A2F2|G2E2 D4|DEFG A2F2|G2E2 D4|\n")
    (folder / "broken.mid").write_bytes(b"not a midi file")
    recipes.cyclegan.train_cyclegan_timbre(out_dir=tmp_path, steps=1, progress=False, data=str(folder))
    sidecar = json.loads((tmp_path / "cyclegan-timbre.json").read_text())
    assert "2 melodies from" in sidecar["data"]
    assert [name for name, _ in sidecar["skipped_files"]] == ["broken.mid"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadInputError, match=r"empty: 0 usable melody file\(s\)"):
        recipes.cyclegan.train_cyclegan_timbre(out_dir=tmp_path, steps=1, progress=False, data=str(empty))


def test_symbolic_recipe_scores_strength_and_preservation(tmp_path):
    result = recipes.cyclegan.train_cyclegan_symbolic(out_dir=tmp_path, steps=2, progress=False)
    model, sidecar = cyclegan.load_pretrained("cyclegan-symbolic", path=tmp_path / "cyclegan-symbolic.safetensors")
    assert (model.config.domain_a, model.config.domain_b) == recipes.cyclegan.SYMBOLIC_REGIONS
    for key in ("strength_a_to_b", "strength_before_a_to_b", "onset_a_to_b", "contour_b_to_a"):
        assert 0.0 <= result[f"test_{key}"] <= 1.0
    assert sidecar["settings"]["lambda_cycle"] == 1.0


@pytest.mark.parametrize("name", ["cyclegan-timbre", "cyclegan-symbolic"])
def test_shipped_weights_load_with_their_provenance(name):
    path = weights.CHECKPOINTS / f"{name}.safetensors"
    if not path.exists():
        pytest.skip(f"{name} not shipped yet")
    _, sidecar = cyclegan.load_pretrained(name)
    assert sidecar["mode"] == "full" and sidecar["command"].startswith("python -m musiclab train")
    assert path.stat().st_size < 5_000_000
    if name == "cyclegan-timbre":
        metrics = sidecar["metrics"]
        assert metrics["test_ratio_a_to_b"] == pytest.approx(metrics["test_lsd_translated_a_to_b"]
                                                             / metrics["test_lsd_input"], abs=1e-3)
    with pytest.raises(BadInputError, match="unknown model .cyclegan-other."):
        cyclegan.load_pretrained("cyclegan-other")
    json.loads(path.with_suffix(".json").read_text())
