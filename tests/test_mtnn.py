"""Chapters 11-12: multi-task losses on hand-computable values, label masking, the classifiers' shapes
on variable-length input, the shipped weights, and per-note surprise on a hand-checkable model."""
import math

import numpy as np
import pytest
import torch

from musiclab import losses, surprise, symbolic
from musiclab.datasets import Tune
from musiclab.errors import BadInputError
from musiclab.models import mtnn, rnn
from musiclab.recipes import evaluation


# Losses --------------------------------------------------------------------------------------------


def test_masked_cross_entropy_averages_over_labelled_examples_only():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [5.0, -5.0]])
    targets = torch.tensor([0, 0, -100])
    # p = 1/2 and 3/4 for the two labelled examples
    expected = -(math.log(0.5) + math.log(0.75)) / 2
    assert losses.masked_cross_entropy(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_masked_cross_entropy_of_an_unlabelled_batch_is_zero_with_a_gradient():
    logits = torch.randn(3, 4, requires_grad=True)
    loss = losses.masked_cross_entropy(logits, torch.full((3,), -100))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(logits.grad == 0)


def test_weighted_task_loss_is_the_weighted_sum():
    task_losses = {"a": torch.tensor(2.0), "b": torch.tensor(3.0)}
    assert losses.weighted_task_loss(task_losses, {"a": 0.5}).item() == pytest.approx(0.5 * 2 + 3)


def test_uncertainty_weighting_hand_values_and_optima():
    task_losses = {"cls": torch.tensor(0.8), "reg": torch.tensor(0.3)}
    s = {"cls": torch.tensor(math.log(2.0)), "reg": torch.tensor(0.0)}
    expected = 0.8 / 2 + 0.5 * math.log(2.0) + 0.5 * 0.3 + 0.0
    assert losses.uncertainty_weighted_loss(task_losses, s, regression=("reg",)).item() == pytest.approx(expected)
    # optimum in s: sigma^2 = 2 L for classification, sigma^2 = L (the Gaussian's MLE variance) for regression
    for task, optimum in (("cls", 2 * 0.8), ("reg", 0.3)):
        grid = torch.linspace(-3, 3, 60001)
        values = losses.uncertainty_weighted_loss({task: task_losses[task]}, {task: grid}, regression=("reg",))
        assert math.exp(grid[values.argmin()].item()) == pytest.approx(optimum, rel=1e-3)


def test_uncertainty_regression_term_is_the_gaussian_nll_up_to_a_constant():
    torch.manual_seed(0)
    y, f, sigma = torch.randn(1000), torch.randn(1000), 0.7
    squared_error = ((y - f) ** 2).mean()
    term = losses.uncertainty_weighted_loss({"r": squared_error}, {"r": torch.tensor(2 * math.log(sigma))},
                                            regression=("r",))
    exact = losses.gaussian_nll(y, f, sigma)
    assert term.item() == pytest.approx(exact.item() - 0.5 * math.log(2 * math.pi), rel=1e-5)


def test_scaled_softmax_nll_at_sigma_one_is_the_cross_entropy():
    logits, targets = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    assert losses.scaled_softmax_nll(logits, targets, torch.tensor(0.0)).item() == pytest.approx(
        losses.categorical_nll(logits, targets).item(), rel=1e-6)


# Labels ----------------------------------------------------------------------------------------------


def _tune(region="German", tune_type="", meter="2/4", mode="major", grid=(2, 1, 1, 1) * 8):
    return Tune(id="t", region=region, collection="c", title="", meter=meter, key="C", mode=mode,
                tune_type=tune_type, grid=np.asarray(grid, dtype=np.int64))


def test_tune_function_groups_raw_tune_types():
    assert mtnn.tune_function("Slip Jig") == "slip jig"
    assert mtnn.tune_function("Liebes - Lied, Leid, Klage") == "love song"
    assert mtnn.tune_function("Romanze, Ballade, Lied") == "ballad"
    assert mtnn.tune_function("Xiaodiao. Xin minge") == "xiaodiao"
    assert mtnn.tune_function("") == ""
    assert mtnn.tune_function("something unheard of") == "other"


def test_unlabelled_tasks_are_masked_with_ignore_index():
    tunes = [_tune(), _tune(region="Chinese", meter="free"), _tune(tune_type="reel", mode="dorian")]
    labels = {"region": ["Chinese", "German"], "meter": ["2/4"], "mode": ["major", "modal"],
              "tune_type": ["reel"]}
    targets = mtnn.encode_targets(tunes, labels)
    assert targets["region"].tolist() == [1, 0, 1]
    assert targets["meter"].tolist() == [0, -100, 0]
    assert targets["mode"].tolist() == [0, -100, 1]  # a Chinese tune's mode is unlabelled
    assert targets["tune_type"].tolist() == [-100, -100, 0]


def test_build_labels_keeps_frequent_classes_and_other():
    tunes = [_tune(meter="2/4")] * 3 + [_tune(meter="5/8")]
    assert mtnn.build_labels(tunes, ("meter",), min_count=2) == {"meter": ["2/4", "other"]}
    assert mtnn.encode_targets(tunes, {"meter": ["2/4", "other"]})["meter"].tolist() == [0, 0, 0, 1]


# Models ----------------------------------------------------------------------------------------------

LABELS = {"region": ["A", "B", "C"], "mode": ["major", "minor"]}


def test_multitask_net_shapes_and_padding_does_not_change_the_prediction():
    torch.manual_seed(0)
    model = mtnn.MultiTaskNet(mtnn.MultiTaskConfig(labels=LABELS, channels=16)).eval()
    grids = [np.random.default_rng(i).integers(0, symbolic.VOCAB_SIZE, n) for i, n in enumerate((32, 100, 57))]
    probs = model.predict_proba(grids)
    assert probs["region"].shape == (3, 3) and probs["mode"].shape == (3, 2)
    assert np.allclose(probs["region"].sum(1), 1, atol=1e-5)
    alone = [model.predict_proba([g])["region"][0] for g in grids]
    assert np.allclose(probs["region"], alone, atol=1e-5)  # batching with longer grids changes nothing
    assert model.embed(grids).shape == (3, 16)
    assert model.predict_proba(np.stack([grids[1][:32], grids[0]]))["mode"].shape == (2, 2)


def test_single_task_variant_is_the_same_class_with_one_head():
    model = mtnn.MultiTaskNet(mtnn.MultiTaskConfig(labels={"region": ["A", "B"]}, channels=8))
    assert set(model(torch.zeros(2, 40, dtype=torch.long), torch.ones(2, 40, dtype=torch.bool))) == {"region"}


def test_rnn_evaluator_gives_a_prediction_per_step():
    model = mtnn.RNNEvaluator(mtnn.RNNEvaluatorConfig(labels=LABELS, hidden_dim=8))
    steps = model.predict_steps(np.array([2, 1, 1, 0, 5, 1]))
    assert steps["region"].shape == (6, 3) and np.allclose(steps["mode"].sum(1), 1, atol=1e-5)


def test_bad_grids_are_refused_clearly():
    model = mtnn.MultiTaskNet(mtnn.MultiTaskConfig(labels=LABELS, channels=8))
    for bad in ([], [np.array([], dtype=int)], [np.array([2, 99])], [np.array([-1, 2])]):
        with pytest.raises(BadInputError):
            model.predict_proba(bad)
    with pytest.raises(BadInputError, match="region"):
        mtnn.region_probability([np.array([2, 1])], "Atlantis", model)


def test_training_step_reduces_the_loss_and_leaves_unlabelled_heads_alone():
    torch.manual_seed(0)
    tunes = [_tune(region=r, grid=np.r_[[2 + 10 * i], np.ones(39)]) for i, r in enumerate("ABC")] * 4
    labels = {"region": ["A", "B", "C"], "tune_type": ["reel"]}
    model = mtnn.MultiTaskNet(mtnn.MultiTaskConfig(labels=labels, channels=8))
    head_before = model.heads["tune_type"].weight.detach().clone()
    batches = evaluation.crop_batches(tunes, mtnn.encode_targets(tunes, labels), batch_size=12, min_steps=40,
                                       max_shift=0)
    step = evaluation.mtnn_step(model, "sum")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def update(loss):
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    first = step(next(iter(batches)), update)["train_region"].item()
    for _ in range(100):
        last = step(next(iter(batches)), update)["train_region"].item()
    assert last < first / 2
    assert torch.equal(model.heads["tune_type"].weight, head_before)  # no tune has a tune type


def test_balanced_batches_draw_every_class_equally_often():
    torch.manual_seed(0)
    tunes = [_tune(region="A")] * 90 + [_tune(region="B")] * 10
    targets = mtnn.encode_targets(tunes, {"region": ["A", "B"]})
    drawn = torch.cat([batch[2]["region"] for _ in range(20)
                       for batch in evaluation.crop_batches(tunes, targets, batch_size=50, balance="region")])
    assert abs(drawn.float().mean().item() - 0.5) < 0.05  # B is 10 % of the tunes, half of the draws


def test_classification_report_counts_and_confusion():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    report = evaluation.classification_report(probs, np.array([0, 1, 1, -100]), ["x", "y"])
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["balanced_accuracy"] == pytest.approx((1 + 0.5) / 2)
    assert report["confusion"] == [[1, 0], [1, 1]]
    assert report["nll"] == pytest.approx(-(math.log(0.9) + math.log(0.8) + math.log(0.4)) / 3)


def test_three_region_accuracy_restricts_the_argmax():
    labels = ["Chinese", "German", "Irish", "Lorraine"]
    probs = np.array([[0.1, 0.3, 0.1, 0.5], [0.5, 0.2, 0.2, 0.1], [0.1, 0.1, 0.1, 0.7]])
    # tune 1: Lorraine is ignored -> German (right); tune 2: Chinese (wrong, is Irish); tune 3: not counted
    assert evaluation.three_region_accuracy(probs, ["German", "Irish", "Lorraine"], labels) == 0.5


def test_shipped_multitask_net_and_region_probability():
    model = mtnn.load_pretrained()
    assert set(model.labels) == set(mtnn.TASKS)
    assert mtnn.load_pretrained() is model  # cached
    grid = np.r_[[2 + 24], np.ones(15), [2 + 26], np.ones(15)]
    p = mtnn.region_probability([grid, grid[:32]], "Irish")
    assert p.shape == (2,) and np.all((p >= 0) & (p <= 1))


# Surprise ---------------------------------------------------------------------------------------------


def _constant_melody_model(bias: torch.Tensor) -> rnn.MelodyRNN:
    """A melody RNN whose prediction is softmax(bias) whatever the past: hand-checkable surprise."""
    model = rnn.MelodyRNN(rnn.MelodyConfig(regions=["unknown"], tune_types=["unknown"], hidden_dim=4, n_layers=1))
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(bias)
    return model.eval()


def test_note_surprise_on_a_hand_checkable_model():
    bias = torch.zeros(symbolic.VOCAB_SIZE)
    bias[1] = math.log(4.0)  # HOLD is 4 times as likely as any other token
    bias[2 + 26] = math.log(2.0)  # D4 twice as likely as other notes
    model = _constant_melody_model(bias)
    total = 4 + 2 + (symbolic.VOCAB_SIZE - 2)
    grid = np.array([2 + 24, 1, 1, 1, 2 + 26, 1, 2 + 28, 0])
    result = surprise.note_surprise(grid, top=2, n_alternatives=3, model=model)
    assert result["nll_per_step"][1] == pytest.approx(math.log(total / 4), rel=1e-5)
    assert result["nll_per_step"][4] == pytest.approx(math.log(total / 2), rel=1e-5)
    first = result["notes"][0]  # C4 and E4 tie at log(total); the earlier comes first
    assert (first["step"], first["pitch"]) == (0, 60)
    assert first["surprise_nats"] == pytest.approx(math.log(total), rel=1e-5)
    note_mass = 2 + (symbolic.VOCAB_SIZE - 3)
    assert first["timing_nats"] == pytest.approx(math.log(total / note_mass), rel=1e-5)
    assert first["pitch_nats"] == pytest.approx(math.log(note_mass), rel=1e-5)
    assert first["alternatives"] == [(62, pytest.approx(2 / note_mass, rel=1e-5))]  # only D4 is likelier
    assert result["notes"][1]["step"] == 6
    assert result["typicality"]["nats_per_note"] == pytest.approx(
        (2 * math.log(total) + math.log(total / 2)) / 3, rel=1e-5)


def test_note_surprise_with_the_shipped_melody_rnn_is_fast_and_refuses_bad_input():
    import time

    grid = np.tile(np.r_[[2 + 24], np.ones(3), [2 + 28], np.ones(3)], 64)  # 32 bars of 4/4
    surprise.note_surprise(grid[:64], "Irish")  # loads the model and the held-out reference
    start = time.perf_counter()
    result = surprise.note_surprise(grid, "Irish", top=5)
    assert time.perf_counter() - start < 1.0
    assert len(result["nll_per_step"]) == 512 and len(result["notes"]) == 5
    assert 0 <= result["typicality"]["more_typical_than_pct"] <= 100
    for bad in (np.array([]), np.zeros((2, 2), dtype=int), np.array([2, 500])):
        with pytest.raises(BadInputError):
            surprise.note_surprise(bad)
    with pytest.raises(BadInputError, match="region"):
        surprise.note_surprise(grid, "Atlantis")
