"""The chorale Transformer: no frame sees the future and no key sees the keys above it in its frame
(by gradients), the NLL is the sum of per-key Bernoulli terms computed one key at a time and a
normalised distribution over each frame, the key/value cache gives the same summaries as a full pass,
weights round-trip, and ``train transformer-chorale --data`` / ``score transformer-chorale`` work on
a small folder."""
import itertools
import json
import math

import numpy as np
import pytest
import torch

from musiclab import cli, losses, metrics, recipes, weights
from musiclab.models import transformer

N_KEYS = 6


def _model(position: str = "relative", n_keys: int = N_KEYS, seed: int = 0) -> transformer.ChoraleTransformer:
    torch.manual_seed(seed)
    config = transformer.ChoraleTransformerConfig(n_keys=n_keys, d_model=16, n_heads=2, n_layers=2, d_ff=32,
                                                  dropout=0.0, position=position, max_distance=3, made_dim=12)
    return transformer.ChoraleTransformer(config).eval()


def _rolls(batch: int, frames: int, n_keys: int = N_KEYS, seed: int = 0) -> torch.Tensor:
    return (torch.rand(batch, frames, n_keys, generator=torch.Generator().manual_seed(seed)) < 0.4).float()


@pytest.mark.parametrize("position", ["relative", "absolute"])
def test_no_frame_sees_the_future_and_no_key_sees_higher_keys_of_its_frame(position):
    model, roll = _model(position), _rolls(1, 7).requires_grad_()
    logits = model(roll)  # (1, 6, K): logits[t] scores frame t + 1
    for t, k in itertools.product(range(logits.shape[1]), range(N_KEYS)):
        (grad,) = torch.autograd.grad(logits[0, t, k], roll, retain_graph=True)
        grad = grad[0].abs()
        assert grad[t + 2:].sum() == 0, f"frame {t + 1}, key {k} sees a later frame"
        assert grad[t + 1, k:].sum() == 0, f"frame {t + 1}, key {k} sees itself or a higher key of its frame"
        assert grad[:t + 1].sum() > 0, f"frame {t + 1}, key {k} ignores the past"  # the check can fail
    (grad,) = torch.autograd.grad(logits[0, 3, N_KEYS - 1], roll)
    assert grad[0, 4, :N_KEYS - 1].abs().sum() > 0  # the top key does read the keys below it


def test_nll_is_the_sum_of_per_key_bernoulli_terms_and_each_frame_is_normalised():
    model, roll = _model(), _rolls(2, 5)
    nll = losses.pianoroll_nll(model(roll), roll[:, 1:]).item()
    with torch.no_grad():
        h, _ = model.summarise(roll[:, :-1])
        by_key = 0.0
        for b, t, k in itertools.product(range(2), range(4), range(N_KEYS)):
            # Key k is scored from the true keys below it; the keys at and above k are set to garbage.
            frame = torch.cat([roll[b, t + 1, :k], torch.ones(N_KEYS - k)])
            p_on = torch.sigmoid(model.frame_logits(h[b, t], frame)[k]).item()
            by_key -= math.log(p_on if roll[b, t + 1, k] else 1 - p_on)
        assert nll == pytest.approx(by_key / 8, rel=1e-5)
        every_frame = torch.tensor(list(itertools.product((0.0, 1.0), repeat=N_KEYS)))  # all 64 frames
        log_p = -torch.nn.functional.binary_cross_entropy_with_logits(
            model.frame_logits(h[0, 0].expand(len(every_frame), -1), every_frame), every_frame,
            reduction="none").sum(-1)
        assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("position", ["relative", "absolute"])
def test_the_cache_gives_the_summaries_of_a_full_pass(position):
    model, roll = _model(position), _rolls(1, 9)
    with torch.no_grad():
        full, _ = model.summarise(roll)
        first, state = model.summarise(roll[:, :4])
        steps = [first]
        for t in range(4, 9):
            h, state = model.summarise(roll[:, t:t + 1], state)
            steps.append(h)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)


def test_shapes_and_generation_keep_the_prime():
    model, roll = _model(n_keys=88), _rolls(3, 10, n_keys=88)
    assert model(roll).shape == (3, 9, 88)
    h, cache = model.summarise(roll)
    assert h.shape == (3, 10, 16) and len(cache) == 2 and cache[0][0].shape == (3, 2, 10, 8)
    prime = roll[0, :2].numpy().astype(np.uint8)
    sample = model.generate(5, prime=prime, generator=torch.Generator().manual_seed(0))
    assert sample.shape == (7, 88) and sample.dtype == np.uint8 and set(np.unique(sample)) <= {0, 1}
    np.testing.assert_array_equal(sample[:2], prime)
    again = model.generate(5, prime=prime, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(sample, again)


def test_weights_round_trip(tmp_path):
    model, roll = _model(n_keys=88), _rolls(2, 6, n_keys=88)
    path = tmp_path / "chorale.safetensors"
    weights.save_weights(path, "transformer-chorale", model, model.config, {"command": "test"})
    loaded, sidecar = transformer.load_pretrained("transformer-chorale", path)
    torch.testing.assert_close(loaded(roll), model(roll))
    assert sidecar["config"]["position"] == "relative" and not loaded.training
    assert _model(n_keys=88, seed=1)(roll).sub(model(roll)).abs().max() > 1e-3  # another model differs


def _npz_folder(folder, with_test: bool = True):
    rng = np.random.default_rng(0)
    rolls = {f"r{i}": (rng.random((12, 88)) < 0.05).astype(np.uint8) for i in range(6)}
    folder.mkdir()
    np.savez(folder / "train.npz", **rolls)
    np.savez(folder / "valid.npz", **dict(list(rolls.items())[:2]))
    if with_test:
        np.savez(folder / "test.npz", **dict(list(rolls.items())[2:4]))
    return folder


def test_train_and_score_on_your_own_piano_rolls(tmp_path, capsys):
    data, out = _npz_folder(tmp_path / "my rolls"), tmp_path / "out"
    assert cli.main(["train", "transformer-chorale", "--steps", "2", "--data", str(data), "--out", str(out)]) == 0
    sidecar = json.loads((out / "transformer-chorale.json").read_text())
    assert str(data) in sidecar["data"] and sidecar["metrics"]["steps"] == 2
    assert 0 < sidecar["metrics"]["test_nll"] < 88 * math.log(2) + 5  # test.npz is scored after training
    model, _ = transformer.load_pretrained("transformer-chorale", out / "transformer-chorale.safetensors")
    expected = metrics.score_rolls(model, list(np.load(data / "test.npz").values()))["nll_per_frame"]
    capsys.readouterr()
    assert cli.main(["score", "transformer-chorale", str(data / "test.npz"), "--weights",
                     str(out / "transformer-chorale.safetensors")]) == 0
    assert f"{expected:.4f} nats per frame" in capsys.readouterr().out
    assert cli.main(["score", "transformer-chorale", str(data / "test.npz"), "--weights",
                     str(tmp_path / "missing.safetensors")]) == 2


def test_shipped_weights_score_the_test_chorales_at_most_as_poly_made():
    """Both models scored here on the same test rolls of the current mode, not read from sidecars."""
    scores = recipes.transformer.compare_chorale_models("test")
    assert scores["transformer-chorale"]["n_frames"] == scores["poly-made"]["n_frames"] > 0
    assert scores["transformer-chorale"]["nll_per_frame"] <= scores["poly-made"]["nll_per_frame"]
    _, sidecar = transformer.load_pretrained("transformer-chorale")
    assert sidecar["mode"] == "full" and sidecar["wall_time_s"] <= 3600
    assert (weights.CHECKPOINTS / "transformer-chorale.safetensors").stat().st_size < 10 * 2 ** 20
