"""Training recipes: one function per model the book trains, behind ``python -m musiclab train NAME``.

A recipe builds the data and the model at the size of the current mode, trains with `train.fit`
(resuming from ``out_dir/NAME.pt`` if a run was interrupted), evaluates on held-out data and writes
``out_dir/NAME.safetensors`` with a JSON sidecar recording the command, config, data, metrics,
device and wall time.

Chapter: notebooks/02_learning_to_generate.ipynb
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from . import config, datasets, losses, symbolic, train
from .errors import BadInputError


def next_token_step(model):
    """The step function of the neural n-gram: cross-entropy of the next token, one update."""

    def step(batch, update):
        context, target = batch
        loss = losses.categorical_nll(model(context), target)
        update(loss)
        return {"train_nll": loss}

    return step


@torch.no_grad()
def score_next_token(model, contexts: torch.Tensor, targets: torch.Tensor, batch_size: int = 8192) -> dict:
    """Held-out NLL (nats/token), accuracy, and accuracy where a new note starts (token >= 2)."""
    device = next(model.parameters()).device
    logits = torch.cat([model(contexts[i:i + batch_size].to(device)).float().cpu()
                        for i in range(0, len(targets), batch_size)])
    predicted = logits.argmax(1)
    onset = targets >= symbolic.HOLD + 1
    return {"valid_nll": torch.nn.functional.cross_entropy(logits, targets).item(),
            "valid_accuracy": (predicted == targets).float().mean().item(),
            "valid_onset_accuracy": (predicted[onset] == targets[onset]).float().mean().item()}


def train_next_token(out_dir="runs", steps: int | None = None, command: str = "") -> dict:
    """The chapter-2 neural n-gram on the folk melodies' event grids."""
    from .models.ngram import NextTokenConfig, NextTokenMLP

    config.seed_everything(0)
    model_config = NextTokenConfig(vocab_size=symbolic.VOCAB_SIZE, context_len=16,
                                   hidden_dim=config.pick(256, 512))
    train_x, train_y = datasets.next_token_windows(datasets.load_folk("train"), model_config.context_len)
    valid_x, valid_y = datasets.next_token_windows(datasets.load_folk("valid"), model_config.context_len)
    model = NextTokenMLP(model_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train_x, train_y), batch_size=256,
                                         shuffle=True, drop_last=True)
    n_steps = steps or config.pick(1500, 12000)
    out_dir = Path(out_dir)
    start = time.perf_counter()
    history = train.fit(model, optimizer, next_token_step(model), loader, n_steps,
                        evaluate=lambda: score_next_token(model, valid_x, valid_y), eval_every=max(n_steps // 6, 1),
                        checkpoint_path=out_dir / "next-token.pt", checkpoint_every=500, config=model_config,
                        desc="next-token")
    metrics = {**{k: round(v, 4) for k, v in history[-1].items() if k.startswith("valid")}, "steps": n_steps}
    meta = {"command": command, "mode": config.get_mode(), "data": "folk melodies, train/valid split by hash",
            "metrics": metrics, "device": str(config.get_device()), "wall_time_s": round(time.perf_counter() - start, 1)}
    train.save_weights(out_dir / "next-token.safetensors", model, model_config, meta)
    return {"weights": str(out_dir / "next-token.safetensors"), **metrics, "wall_time_s": meta["wall_time_s"]}


RECIPES = {"next-token": train_next_token}


# GAN (chapter 3) -----------------------------------------------------------------------------------


def gan_step(generator, discriminator, loss: str = "hinge", ema=None, ema_decay: float = 0.999,
             mode_seeking: float = 0.0):
    """The step function of the conditional SpecGAN: one discriminator update, one generator update.

    ``loss="hinge"`` uses the hinge losses, ``"nonsaturating"`` the original GAN discriminator loss
    with the non-saturating generator loss. Logged: both losses, and the discriminator's accuracy
    on real and generated batches (the diagnostic for a discriminator that overpowers). ``ema``, a
    copy of the generator, tracks an exponential moving average of its weights. The generated batch
    takes the first half of the real batch's conditions twice, with different ``z``, so that
    ``mode_seeking`` > 0 can weigh `losses.mode_seeking_loss` on those pairs at no extra cost.
    """
    if loss not in ("hinge", "nonsaturating"):
        raise ValueError(f"loss={loss!r}: expected 'hinge' or 'nonsaturating'")

    def step(batch, update):
        x_real, program_index, pitch_index = batch
        half = len(x_real) // 2
        fake_program, fake_pitch = program_index[:half].repeat(2), pitch_index[:half].repeat(2)
        z = torch.randn(2 * half, generator.config.z_dim, device=x_real.device)
        x_fake = generator(z, fake_program, fake_pitch)
        real_logits = discriminator(x_real, program_index, pitch_index)
        fake_logits = discriminator(x_fake.detach(), fake_program, fake_pitch)
        if loss == "hinge":
            d_loss = losses.hinge_discriminator_loss(real_logits, fake_logits)
        else:
            d_loss = losses.gan_discriminator_loss(real_logits, fake_logits)
        update(d_loss, "discriminator")
        fake_logits_g = discriminator(x_fake, fake_program, fake_pitch)
        if loss == "hinge":
            g_loss = losses.hinge_generator_loss(fake_logits_g)
        else:
            g_loss = losses.gan_generator_loss(fake_logits_g, non_saturating=True)
        if mode_seeking:
            g_loss = g_loss + mode_seeking * losses.mode_seeking_loss(x_fake[:half], x_fake[half:], z[:half], z[half:])
        update(g_loss, "generator")
        if ema is not None:
            with torch.no_grad():
                for averaged, current in zip(ema.parameters(), generator.parameters()):
                    averaged.lerp_(current, 1 - ema_decay)
                for averaged, current in zip(ema.buffers(), generator.buffers()):
                    averaged.copy_(current)
        return {"d_loss": d_loss, "g_loss": g_loss,
                "d_accuracy_real": (real_logits > 0).float().mean(),
                "d_accuracy_fake": (fake_logits < 0).float().mean()}

    return step


def gan_batches(data: dict, config_, batch_size: int):
    """A shuffling DataLoader of (normalised log-mel, program index, pitch index) from note data."""
    from .models import gan

    program_index, pitch_index = gan.condition_indices(config_, data["program"], data["pitch"])
    x = torch.from_numpy(gan.normalise(data["log_mel"], config_)).float()
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, program_index, pitch_index),
                                       batch_size=batch_size, shuffle=True, drop_last=True)


@torch.no_grad()
def score_gan_diversity(generator, data: dict, program: int, pitch: int, n: int = 16) -> dict:
    """Mode-collapse diagnostic: mean pairwise RMS distance (nats) of ``n`` generated log-mels of one
    condition, and the same for the real notes of that condition."""
    from .models import gan

    z = torch.randn(n, generator.config.z_dim, generator=torch.Generator().manual_seed(0))
    fake = torch.from_numpy(gan.generate_log_mel(generator, program, pitch, z)).flatten(1)
    real = torch.from_numpy(data["log_mel"][(data["program"] == program) & (data["pitch"] == pitch)]).flatten(1)
    spread = lambda x: (torch.cdist(x, x) / x.shape[1] ** 0.5).sum() / (len(x) * (len(x) - 1))
    return {"spread_fake": spread(fake).item(), "spread_real": spread(real).item()}


def train_gan(out_dir="runs", steps: int | None = None, command: str = "", loss: str = "hinge",
              mode_seeking: float = 0.25, progress: bool = True) -> dict:
    """The chapter-3 conditional SpecGAN on varied SoundFont notes (6 instruments x 25 pitches)."""
    import copy

    from .models import gan

    config.seed_everything(0)
    model_config = gan.GanConfig(width=config.pick(8, 16), spectral_norm=loss == "hinge")
    n_per_condition = config.pick(4, 16)
    data = gan.render_note_variations(model_config, n_per_condition=n_per_condition, seed=0)
    generator, discriminator = gan.Generator(model_config), gan.Discriminator(model_config)
    ema = copy.deepcopy(generator)
    betas = (0.0, 0.9) if loss == "hinge" else (0.5, 0.999)
    optimizers = {"generator": torch.optim.Adam(generator.parameters(), lr=2e-4, betas=betas),
                  "discriminator": torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=betas)}
    n_steps = steps or config.pick(150, 4500)
    out_dir = Path(out_dir)
    start = time.perf_counter()
    history = train.fit({"generator": generator, "discriminator": discriminator, "ema": ema}, optimizers,
                        gan_step(generator, discriminator, loss=loss, ema=ema, mode_seeking=mode_seeking), gan_batches(data, model_config, 32),
                        n_steps, evaluate=lambda: score_gan_diversity(ema, data, 40, 67),
                        eval_every=max(n_steps // 8, 1), log_every=25, grad_clip=None,
                        checkpoint_path=out_dir / "gan.pt", checkpoint_every=250, config=model_config,
                        progress=progress, desc=f"gan ({loss})")
    wall_time_s = round(time.perf_counter() - start, 1)
    metrics = {**{k: round(v, 4) for k, v in history[-1].items() if k.startswith("spread")}, "steps": n_steps}
    meta = {"command": command, "mode": config.get_mode(), "loss": loss, "mode_seeking": mode_seeking,
            "data": f"SoundFont TimGM6mb, programs {list(model_config.programs)}, pitches "
                    f"{model_config.pitches[0]}-{model_config.pitches[-1]}, {n_per_condition} notes per "
                    "condition (seed 0): velocity 40-127, hold 0.15-0.5 s, onset 0-40 ms",
            "metrics": metrics, "device": str(config.get_device()), "torch_threads": torch.get_num_threads(),
            "wall_time_s": wall_time_s,
            "weights": "exponential moving average of the generator (decay 0.999)"}
    train.save_weights(out_dir / "gan.safetensors", ema, model_config, meta)
    return {"weights": str(out_dir / "gan.safetensors"), **metrics, "wall_time_s": wall_time_s}


def evaluate_gan(generator, n_per_condition: int = 4, programs=None, pitches=None, n_classifier: int = 4,
                 classifier_steps: int = 400, n_diversity: int = 100, progress: bool = True) -> dict:
    """Measure a conditional note generator against real notes it never saw.

    - pitch accuracy: ``librosa.pyin`` on the generated audio (after Griffin-Lim), within 50 cents,
      next to the same on real notes (raw audio) and on real notes sent through the same mel
      inversion (the ceiling the representation allows);
    - instrument accuracy of a `metrics.NoteClassifier` trained on other real notes, and the
      Frechet distance in its embedding (floor: two independent real sets); the classifier learns
      from ``n_classifier`` other real notes per condition;
    - diversity: among ``n_diversity`` samples of one condition (violin, G4), the smallest pairwise
      RMS log-mel distance and the number of near-identical pairs (< 0.1 nats, about 0.9 dB), next
      to the same for ``n_diversity`` real notes.

    Every audio clip, generated or real, is analysed from its waveform with the model's mel settings.
    """
    from tqdm.auto import tqdm

    from . import metrics
    from .models import gan

    cfg = generator.config
    programs = list(cfg.programs if programs is None else programs)
    pitches = list(cfg.pitches if pitches is None else pitches)
    # The classifier hears each training note twice, directly and after the mel inversion, so that
    # Griffin-Lim's phase artefacts alone do not change its answer.
    real_train = gan.render_note_variations(cfg, n_classifier, seed=1)
    inverted = np.stack([gan.log_mel_to_audio(m, cfg) for m in real_train["log_mel"]])
    real_train = {"log_mel": np.concatenate([real_train["log_mel"], gan.log_mel(inverted, cfg)]),
                  "program": np.concatenate([real_train["program"]] * 2)}
    real_eval = gan.render_note_variations(cfg, n_per_condition, seed=2, programs=programs, pitches=pitches)
    real_floor = gan.render_note_variations(cfg, n_per_condition, seed=3, programs=programs, pitches=pitches)
    program_label = lambda p: gan.condition_indices(cfg, p, cfg.pitches[0])[0].numpy()
    classifier = metrics.train_note_classifier(gan.normalise(real_train["log_mel"], cfg),
                                               program_label(real_train["program"]), n_steps=classifier_steps)

    z = gan.latent(np.arange(len(real_eval["program"])) + 10_000, cfg.z_dim)
    fake_log_mel = gan.generate_log_mel(generator, real_eval["program"], real_eval["pitch"], z)
    fake_y = np.stack([gan.log_mel_to_audio(m, cfg) for m in tqdm(fake_log_mel, desc="Griffin-Lim", disable=not progress)])
    roundtrip_y = np.stack([gan.log_mel_to_audio(m, cfg) for m in real_eval["log_mel"]])

    def scores(y):
        x = gan.normalise(gan.log_mel(y, cfg), cfg)
        predicted, embedding = metrics.classify(classifier, x)
        errors = metrics.pitch_errors_cents(tqdm(y, desc="pyin", disable=not progress), real_eval["pitch"], cfg.sr)
        return {"pitch_accuracy": metrics.pitch_accuracy(errors),
                "instrument_accuracy": float(np.mean(predicted == program_label(real_eval["program"]))),
                "median_abs_cents": float(np.nanmedian(np.abs(errors))), "embedding": embedding}

    real, fake, roundtrip = scores(real_eval["y"]), scores(fake_y), scores(roundtrip_y)
    _, floor_embedding = metrics.classify(classifier, gan.normalise(gan.log_mel(real_floor["y"], cfg), cfg))

    diverse_real = gan.render_note_variations(cfg, n_diversity, seed=4, programs=[40], pitches=[67])["log_mel"]
    diverse_fake = gan.generate_log_mel(generator, 40, 67, gan.latent(np.arange(n_diversity) + 20_000, cfg.z_dim))
    d_real, d_fake = metrics.pairwise_rms_distances(diverse_real), metrics.pairwise_rms_distances(diverse_fake)
    result = {"n_notes": len(real_eval["pitch"])}
    for name, score in (("real", real), ("real_roundtrip", roundtrip), ("generated", fake)):
        result.update({f"{name}_{k}": round(v, 4) for k, v in score.items() if k != "embedding"})
    result.update({
        "pitch_accuracy_ratio": round(fake["pitch_accuracy"] / real["pitch_accuracy"], 4),
        "instrument_accuracy_ratio": round(fake["instrument_accuracy"] / real["instrument_accuracy"], 4),
        "frechet_generated": round(metrics.frechet_distance(floor_embedding, fake["embedding"]), 4),
        "frechet_real_floor": round(metrics.frechet_distance(floor_embedding, real["embedding"]), 4),
        "diversity_min_distance_generated": round(float(d_fake.min()), 4),
        "diversity_min_distance_real": round(float(d_real.min()), 4),
        "diversity_mean_distance_generated": round(float(d_fake.mean()), 4),
        "diversity_mean_distance_real": round(float(d_real.mean()), 4),
        "diversity_near_identical_pairs_generated": int((d_fake < 0.1).sum()),
        "diversity_near_identical_pairs_real": int((d_real < 0.1).sum()),
    })
    return result


RECIPES["gan"] = train_gan


# RNNs (chapter 5) ----------------------------------------------------------------------------------


def _keep_best(model, score, key: str) -> tuple:
    """Wrap an evaluation so that the weights with the lowest ``key`` so far are kept (early stopping).

    Returns ``(evaluate, best)``; ``best["state"]`` holds those weights, ``best[key]`` their score.
    """
    best = {key: float("inf"), "state": None}

    def evaluate():
        scores = score()
        if scores[key] < best[key]:
            best[key] = scores[key]
            best["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return scores

    return evaluate, best


def _finish(name: str, out_dir: Path, model, model_config, metrics: dict, start: float, command: str,
            data: str, **extra) -> dict:
    wall_time_s = round(time.perf_counter() - start, 1)
    meta = {"command": command, "mode": config.get_mode(), "data": data, "metrics": metrics,
            "device": str(config.get_device()), "torch_threads": torch.get_num_threads(),
            "wall_time_s": wall_time_s, **extra}
    train.save_weights(out_dir / f"{name}.safetensors", model, model_config, meta)
    return {"weights": str(out_dir / f"{name}.safetensors"), **metrics, "wall_time_s": wall_time_s}


def poly_step(model):
    """The step function of the polyphonic RNNs: NLL per frame of a padded batch of piano rolls."""

    def step(batch, update):
        rolls, mask = batch
        loss = losses.pianoroll_nll(model(rolls), rolls[:, 1:], mask)
        update(loss)
        return {"train_nll": loss}

    return step


def poly_batches(rolls, batch_size: int = 16, n_frames: int | None = None):
    """Shuffled padded batches ``(rolls [shape=(B, T, 88)], mask [shape=(B, T - 1)])``; with
    ``n_frames``, long rolls are cut at a random start to that many frames."""
    from .models import rnn

    def collate(items):
        if n_frames:
            items = [r[s:s + n_frames] for r in items
                     for s in [int(torch.randint(max(len(r) - n_frames, 0) + 1, ()))]]
        return rnn.pad_rolls(items)

    rolls = [r for r in rolls if len(r) >= 2]
    return torch.utils.data.DataLoader(rolls, batch_size=batch_size, shuffle=True, drop_last=len(rolls) > batch_size,
                                       collate_fn=collate)


def train_poly(out_dir="runs", steps: int | None = None, command: str = "", output: str = "independent",
               data: str | None = None, progress: bool = True, name: str | None = None) -> dict:
    """The chapter-5 polyphonic LSTM (independent or NADE outputs) on the JSB-like chorales, or on
    the piano rolls in folder ``data`` (see `models.rnn.read_pianoroll_folder`).

    Trains with early stopping on the validation NLL; reports nats per frame on valid (and test for
    the chorales), the convention of the published JSB Chorales results.
    """
    from .models import rnn

    config.seed_everything(0)
    name = name or ("poly-rnn" if output == "independent" else "poly-made")
    if data is None:
        rolls = {split: [c.roll for c in datasets.load_chorales(split)] for split in datasets.SPLITS}
        description = "JSB-like Bach chorales (music21 corpus, quarter-note frames, in C), split by hash"
    else:
        rolls = rnn.read_pianoroll_folder(data)
        description = f"user piano rolls from {data}"
    model_config = rnn.PolyConfig(output=output, hidden_dim=config.pick(128, 256),
                                  dropout=config.pick(0.2, 0.4), made_dim=config.pick(128, 512))
    model = rnn.PolyRNN(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.pick(3e-3, 1e-3))
    n_steps = steps or config.pick(150, 2500)
    evaluate, best = _keep_best(model, lambda: {"valid_nll": rnn.score_rolls(model, rolls["valid"])["nll_per_frame"]},
                                "valid_nll")
    out_dir = Path(out_dir)
    start = time.perf_counter()
    history = train.fit(model, optimizer, poly_step(model), poly_batches(rolls["train"], 16), n_steps,
                        evaluate=evaluate, eval_every=config.pick(25, 100), log_every=config.pick(10, 50),
                        checkpoint_path=out_dir / f"{name}.pt", checkpoint_every=500, config=model_config,
                        progress=progress, desc=name)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    metrics = {"valid_nll": round(rnn.score_rolls(model, rolls["valid"])["nll_per_frame"], 4), "steps": n_steps,
               "best_step": min((r for r in history if "valid_nll" in r), key=lambda r: r["valid_nll"])["step"]}
    if "test" in rolls:
        metrics["test_nll"] = round(rnn.score_rolls(model, rolls["test"])["nll_per_frame"], 4)
    result = _finish(name, out_dir, model, model_config, metrics, start, command, description,
                     units="nats per frame, summed over 88 keys, first frame of each roll excluded")
    result["history"] = history
    return result


RECIPES["poly-rnn"] = train_poly
RECIPES["poly-made"] = lambda **kwargs: train_poly(output="made", **kwargs)


# VAE (chapter 4) -----------------------------------------------------------------------------------


def vae_melody_step(model, beta: float = 0.2, free_nats: float = 16.0, warmup_steps: int = 1000,
                    word_dropout: float = 0.0):
    """The step function of the melody VAE: -ELBO with KL annealing and free bits, one update.

    loss = sum_t CE(x_t | x_<t, z) + beta_t * max(KL - free_nats, 0), beta_t rising linearly from 0
    to ``beta`` over ``warmup_steps`` (per example: summed over the 32 steps, averaged over the batch);
    ``word_dropout`` hides that share of the decoder's previous tokens (see `models.vae.MelodyVAE`).
    Logged: the loss, the reconstruction NLL, the (unclipped) KL, and the teacher-forced accuracy.
    """
    count = {"step": 0}

    def step(tokens, update):
        logits, mu, logvar, _ = model(tokens, word_dropout=word_dropout)
        nll = losses.categorical_nll(logits, tokens) * tokens.shape[1]
        kl = losses.gaussian_kl(mu, logvar)
        weight = losses.kl_weight(count["step"], warmup_steps, beta)
        loss = losses.negative_elbo(nll, losses.free_bits_kl(mu, logvar, free_nats), weight)
        update(loss)
        count["step"] += 1
        return {"loss": loss, "nll": nll, "kl": kl,
                "train_accuracy": (logits.argmax(1) == tokens).float().mean()}

    return step


def melody_slices(tunes, transpose=range(-5, 7), max_slices: int | None = None, seed: int = 0) -> torch.Tensor:
    """2-bar (32-step) slices of ``tunes`` as a LongTensor [shape=(N, 32)] (no augmentation when
    ``transpose`` is None), optionally a fixed random subset of ``max_slices``."""
    data = datasets.GridSliceDataset(tunes, n_bars=2, transpose=transpose)
    tokens = torch.from_numpy(data.windows.astype(np.int64))
    if max_slices is not None and len(tokens) > max_slices:
        keep = np.random.default_rng(seed).choice(len(tokens), max_slices, replace=False)
        tokens = tokens[np.sort(keep)]
    return tokens


def train_vae_melody(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True,
                     beta: float = 0.1, free_nats: float = 48.0, word_dropout: float = 0.25) -> dict:
    """The chapter-4 melody VAE on 2-bar slices of the folk melodies of all regions."""
    from .models import vae

    config.seed_everything(0)
    model_config = vae.MelodyVaeConfig(encoder_dim=config.pick(96, 128), decoder_dim=config.pick(192, 256),
                                       z_dim=64)
    batch_size = 64
    train_data = datasets.GridSliceDataset(datasets.load_folk("train"), n_bars=2)
    valid_tokens = melody_slices(datasets.load_folk("valid"), transpose=None, max_slices=2000)
    model = vae.MelodyVAE(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    n_steps = steps or config.pick(300, 6000)
    loader = torch.utils.data.DataLoader(train_data, batch_size=batch_size, shuffle=True, drop_last=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.05, 1 - s / n_steps))

    step_fn = vae_melody_step(model, beta=beta, free_nats=free_nats, warmup_steps=max(n_steps // 6, 1),
                              word_dropout=word_dropout)

    def step_with_schedule(batch, update):
        logged = step_fn(batch, update)
        scheduler.step()
        return logged

    def evaluate():
        scores = vae.reconstruction_accuracy(model, valid_tokens)
        return {f"valid_{k}": v for k, v in scores.items() if k != "n_slices"}

    out_dir = Path(out_dir)
    start = time.perf_counter()
    train.fit(model, optimizer, step_with_schedule, loader, n_steps, evaluate=evaluate,
              eval_every=max(n_steps // 6, 1), log_every=25, checkpoint_path=out_dir / "vae-melody.pt",
              checkpoint_every=500, config=model_config, progress=progress, desc="melody VAE")
    wall_time_s = round(time.perf_counter() - start, 1)
    test_tunes = datasets.load_folk("test")
    test_tokens = melody_slices(test_tunes, transpose=None)
    test = vae.reconstruction_accuracy(model, test_tokens)
    stats = vae.posterior_statistics(model, test_tokens)
    per_region = {}
    for region in sorted({t.region for t in test_tunes}):
        scores = vae.reconstruction_accuracy(model, melody_slices([t for t in test_tunes if t.region == region],
                                                                  transpose=None))
        per_region[region] = {k: round(v, 4) for k, v in scores.items()}
    metrics = {**{f"test_{k}": round(v, 4) for k, v in test.items()}, "test_per_region": per_region,
               "test_kl_nats": round(float(stats["kl_per_dim"].sum()), 2), "active_units": stats["active_units"],
               "steps": n_steps, "batch_size": batch_size}
    meta = {"command": command, "mode": config.get_mode(), "beta": beta, "free_nats": free_nats,
            "word_dropout": word_dropout,
            "data": "folk melodies of all regions, 2-bar slices (hop 1 bar), train split with transposition "
                    "-5..+6; metrics on every 2-bar slice of the test split, untransposed",
            "metrics": metrics, "device": str(config.get_device()), "torch_threads": torch.get_num_threads(),
            "wall_time_s": wall_time_s}
    train.save_weights(out_dir / "vae-melody.safetensors", model, model_config, meta)
    return {"weights": str(out_dir / "vae-melody.safetensors"), **metrics, "wall_time_s": wall_time_s}


def vae_timbre_step(model, beta: float = 1.0, sigma: float = 0.1, warmup_steps: int = 500):
    """The step function of the timbre VAE: -ELBO with a fixed-variance Gaussian decoder.

    -log p(x|z) = sum_pixels (x - x_mean)^2 / (2 sigma^2) + const; KL annealed over ``warmup_steps``.
    """
    count = {"step": 0}

    def step(batch, update):
        x, _ = batch
        x_mean, mu, logvar, _ = model(x)
        nll = ((x - x_mean) ** 2).flatten(1).sum(1).mean() / (2 * sigma**2)
        kl = losses.gaussian_kl(mu, logvar)
        loss = losses.negative_elbo(nll, kl, losses.kl_weight(count["step"], warmup_steps, beta))
        update(loss)
        count["step"] += 1
        return {"loss": loss, "nll": nll, "kl": kl, "rmse": ((x - x_mean) ** 2).mean().sqrt()}

    return step


def timbre_split(notes: dict) -> np.ndarray:
    """Held-out mask of a timbre note set: every fourth pitch (the model never hears those pitches)."""
    return (notes["pitch"] % 4) == 1


def score_timbre(model, notes: dict, test: np.ndarray, k: int = 5) -> dict:
    """kNN instrument accuracy in latent space (train-pitch means -> held-out-pitch means), the same
    for the raw normalised log-mels (the baseline), and the held-out reconstruction RMSE."""
    from .models import vae

    with torch.no_grad():
        mu, _ = model.encode(torch.from_numpy(notes["x"]))
        x_mean = model.decode(mu).cpu().numpy()
    mu = mu.cpu().numpy()
    labels = notes["program"]
    flat = notes["x"].reshape(len(labels), -1)
    return {"knn_latent": vae.knn_accuracy(mu[~test], labels[~test], mu[test], labels[test], k),
            "knn_log_mel": vae.knn_accuracy(flat[~test], labels[~test], flat[test], labels[test], k),
            "test_rmse": float(np.sqrt(((x_mean[test] - notes["x"][test]) ** 2).mean()))}


def train_vae_timbre(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True,
                     beta: float = 1.0) -> dict:
    """The chapter-4 timbre VAE on SoundFont one-shot notes of 8 instruments."""
    from .models import vae

    config.seed_everything(0)
    model_config = vae.TimbreVaeConfig()  # 256 hidden units: the weights stay small (about 5 MB)
    notes = vae.timbre_note_set(model_config, velocities=config.pick((90,), (60, 90, 120)))
    test = timbre_split(notes)
    x = torch.from_numpy(notes["x"][~test])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.from_numpy(notes["program"][~test])),
                                         batch_size=64, shuffle=True, drop_last=True)
    model = vae.TimbreVAE(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    n_steps = steps or config.pick(300, 4000)
    out_dir = Path(out_dir)
    start = time.perf_counter()
    history = train.fit(model, optimizer, vae_timbre_step(model, beta=beta, warmup_steps=max(n_steps // 8, 1)),
                        loader, n_steps, evaluate=lambda: score_timbre(model, notes, test),
                        eval_every=max(n_steps // 4, 1), log_every=25, checkpoint_path=out_dir / "vae-timbre.pt",
                        checkpoint_every=1000, config=model_config, progress=progress, desc="timbre VAE")
    wall_time_s = round(time.perf_counter() - start, 1)
    metrics = {**{k: round(v, 4) for k, v in history[-1].items() if k != "step"}, "steps": n_steps,
               "n_train_notes": int((~test).sum()), "n_test_notes": int(test.sum())}
    meta = {"command": command, "mode": config.get_mode(), "beta": beta,
            "data": f"SoundFont TimGM6mb one-shot notes, programs {list(vae.TIMBRE_PROGRAMS)}, pitches 48-84 "
                    "(held out: pitch % 4 == 1), velocities as in the config's mode; silent renders dropped",
            "metrics": metrics, "device": str(config.get_device()), "torch_threads": torch.get_num_threads(),
            "wall_time_s": wall_time_s}
    train.save_weights(out_dir / "vae-timbre.safetensors", model, model_config, meta)
    return {"weights": str(out_dir / "vae-timbre.safetensors"), **metrics, "wall_time_s": wall_time_s}


RECIPES["vae-melody"] = train_vae_melody
RECIPES["vae-timbre"] = train_vae_timbre

# RNNs (chapter 5), continued: shipped weights, scoring, melodies, audio ------------------------------

CHECKPOINTS = Path(__file__).parent / "checkpoints"


def load_rnn(name: str, weights=None):
    """Load a chapter-5 model: the shipped ``musiclab/checkpoints/NAME.safetensors`` or ``weights``.
    Returns ``(model, sidecar)``."""
    from .models import rnn

    classes = {"melody-rnn": (rnn.MelodyRNN, rnn.MelodyConfig), "poly-rnn": (rnn.PolyRNN, rnn.PolyConfig),
               "poly-made": (rnn.PolyRNN, rnn.PolyConfig), "audio-rnn": (rnn.AudioRNN, rnn.AudioConfig),
               "audio-rnn-mse": (rnn.AudioRNN, rnn.AudioConfig)}
    if name not in classes:
        raise BadInputError(f"unknown model {name!r}; choose one of: {', '.join(classes)}")
    return train.load_weights(weights or CHECKPOINTS / f"{name}.safetensors", *classes[name])


def score_pianoroll_file(name: str, path, weights=None) -> dict:
    """``python -m musiclab score poly-rnn FILE``: NLL of the piano rolls in FILE (MIDI or .npz of
    (T, 88) 0/1 arrays) in nats per frame, summed over the 88 keys, first frame of each roll excluded."""
    from .models import rnn

    if name not in ("poly-rnn", "poly-made"):
        raise BadInputError(f"score: {name!r} does not score piano rolls; use poly-rnn or poly-made")
    model, _ = load_rnn(name, weights)
    return rnn.score_rolls(model, rnn.read_pianorolls(path))


def melody_step(model):
    """The step function of the melody RNN: teacher-forced next-token NLL over whole chunks."""

    def step(batch, update):
        inputs, targets, region, tune_type = batch
        logits, _ = model(inputs, region, tune_type)
        loss = losses.sequence_nll(logits, targets)
        update(loss)
        return {"train_nll": loss}

    return step


@torch.no_grad()
def score_melody(model, data, batch_size: int = 64) -> dict:
    """Held-out NLL (nats/token) and next-token accuracy, teacher-forced, over the non-padding tokens."""
    total, correct, n = 0.0, 0, 0
    device = next(model.parameters()).device
    for i in range(0, len(data[0]), batch_size):
        inputs, targets, region, tune_type = (t[i:i + batch_size].to(device) for t in data)
        logits, _ = model(inputs, region, tune_type)
        keep = targets >= 0
        total += torch.nn.functional.cross_entropy(logits[keep].float(), targets[keep], reduction="sum").item()
        correct += (logits[keep].argmax(-1) == targets[keep]).sum().item()
        n += keep.sum().item()
    return {"valid_nll": total / n, "valid_accuracy": correct / n}


def melody_generation_report(model, train_tunes, held_out_tunes, n_tunes: int = 50, n_steps: int = 256,
                             temperature: float = 1.0, seed: int = 0) -> dict:
    """Generate ``n_tunes`` melodies (conditioned on the labels of random held-out tunes) and compare
    them with the held-out tunes: Jensen-Shannon divergence (nats) of the pitch-class, interval and
    duration histograms, the same for training vs held-out as a reference, the fraction of generated
    8-note runs found in the training set, and the time to generate one melody."""
    from .models import rnn

    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(held_out_tunes), (n_tunes,), generator=generator).tolist()
    generated, times = [], []
    for i in picks:
        start = time.perf_counter()
        generated.append(model.generate(n_steps, region=held_out_tunes[i].region,
                                        tune_type=held_out_tunes[i].tune_type, temperature=temperature,
                                        generator=generator))
        times.append(time.perf_counter() - start)
    histograms = {name: rnn.melody_histograms([t.grid for t in tunes])
                  for name, tunes in (("train", train_tunes), ("held_out", held_out_tunes))}
    histograms["generated"] = rnn.melody_histograms(generated)
    report = {}
    for feature in ("pitch_class", "interval", "duration"):
        as_tensor = lambda which: torch.from_numpy(histograms[which][feature])
        report[f"js_{feature}_generated"] = losses.js_divergence(as_tensor("generated"), as_tensor("held_out")).item()
        report[f"js_{feature}_train"] = losses.js_divergence(as_tensor("train"), as_tensor("held_out")).item()
    report["copied_8_note_runs"] = rnn.copied_fraction(generated, [t.grid for t in train_tunes])
    report["copied_8_note_runs_held_out"] = rnn.copied_fraction([held_out_tunes[i].grid for i in picks],
                                                                 [t.grid for t in train_tunes])
    report["generate_ms_median"] = 1000 * float(np.median(times))
    return {"report": report, "generated": generated}


def train_melody(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True) -> dict:
    """The chapter-5 melody RNN: an LSTM language model over the folk melodies' event grids,
    conditioned on region and tune type."""
    from .models import rnn

    config.seed_everything(0)
    train_tunes, valid_tunes = datasets.load_folk("train"), datasets.load_folk("valid")
    regions, tune_types = rnn.condition_labels(train_tunes, min_count=config.pick(10, 50))
    model_config = rnn.MelodyConfig(regions=regions, tune_types=tune_types, hidden_dim=config.pick(128, 256),
                                    n_layers=1)
    length = config.pick(128, 256)
    train_data = rnn.melody_sequences(train_tunes, model_config, length)
    valid_data = rnn.melody_sequences(valid_tunes, model_config, length)
    model = rnn.MelodyRNN(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*train_data), batch_size=32,
                                         shuffle=True, drop_last=True)
    n_steps = steps or config.pick(150, 700)
    evaluate, best = _keep_best(model, lambda: score_melody(model, valid_data), "valid_nll")
    out_dir = Path(out_dir)
    start = time.perf_counter()
    history = train.fit(model, optimizer, melody_step(model), loader, n_steps, evaluate=evaluate,
                        eval_every=config.pick(50, 250), log_every=config.pick(10, 50),
                        checkpoint_path=out_dir / "melody-rnn.pt", checkpoint_every=500, config=model_config,
                        progress=progress, desc="melody-rnn")
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    scores = score_melody(model, valid_data)
    report = melody_generation_report(model, train_tunes, valid_tunes, n_tunes=config.pick(10, 50))["report"]
    metrics = {**{k: round(v, 4) for k, v in {**scores, **report}.items()}, "steps": n_steps}
    result = _finish("melody-rnn", out_dir, model, model_config, metrics, start, command,
                     "folk melodies (music21 corpus), train/valid split by hash",
                     units="nats per token, 16th-note event grid; JS divergences in nats")
    result["history"] = history
    return result


RECIPES["melody-rnn"] = train_melody


AUDIO_SR = 8000
AUDIO_PROGRAM = 71  # clarinet: a steady, nearly periodic tone that a small model can learn


def audio_notes(pitches, sr: int = AUDIO_SR, program: int = AUDIO_PROGRAM) -> np.ndarray:
    """The audio RNN's data: one 0.5 s note (plus 0.1 s release) per pitch at ``sr``, mu-law levels
    int64 [shape=(n_pitches, n)]."""
    from . import audio

    notes = audio.one_shot_note_set([program], list(pitches), velocities=(100,), duration_s=0.5,
                                    release_s=0.1, sr=sr)
    y = notes["y"] / np.abs(notes["y"]).max() * 0.9
    return audio.mu_law_encode(y)


AUDIO_TRAIN_PITCHES = (60, 62, 64, 65, 67, 69, 71, 72)
AUDIO_HELD_OUT_PITCHES = (63, 66, 70)


def audio_step(model):
    """The step function of the audio RNN: categorical NLL of the next mu-law level, or the mean
    squared error of the next sample (a Gaussian NLL with a fixed variance, up to constants)."""
    from . import audio

    def step(batch, update):
        (levels,) = batch
        out, _ = model(levels[:, :-1])
        if model.config.output == "categorical":
            loss = losses.sequence_nll(out, levels[:, 1:])
        else:
            loss = ((out - audio.mu_law_decode(levels[:, 1:])) ** 2).mean()
        update(loss)
        return {"train_loss": loss}

    return step


@torch.no_grad()
def score_audio(model, levels: torch.Tensor, sigma: float | None = None) -> dict:
    """Teacher-forced NLL of the next mu-law level in nats per sample, for both output types on the
    same 256 bins (a Gaussian is integrated over each level's amplitude bin), and the MSE of the
    prediction (the categorical model predicts its distribution's mean amplitude)."""
    from . import audio
    from .models import rnn

    out, _ = model(levels[:, :-1])
    target_levels, target_y = levels[:, 1:], audio.mu_law_decode(levels[:, 1:])
    if model.config.output == "categorical":
        centres = audio.mu_law_decode(torch.arange(model.config.n_classes))
        mean = torch.softmax(out.float(), -1) @ centres
        nll = losses.sequence_nll(out, target_levels).item()
    else:
        mean = out.float()
        sigma = sigma if sigma is not None else ((mean - target_y) ** 2).mean().sqrt().item()
        nll = losses.gaussian_binned_nll(target_levels.flatten(), mean.flatten().double(), sigma,
                                         rnn.mu_law_bin_edges(model.config.n_classes)).item()
    return {"nll": nll, "mse": ((mean - target_y) ** 2).mean().item(), "sigma": sigma}


def train_audio(out_dir="runs", steps: int | None = None, command: str = "", output: str = "categorical",
                progress: bool = True) -> dict:
    """The chapter-5 sample-level audio RNN on SoundFont clarinet notes at 8 kHz, with a categorical
    mu-law output (``audio-rnn``) or a Gaussian output trained with MSE (``audio-rnn-mse``)."""
    from .models import rnn

    config.seed_everything(0)
    name = "audio-rnn" if output == "categorical" else "audio-rnn-mse"
    train_levels = torch.from_numpy(audio_notes(AUDIO_TRAIN_PITCHES))
    held_out = torch.from_numpy(audio_notes(AUDIO_HELD_OUT_PITCHES))
    model_config = rnn.AudioConfig(output=output, hidden_dim=config.pick(64, 128))
    model = rnn.AudioRNN(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    length = 256
    windows = train_levels.unfold(1, length + 1, length // 2).reshape(-1, length + 1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(windows), batch_size=16, shuffle=True,
                                         drop_last=True)
    n_steps = steps or config.pick(40, 800)
    out_dir = Path(out_dir)
    start = time.perf_counter()
    history = train.fit(model, optimizer, audio_step(model), loader, n_steps,
                        evaluate=lambda: {f"valid_{k}": v for k, v in score_audio(model, held_out).items()
                                          if v is not None},
                        eval_every=max(n_steps // 5, 1), log_every=10, checkpoint_path=out_dir / f"{name}.pt",
                        checkpoint_every=500, config=model_config, progress=progress, desc=name)
    # A fixed-variance Gaussian's maximum-likelihood sigma is the RMS residual on the training data.
    sigma = score_audio(model, train_levels)["sigma"] if output == "gaussian" else None
    scores = score_audio(model, held_out, sigma)
    metrics = {**{f"held_out_{k}": round(v, 5) for k, v in scores.items() if v is not None}, "steps": n_steps}
    result = _finish(name, out_dir, model, model_config, metrics, start, command,
                     f"SoundFont TimGM6mb program {AUDIO_PROGRAM}, {AUDIO_SR} Hz, train pitches "
                     f"{list(AUDIO_TRAIN_PITCHES)}, held-out pitches {list(AUDIO_HELD_OUT_PITCHES)}",
                     units="nats per sample over the 256 mu-law levels")
    result["history"] = history
    return result


RECIPES["audio-rnn"] = train_audio
RECIPES["audio-rnn-mse"] = lambda **kwargs: train_audio(output="gaussian", **kwargs)
