"""The melody Transformer: no position sees the future, the skewed relative logits equal the explicit
(L, L, d) computation, generation with the key/value cache equals the full forward, the sampling
filters keep the right tokens, and the recipe resumes exactly and names bad input."""
import signal

import numpy as np
import pytest
import torch

from musiclab import recipes, symbolic, weights
from musiclab.errors import BadInputError, TrainingInterrupted
from musiclab.models import rnn, transformer


def _model(position: str, max_distance: int = 6, dropout: float = 0.0) -> transformer.MelodyTransformer:
    torch.manual_seed(0)
    config = transformer.MelodyTransformerConfig(regions=[rnn.UNKNOWN, "Irish"], tune_types=[rnn.UNKNOWN, "reel"],
                                                 d_model=16, n_heads=2, n_layers=2, d_ff=32, dropout=dropout,
                                                 position=position, max_distance=max_distance)
    return transformer.MelodyTransformer(config).eval()


def _tokens(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, symbolic.VOCAB_SIZE, (2, n), generator=torch.Generator().manual_seed(seed))


CONDITION = (torch.tensor([1, 0]), torch.tensor([0, 1]))


# Attention ------------------------------------------------------------------------------------------


def test_causal_mask_lets_each_query_see_itself_and_the_past_only():
    assert transformer.causal_mask(3, 3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    # with two cached positions, the two queries are positions 2 and 3
    assert transformer.causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]


@pytest.mark.parametrize("position", transformer.POSITIONS)
def test_changing_future_tokens_leaves_earlier_logits_unchanged(position):
    model = _model(position)
    tokens = _tokens(12)
    changed = tokens.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % symbolic.VOCAB_SIZE
    before, _ = model(tokens, *CONDITION)
    after, _ = model(changed, *CONDITION)
    torch.testing.assert_close(after[:, :7], before[:, :7], rtol=0, atol=1e-6)
    assert (after[:, 7:] - before[:, 7:]).abs().max() > 1e-3  # the check can fail: later logits do move


@pytest.mark.parametrize("n_queries, n_keys, max_distance", [(9, 9, 20), (9, 9, 3), (4, 11, 5), (1, 7, 2)])
def test_skewed_relative_logits_equal_the_explicit_relative_tensor(n_queries, n_keys, max_distance):
    torch.manual_seed(1)
    q = torch.randn(2, 3, n_queries, 5)
    embeddings = torch.randn(3, max_distance + 1, 5)
    # an independent computation: loop over (i, j), distance from the query's absolute position
    expected = torch.zeros(2, 3, n_queries, n_keys)
    for i in range(n_queries):
        for j in range(n_keys):
            distance = min(n_keys - n_queries + i - j, max_distance)
            if distance >= 0:
                expected[:, :, i, j] = (q[:, :, i] * embeddings[:, distance]).sum(-1)
    allowed = transformer.causal_mask(n_queries, n_keys)
    naive = transformer.relative_logits_naive(q, embeddings, n_keys)
    skewed = transformer.relative_logits_skewed(q, embeddings, n_keys)
    assert naive.shape == skewed.shape == (2, 3, n_queries, n_keys)
    torch.testing.assert_close(naive[..., allowed], expected[..., allowed], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(skewed[..., allowed], expected[..., allowed], rtol=1e-5, atol=1e-5)


def test_attention_weights_sum_to_one_and_ignore_masked_keys():
    torch.manual_seed(2)
    q, k = torch.randn(1, 1, 4, 3), torch.randn(1, 1, 4, 3)
    v = torch.eye(4)[None, None, :, :]  # attending to value rows of the identity returns the weights
    weights_ = transformer.attend(q, k, v)[0, 0]
    logits = (q @ k.transpose(-1, -2))[0, 0] / 3 ** 0.5
    for i in range(4):
        torch.testing.assert_close(weights_[i, :i + 1], torch.softmax(logits[i, :i + 1], -1))
        assert torch.all(weights_[i, i + 1:] == 0)


@pytest.mark.parametrize("n_queries, n_keys, relative", [(6, 6, False), (6, 6, True), (3, 7, True), (1, 5, False)])
def test_the_fused_kernel_equals_the_written_out_weights(n_queries, n_keys, relative):
    torch.manual_seed(3)
    q, k, v = torch.randn(2, 3, n_queries, 4), torch.randn(2, 3, n_keys, 4), torch.randn(2, 3, n_keys, 4)
    relative_logits = transformer.relative_logits_skewed(q, torch.randn(3, 5, 4), n_keys) if relative else None
    torch.testing.assert_close(transformer.attend(q, k, v, relative_logits),
                               transformer.attention_weights(q, k, relative_logits) @ v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("position", transformer.POSITIONS)
def test_attention_maps_are_the_weights_each_layer_used(position):
    model = _model(position)
    tokens = _tokens(9)[:1]
    maps = transformer.attention_maps(model, tokens, *(c[:1] for c in CONDITION))
    assert maps.shape == (2, 2, 9, 9)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 2, 9))
    assert torch.all(maps.triu(1) == 0)  # nothing from the future
    # an independent route: the first layer's input is the embedding sum; its output must be the
    # weights applied to its own values
    block = model.blocks[0]
    x = block.norm_attention(model.embed(tokens) + (model.embed_region(CONDITION[0][:1])
                                                    + model.embed_tune_type(CONDITION[1][:1]))[:, None]
                             + (transformer.sinusoidal_positions(torch.arange(9), 16) if position == "absolute" else 0))
    _, _, v = block.attention.qkv(x).view(1, 9, 3, 2, 8).permute(2, 0, 3, 1, 4)
    expected, _ = block.attention(x)
    by_maps = block.attention.out((maps[0:1] @ v).transpose(1, 2).reshape(1, 9, 16))
    torch.testing.assert_close(by_maps, expected, rtol=1e-5, atol=1e-5)


def test_sinusoidal_positions_alternate_sin_and_cos():
    table = transformer.sinusoidal_positions(torch.arange(5), 6)
    assert table.shape == (5, 6)
    assert table[3, 0].item() == pytest.approx(np.sin(3)) and table[3, 1].item() == pytest.approx(np.cos(3))
    assert table[3, 2].item() == pytest.approx(np.sin(3 / 10000 ** (2 / 6)), rel=1e-5)


# Key/value cache and generation -----------------------------------------------------------------------


@pytest.mark.parametrize("position", transformer.POSITIONS)
def test_cached_steps_give_the_full_forward_logits(position):
    model = _model(position, max_distance=4)  # the sequence is longer than the clipping distance
    tokens = _tokens(10)
    full, _ = model(tokens, *CONDITION)
    logits, state = model(tokens[:, :3], *CONDITION)
    steps = [logits]
    for t in range(3, 10):
        logits, state = model(tokens[:, t:t + 1], *CONDITION, state)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)
    assert state[0][0].shape == (2, 2, 10, 8)  # (B, H, T, d) per layer


@pytest.mark.parametrize("position", transformer.POSITIONS)
def test_generation_with_and_without_the_cache_draws_the_same_tokens(position):
    model = _model(position)
    kwargs = dict(prime=[2, 1, 1], region="Irish", tune_type="reel", top_p=0.9)
    with_cache = model.generate(15, generator=torch.Generator().manual_seed(3), **kwargs)
    without = model.generate(15, generator=torch.Generator().manual_seed(3), use_cache=False, **kwargs)
    assert with_cache.shape == (15,) and with_cache.max() < symbolic.VOCAB_SIZE
    assert np.array_equal(with_cache, without)
    assert not np.array_equal(with_cache, model.generate(15, generator=torch.Generator().manual_seed(4), **kwargs))


def test_generate_names_bad_arguments():
    model = _model("relative")
    for kwargs, word in [({"temperature": 0}, "temperature"), ({"top_k": 0}, "top_k"), ({"top_p": 0.0}, "top_p"),
                         ({"top_p": 1.5}, "top_p"), ({"prime": [99]}, "prime")]:
        with pytest.raises(BadInputError, match=word):
            model.generate(3, **kwargs)
    with pytest.raises(BadInputError, match="position"):
        transformer.MelodyTransformer(transformer.MelodyTransformerConfig(position="rotary"))


# Sampling filters -------------------------------------------------------------------------------------


def test_top_k_keeps_the_k_largest_logits():
    logits = torch.tensor([0.5, 3.0, -1.0, 2.0, 1.0])
    kept = transformer.filter_top_k(logits, 2)
    assert torch.isfinite(kept).tolist() == [False, True, False, True, False]
    assert kept[1] == 3.0 and kept[3] == 2.0
    assert torch.isfinite(transformer.filter_top_k(logits, 5)).all()


def test_top_p_keeps_the_smallest_most_likely_set_with_enough_mass():
    probs = torch.tensor([0.1, 0.4, 0.05, 0.3, 0.15])
    logits = probs.log()
    for p, expected in [(0.35, {1}), (0.4, {1}), (0.41, {1, 3}), (0.7, {1, 3}), (0.8, {1, 3, 4}),
                        (0.94, {1, 3, 4, 0}), (1.0, {0, 1, 2, 3, 4})]:
        kept = torch.isfinite(transformer.filter_top_p(logits, p))
        assert set(torch.nonzero(kept).flatten().tolist()) == expected, p
        assert probs[kept].sum() >= p - 1e-6  # enough mass, and nothing less likely than a dropped token
        assert (~kept).sum() == 0 or probs[kept].min() >= probs[~kept].max()


def test_top_p_works_row_by_row():
    logits = torch.tensor([[0.0, 5.0, 0.0], [5.0, 0.0, 0.0]])
    assert torch.isfinite(transformer.filter_top_p(logits, 0.5)).tolist() == [[False, True, False],
                                                                               [True, False, False]]


# The recipe ------------------------------------------------------------------------------------------------

TINY = dict(d_model=16, n_heads=2, n_layers=1, d_ff=32, length=32, batch_size=4, log_every=2, eval_every=3,
            warmup_steps=2, report_tunes=1)


def _melody_folder(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        pitches = 60 + rng.integers(0, 12, 24)
        symbolic.notes_to_midi([symbolic.Note(int(p), 0.5 * k, 0.5) for k, p in enumerate(pitches)],
                               folder / f"tune{i}.mid")
    return folder


def test_recipe_resumes_exactly_and_loads_back(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICLAB_MODE", "quick")
    data = str(_melody_folder(tmp_path / "tunes"))
    train = recipes.transformer.train_transformer_melody
    reference = train(tmp_path / "straight", steps=6, data=data, progress=False, **TINY)

    step_function = recipes.transformer.melody_step
    calls = []

    def interrupting_step(model):
        step = step_function(model)

        def step_and_stop(batch, update):
            calls.append(1)
            if len(calls) == 4:
                signal.raise_signal(signal.SIGTERM)
            return step(batch, update)
        return step_and_stop

    monkeypatch.setattr(recipes.transformer, "melody_step", interrupting_step)
    with pytest.raises(TrainingInterrupted):
        train(tmp_path / "stopped", steps=6, data=data, progress=False, **TINY)
    monkeypatch.setattr(recipes.transformer, "melody_step", step_function)
    resumed = train(tmp_path / "stopped", steps=6, data=data, progress=False, **TINY)
    assert resumed["valid_nll"] == reference["valid_nll"]

    model, sidecar = transformer.load_pretrained(path=resumed["weights"])
    straight, _ = transformer.load_pretrained(path=reference["weights"])
    assert sidecar["resumed_from_step"] == 4 and sidecar["settings"]["position"] == "relative"
    for (name, value), (_, other) in zip(model.state_dict().items(), straight.state_dict().items()):
        torch.testing.assert_close(value, other, rtol=0, atol=1e-6, msg=name)
    assert weights.read_sidecar(resumed["weights"])["model"] == "transformer-melody"


def test_recipe_names_an_unusable_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="empty"):
        recipes.transformer.train_transformer_melody(tmp_path / "out", steps=1, data=str(tmp_path / "empty"),
                                                     progress=False, **TINY)


def test_distance_profile_reads_the_diagonals():
    from musiclab.widgets import transformer as attention_widgets

    maps = np.zeros((1, 1, 6, 6))
    for i in range(6):
        maps[0, 0, i, max(i - 2, 0)] = 1.0  # every query looks two steps back (the first ones at 0)
    profile = attention_widgets.distance_profile(maps, 4)[0, 0]
    # distance 2 is reachable by queries 2..5, all of which put their weight there
    np.testing.assert_allclose(profile, [1 / 6, 1 / 5, 1.0, 0.0, 0.0])  # query 0 at 0 back, query 1 at 1 back


def test_the_cpu_clock_leaves_out_the_time_spent_evaluating():
    import time

    def slow_evaluation():
        start = time.process_time()
        while time.process_time() - start < 0.3:  # CPU work that is not training
            pass
        return {"valid_nll": 1.0}

    clocked = recipes.transformer.cpu_clocked(slow_evaluation)
    first, second = clocked(), clocked()
    assert second["valid_nll"] == 1.0
    assert second["train_cpu_s"] - first["train_cpu_s"] < 0.1  # without the exclusion: >= 0.3


def test_warmup_then_linear_decay():
    schedule = recipes.transformer.warmup_then_linear_decay
    assert [schedule(s, 4, 14) for s in (0, 3, 4, 9, 14, 20)] == [0.25, 1.0, 1.0, 0.5, 0.1, 0.1]
