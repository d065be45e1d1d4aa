"""The chapter-3 conditional SpecGAN: ``python -m musiclab train gan``.

Chapter: notebooks/03_gan.ipynb
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from .. import losses, train
from .common import TrainingSettings, _finish, pick_settings, run_identity


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
    from ..models import gan

    program_index, pitch_index = gan.condition_indices(config_, data["program"], data["pitch"])
    x = torch.from_numpy(gan.normalise(data["log_mel"], config_)).float()
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, program_index, pitch_index),
                                       batch_size=batch_size, shuffle=True, drop_last=True)


@torch.no_grad()
def score_gan_diversity(generator, data: dict, program: int, pitch: int, n: int = 16) -> dict:
    """Mode-collapse diagnostic: mean pairwise RMS distance (nats) of ``n`` generated log-mels of one
    condition, and the same for the real notes of that condition."""
    from ..models import gan

    z = torch.randn(n, generator.config.z_dim, generator=torch.Generator().manual_seed(0))
    fake = torch.from_numpy(gan.generate_log_mel(generator, program, pitch, z)).flatten(1)
    real = torch.from_numpy(data["log_mel"][(data["program"] == program) & (data["pitch"] == pitch)]).flatten(1)
    spread = lambda x: (torch.cdist(x, x) / x.shape[1] ** 0.5).sum() / (len(x) * (len(x) - 1))
    return {"spread_fake": spread(fake).item(), "spread_real": spread(real).item()}


@dataclasses.dataclass(frozen=True)
class GanSettings(TrainingSettings):
    """Training settings of ``gan`` (defaults: full mode; `GAN_SETTINGS` holds both presets).

    ``loss``: ``"hinge"`` (with spectral norm, Adam betas (0, 0.9)) or ``"nonsaturating"`` (Adam betas
    (0.5, 0.999)); ``n_per_condition`` rendered notes per (instrument, pitch).

    Chapter: notebooks/03_gan.ipynb
    """

    steps: int = 4500
    lr: float = 2e-4
    log_every: int = 25
    eval_every: int = 562
    checkpoint_every: int = 250
    loss: str = "hinge"
    mode_seeking: float = 0.25
    ema_decay: float = 0.999
    width: int = 16
    n_per_condition: int = 16


GAN_SETTINGS = {"full": GanSettings(), "quick": GanSettings(steps=150, eval_every=18, width=8, n_per_condition=4)}


def train_gan(out_dir="runs", steps: int | None = None, command: str = "", progress: bool = True,
              restart: bool = False, **settings) -> dict:
    """The chapter-3 conditional SpecGAN on varied SoundFont notes (6 instruments x 25 pitches).
    ``settings``: fields of `GanSettings` to change (e.g. ``loss="nonsaturating"``).

    Your own recording (``train gan --data``) trains chapter 14's single-condition version of the
    same GAN instead (`recipes.recording.train_recording_gan`, chosen in `recipes.RECIPES`).
    """
    import copy

    from ..models import gan

    start = time.perf_counter()
    settings = pick_settings("gan", GAN_SETTINGS, steps, **settings)
    model_config = gan.GanConfig(width=settings.width, spectral_norm=settings.loss == "hinge")
    data = gan.render_note_variations(model_config, n_per_condition=settings.n_per_condition, seed=0)
    generator, discriminator = gan.Generator(model_config), gan.Discriminator(model_config)
    ema = copy.deepcopy(generator)
    betas = (0.0, 0.9) if settings.loss == "hinge" else (0.5, 0.999)
    optimizers = {"generator": torch.optim.Adam(generator.parameters(), lr=settings.lr, betas=betas),
                  "discriminator": torch.optim.Adam(discriminator.parameters(), lr=settings.lr, betas=betas)}
    description = (f"SoundFont TimGM6mb, programs {list(model_config.programs)}, pitches "
                   f"{model_config.pitches[0]}-{model_config.pitches[-1]}, {settings.n_per_condition} notes per "
                   "condition (seed 0): velocity 40-127, hold 0.15-0.5 s, onset 0-40 ms")
    out_dir = Path(out_dir)
    history = train.fit({"generator": generator, "discriminator": discriminator, "ema": ema}, optimizers,
                        gan_step(generator, discriminator, loss=settings.loss, ema=ema, ema_decay=settings.ema_decay,
                                 mode_seeking=settings.mode_seeking),
                        gan_batches(data, model_config, settings.batch_size), settings.steps,
                        evaluate=lambda: score_gan_diversity(ema, data, 40, 67), eval_every=settings.eval_every,
                        log_every=settings.log_every, grad_clip=None, seed=settings.seed,
                        checkpoint_path=out_dir / "gan.pt", checkpoint_every=settings.checkpoint_every,
                        restart=restart, identity=run_identity(settings, model_config, None, description),
                        config=model_config, started=start, progress=progress, desc=f"gan ({settings.loss})")
    metrics = {**{k: round(v, 4) for k, v in history[-1].items() if k.startswith("spread")}, "steps": settings.steps}
    return _finish("gan", out_dir, ema, model_config, settings, metrics, history, command, description,
                   weights=f"exponential moving average of the generator (decay {settings.ema_decay})")


def evaluate_gan(generator, n_per_condition: int = 4, programs=None, pitches=None, n_classifier: int = 4,
                 classifier_steps: int = 400, n_diversity: int = 100, progress: bool = True,
                 pitch: bool = True, inverter=None) -> dict:
    """Measure a conditional note generator against real notes it never saw.

    - pitch accuracy: ``librosa.pyin`` on the generated audio (after Griffin-Lim), within 50 cents,
      next to the same on real notes (raw audio) and on real notes sent through the same mel
      inversion (the ceiling the representation allows);
    - instrument accuracy of a `metrics.NoteClassifier` trained on other real notes, and the
      Frechet distance in its embedding (floor: two independent real sets; ceiling of the
      representation: real notes sent through the same mel inversion); the classifier learns
      from ``n_classifier`` other real notes per condition;
    - diversity: among ``n_diversity`` samples of one condition (violin, G4), the smallest pairwise
      RMS log-mel distance and the number of near-identical pairs (< 0.1 nats, about 0.9 dB), next
      to the same for ``n_diversity`` real notes.

    Every audio clip, generated or real, is analysed from its waveform with the model's mel settings.
    ``pitch=False`` skips the pitch tracking (the slow part) and the pitch figures. ``inverter``
    (a log-mel [shape=(n_mels, n_frames)] -> audio function) replaces the default way back to sound,
    Griffin-Lim (`models.gan.log_mel_to_audio` with ``method="pseudo-inverse"``, with which the
    shipped models' figures were measured), everywhere above, e.g. with the neural vocoder.
    """
    from tqdm.auto import tqdm

    from .. import metrics
    from ..models import gan

    cfg = generator.config
    programs = list(cfg.programs if programs is None else programs)
    pitches = list(cfg.pitches if pitches is None else pitches)
    # The classifier hears each training note twice, directly and after the mel inversion, so that
    # the inverter's artefacts (Griffin-Lim's phase errors) alone do not change its answer.
    real_train = gan.render_note_variations(cfg, n_classifier, seed=1)
    invert = inverter or (lambda log_mel_spec: gan.log_mel_to_audio(log_mel_spec, cfg, method="pseudo-inverse"))
    inverted = np.stack([invert(m) for m in real_train["log_mel"]])
    real_train = {"log_mel": np.concatenate([real_train["log_mel"], gan.log_mel(inverted, cfg)]),
                  "program": np.concatenate([real_train["program"]] * 2)}
    real_eval = gan.render_note_variations(cfg, n_per_condition, seed=2, programs=programs, pitches=pitches)
    real_floor = gan.render_note_variations(cfg, n_per_condition, seed=3, programs=programs, pitches=pitches)
    program_label = lambda p: gan.condition_indices(cfg, p, cfg.pitches[0])[0].numpy()
    classifier = metrics.train_note_classifier(gan.normalise(real_train["log_mel"], cfg),
                                               program_label(real_train["program"]), n_steps=classifier_steps)

    z = gan.latent(np.arange(len(real_eval["program"])) + 10_000, cfg.z_dim)
    fake_log_mel = gan.generate_log_mel(generator, real_eval["program"], real_eval["pitch"], z)
    fake_y = np.stack([invert(m) for m in tqdm(fake_log_mel, desc="back to audio", disable=not progress)])
    roundtrip_y = np.stack([invert(m) for m in real_eval["log_mel"]])

    def scores(y):
        x = gan.normalise(gan.log_mel(y, cfg), cfg)
        predicted, embedding = metrics.classify(classifier, x)
        score = {"instrument_accuracy": float(np.mean(predicted == program_label(real_eval["program"]))),
                 "embedding": embedding}
        if pitch:
            errors = metrics.pitch_errors_cents(tqdm(y, desc="pyin", disable=not progress), real_eval["pitch"], cfg.sr)
            score.update(pitch_accuracy=metrics.pitch_accuracy(errors), median_abs_cents=float(np.nanmedian(np.abs(errors))))
        return score

    real, fake, roundtrip = scores(real_eval["y"]), scores(fake_y), scores(roundtrip_y)
    _, floor_embedding = metrics.classify(classifier, gan.normalise(gan.log_mel(real_floor["y"], cfg), cfg))

    diverse_real = gan.render_note_variations(cfg, n_diversity, seed=4, programs=[40], pitches=[67])["log_mel"]
    diverse_fake = gan.generate_log_mel(generator, 40, 67, gan.latent(np.arange(n_diversity) + 20_000, cfg.z_dim))
    d_real, d_fake = metrics.pairwise_rms_distances(diverse_real), metrics.pairwise_rms_distances(diverse_fake)
    result = {"n_notes": len(real_eval["pitch"])}
    for name, score in (("real", real), ("real_roundtrip", roundtrip), ("generated", fake)):
        result.update({f"{name}_{k}": round(v, 4) for k, v in score.items() if k != "embedding"})
    if pitch:
        result["pitch_accuracy_ratio"] = round(fake["pitch_accuracy"] / real["pitch_accuracy"], 4)
    result.update({
        "instrument_accuracy_ratio": round(fake["instrument_accuracy"] / real["instrument_accuracy"], 4),
        "frechet_generated": round(metrics.frechet_distance(floor_embedding, fake["embedding"]), 4),
        "frechet_real_floor": round(metrics.frechet_distance(floor_embedding, real["embedding"]), 4),
        "frechet_real_roundtrip": round(metrics.frechet_distance(floor_embedding, roundtrip["embedding"]), 4),
        "diversity_min_distance_generated": round(float(d_fake.min()), 4),
        "diversity_min_distance_real": round(float(d_real.min()), 4),
        "diversity_mean_distance_generated": round(float(d_fake.mean()), 4),
        "diversity_mean_distance_real": round(float(d_real.mean()), 4),
        "diversity_near_identical_pairs_generated": int((d_fake < 0.1).sum()),
        "diversity_near_identical_pairs_real": int((d_real < 0.1).sum()),
    })
    return result
