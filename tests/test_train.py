"""The training loop: it learns, logs, clips, checkpoints atomically and resumes exactly."""
import os

import pytest
import torch
from torch import nn

from musiclab import losses, train
from musiclab.errors import BadInputError, CheckpointError, TrainingDivergedError
from musiclab.models.ngram import NextTokenConfig, NextTokenMLP


def _toy_problem(init_seed=0):
    config = NextTokenConfig(vocab_size=5, context_len=3, embed_dim=4, hidden_dim=16, dropout=0.0)
    # The next token is the first context token: learnable exactly.
    contexts = torch.randint(0, 5, (256, 3), generator=torch.Generator().manual_seed(0))
    batches = [(contexts[i:i + 32], contexts[i:i + 32, 0]) for i in range(0, 256, 32)]
    torch.manual_seed(init_seed)
    model = NextTokenMLP(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def step(batch, update):
        loss = losses.categorical_nll(model(batch[0]), batch[1])
        update(loss)
        return {"loss": loss}

    return config, model, optimizer, step, batches


def test_fit_learns_and_logs_history():
    config, model, optimizer, step, batches = _toy_problem()
    history = train.fit(model, optimizer, step, batches, n_steps=200, log_every=20, progress=False)
    assert [row["step"] for row in history] == list(range(20, 201, 20))
    assert history[-1]["loss"] < 0.1 < history[0]["loss"]


def test_evaluate_rows_are_recorded():
    config, model, optimizer, step, batches = _toy_problem()
    calls = []

    def evaluate():
        calls.append(model.training)
        return {"valid_loss": 1.0}

    history = train.fit(model, optimizer, step, batches, n_steps=30, evaluate=evaluate, eval_every=10,
                        progress=False)
    assert calls == [False, False, False]  # evaluated in eval mode at 10, 20 and the end
    assert [row["step"] for row in history if "valid_loss" in row] == [10, 20, 30]


def test_interrupted_training_resumes_exactly(tmp_path):
    config, model, optimizer, step, batches = _toy_problem()
    train.fit(model, optimizer, step, batches, n_steps=16, progress=False)
    train.fit(model, optimizer, step, batches, n_steps=8, progress=False)  # a second fit restarts the data
    reference = {k: v.clone() for k, v in model.state_dict().items()}

    path = tmp_path / "run.pt"
    config, model, optimizer, step, batches = _toy_problem()
    train.fit(model, optimizer, step, batches, n_steps=16, progress=False, checkpoint_path=path, config=config)
    config, model, optimizer, step, batches = _toy_problem(init_seed=5)  # a new process: fresh weights
    history = train.fit(model, optimizer, step, batches, n_steps=24, progress=False, checkpoint_path=path,
                        config=config)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, reference[key])
    assert history[-1]["step"] == 24
    assert train.read_checkpoint_config(path)["context_len"] == 3
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_checkpoint_is_loaded_without_unpickling_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"modules": {"model": {}}, "payload": os.system}, path)  # a pickled function
    with pytest.raises(BadInputError, match="not a readable musiclab checkpoint"):
        train.load_checkpoint(path, {"model": nn.Linear(2, 2)})


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(BadInputError, match="broken.pt"):
        train.load_checkpoint(path, {"model": nn.Linear(2, 2)})


def test_nan_loss_stops_with_a_message():
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(batch, update):
        loss = model(batch).sum() * float("nan")
        update(loss)
        return {"loss": loss}

    with pytest.raises(TrainingDivergedError, match="lower the learning rate.*no checkpoint was written"):
        train.fit(model, optimizer, step, [torch.ones(4, 2)], n_steps=3, progress=False)


def test_nan_does_not_overwrite_the_last_good_checkpoint(tmp_path):
    config, model, optimizer, step, batches = _toy_problem()
    path = tmp_path / "run.pt"
    train.fit(model, optimizer, step, batches, n_steps=10, log_every=5, progress=False, checkpoint_path=path)

    def poisoned(batch, update):
        loss = step(batch, update)["loss"] * float("nan")
        return {"loss": loss}

    with pytest.raises(TrainingDivergedError, match=f"the last good checkpoint is {path} \\(step 10\\)"):
        train.fit(model, optimizer, poisoned, batches, n_steps=20, log_every=5, progress=False,
                  checkpoint_path=path, checkpoint_every=5)
    resumed_step, _ = train.load_checkpoint(path, {"model": model})
    assert resumed_step == 10 and all(torch.isfinite(p).all() for p in model.parameters())


def test_nan_weights_are_never_saved_even_with_a_finite_loss(tmp_path):
    config, model, optimizer, step, batches = _toy_problem()
    path = tmp_path / "run.pt"

    def poisoned(batch, update):
        logged = step(batch, update)
        if update.step == 7:  # after the last step's loss was computed: only the weights show it
            with torch.no_grad():
                model.net[3].weight[0, 0] = float("nan")
        return logged

    with pytest.raises(TrainingDivergedError, match="model.net.3.weight holds NaN or inf at step 8"):
        train.fit(model, optimizer, poisoned, batches, n_steps=8, log_every=100, progress=False,
                  checkpoint_path=path)
    assert not path.exists()


def test_a_nan_checkpoint_is_refused(tmp_path):
    config, model, optimizer, step, batches = _toy_problem()
    path = tmp_path / "run.pt"
    train.fit(model, optimizer, step, batches, n_steps=4, progress=False, checkpoint_path=path)
    state = torch.load(path, weights_only=True)
    next(iter(state["modules"]["model"].values()))[0] = float("nan")
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="run.pt: checkpoint holds NaN or inf weights.*--restart"):
        train.fit(model, optimizer, step, batches, n_steps=4, progress=False, checkpoint_path=path)


@pytest.mark.parametrize("content, problem", [
    (torch.zeros(3), "it holds a Tensor, not a training state"),
    ({"step": 3, "history": []}, "it holds no module weights"),
    ({"modules": {"model": {}}, "step": 3, "history": "garbage"}, "it has no valid history"),
    ({"modules": {"model": {}}, "step": -1, "history": []}, "it has no valid step \\(-1\\)"),
])
def test_damaged_checkpoints_are_named_errors(tmp_path, content, problem):
    config, model, optimizer, step, batches = _toy_problem()
    path = tmp_path / "run.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=f"run.pt: damaged checkpoint, {problem}; remove the file or pass "
                                              "--restart"):
        train.fit(model, optimizer, step, batches, n_steps=4, progress=False, checkpoint_path=path)
    history = train.fit(model, optimizer, step, batches, n_steps=4, progress=False, checkpoint_path=path,
                        restart=True)
    assert history.resumed_from is None and train.load_checkpoint(path, {"model": model})[0] == 4


def test_another_models_checkpoint_is_a_named_error(tmp_path):
    path = tmp_path / "run.pt"
    config, model, optimizer, step, batches = _toy_problem()
    train.fit(model, optimizer, step, batches, n_steps=2, progress=False, checkpoint_path=path)
    bigger = NextTokenMLP(NextTokenConfig(vocab_size=5, context_len=3, embed_dim=4, hidden_dim=32))
    with pytest.raises(CheckpointError, match="run.pt: checkpoint does not fit this model .*--restart"):
        train.fit(bigger, torch.optim.Adam(bigger.parameters()), step, batches, n_steps=4, progress=False,
                  checkpoint_path=path)


def test_a_checkpoint_of_other_data_or_settings_is_not_resumed(tmp_path):
    path = tmp_path / "run.pt"
    identity = {"data": {"path": "/a/songs", "files": 3}, "settings": {"steps": 4, "lr": 0.01}}
    config, model, optimizer, step, batches = _toy_problem()
    train.fit(model, optimizer, step, batches, n_steps=4, progress=False, checkpoint_path=path, identity=identity)
    train.fit(model, optimizer, step, batches, n_steps=4, progress=False, checkpoint_path=path, identity=identity)
    train.save_checkpoint(tmp_path / "old.pt", {"model": model}, {"main": optimizer}, 2, [])  # records no identity
    with pytest.raises(CheckpointError, match="old.pt does not record the data and settings it was trained with"):
        train.fit(model, optimizer, step, batches, n_steps=4, progress=False, checkpoint_path=tmp_path / "old.pt",
                  identity=identity)
    other = {"data": {"path": "/b/songs", "files": 3}, "settings": {"steps": 4, "lr": 0.01}}
    with pytest.raises(CheckpointError, match="run.pt was written by another run \\(data: path '/a/songs' -> "
                                              "'/b/songs'\\); pass --restart to start over, or --out"):
        train.fit(model, optimizer, step, batches, n_steps=4, progress=False, checkpoint_path=path, identity=other)


def test_a_checkpoint_beyond_the_steps_asked_for_says_so(tmp_path):
    path = tmp_path / "run.pt"
    config, model, optimizer, step, batches = _toy_problem()
    train.fit(model, optimizer, step, batches, n_steps=6, progress=False, checkpoint_path=path)
    with pytest.raises(CheckpointError, match="run.pt is at step 6, beyond the 4 steps asked for; nothing to train"):
        train.fit(model, optimizer, step, batches, n_steps=4, progress=False, checkpoint_path=path)
    with pytest.raises(BadInputError, match="n_steps=0"):
        train.fit(model, optimizer, step, batches, n_steps=0, progress=False)


def test_empty_data_is_a_clear_error():
    model = nn.Linear(2, 1)
    with pytest.raises(BadInputError, match="no batches"):
        train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda b, u: {}, [], n_steps=3,
                  progress=False)


def test_gradient_clipping_bounds_the_update():
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)

    def step(batch, update):
        loss = (model(batch) * 1000).sum()  # gradient 1000 without clipping
        update(loss)
        return {}

    train.fit(model, optimizer, step, [torch.ones(1, 1)], n_steps=1, grad_clip=0.5, progress=False)
    assert model.weight.abs().item() == pytest.approx(0.5)


def test_ctrl_c_saves_a_checkpoint_to_resume_from(tmp_path):
    config, model, optimizer, step, batches = _toy_problem()
    path = tmp_path / "run.pt"

    def interrupted_step(batch, update):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(1)
        return step(batch, update)

    calls = []
    with pytest.raises(KeyboardInterrupt, match="interrupted at step 5; checkpoint saved to .*run.pt"):
        train.fit(model, optimizer, interrupted_step, batches, n_steps=20, progress=False, checkpoint_path=path)
    resumed_step, _ = train.load_checkpoint(path, {"model": model})
    assert resumed_step == 5
