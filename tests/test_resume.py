"""Resuming is exact: a run interrupted at step k and resumed in a new process (fresh modules,
optimizers and data loader) ends with the same weights as a run that was never interrupted, for a
VAE with KL annealing, word dropout and a decaying learning rate, and for a GAN with two optimizers
and a moving average."""
import signal
import time

import numpy as np
import pytest
import torch

from musiclab import recipes, symbolic, train
from musiclab.errors import TrainingInterrupted
from musiclab.models import gan, vae

N_STEPS, STOP_AT = 24, 11  # 6 batches per pass: the run stops inside its second pass, between two log rows


def _vae_run(init_seed: int):
    """A tiny melody VAE, its optimizer, step function, data and schedule: what a new process builds."""
    torch.manual_seed(init_seed)
    model = vae.MelodyVAE(vae.MelodyVaeConfig(embed_dim=8, encoder_dim=12, decoder_dim=16, z_dim=4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    tokens = torch.randint(0, symbolic.VOCAB_SIZE, (96, 32), generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(tokens, batch_size=16, shuffle=True, drop_last=True)
    step = recipes.vae.vae_melody_step(model, beta=0.5, free_nats=1.0, warmup_steps=16, word_dropout=0.25)
    valid = tokens[:16]

    def evaluate():
        logits, mu, logvar, _ = model(valid)
        return {"valid_loss": float(torch.nn.functional.cross_entropy(logits, valid))}

    options = dict(evaluate=evaluate, eval_every=4, keep_best="valid_loss", log_every=2,
                   lr_schedule=lambda s: train.linear_decay(s, N_STEPS, 0.05), progress=False)
    return {"model": model}, optimizer, step, loader, options


def _gan_run(init_seed: int):
    """A tiny conditional SpecGAN with hinge loss, spectral norm, mode seeking and an EMA generator."""
    import copy

    torch.manual_seed(init_seed)
    config = gan.GanConfig(programs=(0, 40), pitches=(60, 67), z_dim=8, embed_dim=4, width=2)
    generator, discriminator = gan.Generator(config), gan.Discriminator(config)
    ema = copy.deepcopy(generator)
    optimizers = {name: torch.optim.Adam(module.parameters(), lr=2e-3, betas=(0.0, 0.9))
                  for name, module in (("generator", generator), ("discriminator", discriminator))}
    rng = np.random.default_rng(0)
    data = {"log_mel": rng.normal(-5, 2, (48, config.n_mels, config.n_frames)).astype(np.float32),
            "program": rng.choice([0, 40], 48), "pitch": rng.choice([60, 67], 48)}
    step = recipes.gan.gan_step(generator, discriminator, ema=ema, ema_decay=0.9, mode_seeking=0.25)
    options = dict(grad_clip=None, log_every=2, progress=False,
                   lr_schedule={"generator": lambda s: train.constant_then_linear_decay(s, N_STEPS)})
    return ({"generator": generator, "discriminator": discriminator, "ema": ema}, optimizers, step,
            recipes.gan.gan_batches(data, config, 8), options)


def _interrupt_at(step_fn, k: int, signal_number=signal.SIGTERM, pause_s: float = 0.0):
    """``step_fn`` that sends this process ``signal_number`` during its k-th call, as `timeout` or a
    scheduler would (and sleeps ``pause_s`` per step, to give the run a measurable wall time)."""
    calls = []

    def step(batch, update):
        calls.append(1)
        if len(calls) == k:
            signal.raise_signal(signal_number)
        time.sleep(pause_s)
        return step_fn(batch, update)

    return step


def _state(modules: dict) -> dict:
    return {f"{name}.{k}": v.detach().clone() for name, module in modules.items()
            for k, v in module.state_dict().items()}


@pytest.mark.parametrize("build", [_vae_run, _gan_run], ids=["vae", "gan"])
def test_interrupted_and_resumed_run_ends_with_the_same_weights(build, tmp_path):
    modules, optimizers, step, batches, options = build(init_seed=0)
    reference_history = train.fit(modules, optimizers, step, batches, N_STEPS, **options)
    reference = _state(modules)

    path = tmp_path / "run.pt"
    modules, optimizers, step, batches, options = build(init_seed=0)
    with pytest.raises(TrainingInterrupted) as stopped:
        train.fit(modules, optimizers, _interrupt_at(step, STOP_AT), batches, N_STEPS, checkpoint_path=path,
                  **options)
    assert (stopped.value.step, stopped.value.signal_number) == (STOP_AT, signal.SIGTERM)
    assert "interrupted at step 11; checkpoint saved to" in str(stopped.value)
    halfway = _state(modules)

    modules, optimizers, step, batches, options = build(init_seed=5)  # a new process: other initial weights
    history = train.fit(modules, optimizers, step, batches, N_STEPS, checkpoint_path=path, **options)
    assert history.resumed_from == STOP_AT
    resumed = _state(modules)
    assert max((resumed[k] - halfway[k]).abs().max().item() for k in resumed) > 1e-3  # it trained on
    for key, value in reference.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=1e-6, msg=key)
    assert [{k: v for k, v in row.items() if k != "time_s"} for row in history] == \
           [{k: v for k, v in row.items() if k != "time_s"} for row in reference_history]
    assert (history.best_step, history.best_score) == (reference_history.best_step, reference_history.best_score)


def test_another_seed_sees_other_batches(tmp_path):
    """The check above can fail: the same run with other step randomness ends elsewhere."""
    modules, optimizers, step, batches, options = _vae_run(init_seed=0)
    train.fit(modules, optimizers, step, batches, N_STEPS, **options)
    reference = _state(modules)
    modules, optimizers, step, batches, options = _vae_run(init_seed=0)
    train.fit(modules, optimizers, step, batches, N_STEPS, seed=1, **options)
    assert max((value - reference[key]).abs().max().item() for key, value in _state(modules).items()) > 1e-3


def test_schedules_continue_after_a_resume(tmp_path):
    """The KL weight and the learning rate are functions of the step: a resumed run does not warm up again."""
    modules, optimizers, step, batches, options = _vae_run(init_seed=0)
    path = tmp_path / "run.pt"
    with pytest.raises(TrainingInterrupted):
        train.fit(modules, optimizers, _interrupt_at(step, STOP_AT, signal.SIGINT), batches, N_STEPS,
                  checkpoint_path=path, **options)
    modules, optimizers, step, batches, options = _vae_run(init_seed=0)
    seen = []

    def recording_step(batch, update):
        seen.append((update.step, optimizers.param_groups[0]["lr"]))
        return step(batch, update)

    train.fit(modules, optimizers, recording_step, batches, N_STEPS, checkpoint_path=path, **options)
    assert seen[0] == (STOP_AT, pytest.approx(1e-2 * (1 - STOP_AT / N_STEPS)))
    assert [s for s, _ in seen] == list(range(STOP_AT, N_STEPS))


def test_wall_time_counts_every_session(tmp_path):
    modules, optimizers, step, batches, options = _vae_run(init_seed=0)
    path = tmp_path / "run.pt"
    with pytest.raises(TrainingInterrupted):
        train.fit(modules, optimizers, _interrupt_at(step, 4, pause_s=0.2), batches, 8, checkpoint_path=path,
                  **options)
    modules, optimizers, step, batches, options = _vae_run(init_seed=0)
    history = train.fit(modules, optimizers, step, batches, 8, checkpoint_path=path, **options)
    assert history.earlier_s >= 0.8  # the first session's four paused steps
    assert history.wall_time_s() > history.earlier_s
    assert [row for row in history if "time_s" in row][-1]["time_s"] >= 0.8


def test_replayed_batches_match_one_pass():
    """`train.StepBatches`: after replaying to step k, a new iterator gives the batches of steps k, k+1, ..."""
    data = torch.utils.data.DataLoader(torch.arange(50), batch_size=4, shuffle=True, drop_last=True)
    straight = train.StepBatches(data, seed=3)
    expected = [straight.take(step)[0] for step in range(30)]
    resumed = train.StepBatches(data, seed=3)
    resumed.replay(12, 17)  # 12 batches per pass: step 17 is in the pass that began at step 12
    assert all(torch.equal(resumed.take(step)[0], expected[step]) for step in range(17, 30))
    assert not torch.equal(expected[0], expected[12])  # every pass is shuffled anew
