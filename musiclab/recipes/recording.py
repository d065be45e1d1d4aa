"""The chapter-14 GAN on slices of one recording: ``python -m musiclab train recording-gan [--data my.wav]``.

The chapter-3 SpecGAN with a single condition (so it is unconditional): it learns the distribution of
0.75-s log-mel slices cut from the recording. Without ``data`` it trains on the book's stand-in
recording, a folk tune rendered by the SoundFont (`book_recording`).

Chapter: notebooks/14_end_to_end.ipynb
"""
from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from .. import audio, datasets, recording, train
from ..errors import BadInputError
from .common import TrainingSettings, _finish, pick_settings, run_identity
from .gan import gan_batches, gan_step, score_gan_diversity

BOOK_TUNE_ID = "oneills1850/1224"  # "Toss the Feathers", a reel from O'Neill's 1850 collection (test split)
BOOK_PROGRAM = 40  # violin
BOOK_QPM = 150


def book_recording(sr: int = 44100) -> tuple[np.ndarray, str]:
    """The book's stand-in for a reader's recording: ``BOOK_TUNE_ID`` played twice on the SoundFont violin
    at ``BOOK_QPM``, in stereo (the right channel 3 dB quieter and 12 ms later, like a second microphone).

    Returns ``(y [shape=(2, n)] float32 at sr, title)``.

    Chapter: notebooks/14_end_to_end.ipynb
    """
    from .. import symbolic

    tune = next((t for t in datasets.load_folk(progress=False) if t.id == BOOK_TUNE_ID), None)
    if tune is None:
        raise BadInputError(f"{BOOK_TUNE_ID} is not in the folk data; rebuild it with python -m musiclab data")
    notes = symbolic.grid_to_notes(np.concatenate([tune.grid, tune.grid]))
    left = audio.render_notes(notes, program=BOOK_PROGRAM, qpm=BOOK_QPM, sr=sr, tail_s=1.0)
    delay = round(0.012 * sr)
    right = 10 ** (-3 / 20) * np.concatenate([np.zeros(delay, np.float32), left[:-delay]])
    y = np.stack([left, right])
    return recording.normalise_peak(y, 0.7), f"{tune.title} ({tune.id}), violin, {BOOK_QPM} quarter notes per minute"


def recording_slices(y, model_config) -> dict:
    """Slices of a mono recording at the model's rate, a quarter slice apart, as the GAN's training data:
    ``y`` [shape=(N, n_samples)], ``log_mel`` [shape=(N, n_mels, n_frames)], and the single condition
    (``program``, ``pitch``) of every slice.

    Chapter: notebooks/14_end_to_end.ipynb
    """
    from ..models import gan

    slices = recording.slice_recording(y, model_config.sr, model_config.n_samples, model_config.n_samples // 4)
    condition = np.zeros(len(slices), np.int64)
    return {"y": slices, "log_mel": gan.log_mel(slices, model_config),
            "program": condition + model_config.programs[0], "pitch": condition + model_config.pitches[0]}


@dataclasses.dataclass(frozen=True)
class RecordingGanSettings(TrainingSettings):
    """Training settings of ``recording-gan`` (defaults: full mode; `RECORDING_GAN_SETTINGS` holds both presets).

    Chapter: notebooks/14_end_to_end.ipynb
    """

    steps: int = 3000
    batch_size: int = 4  # the shipped weights were trained on 4 slices per batch
    lr: float = 2e-4
    log_every: int = 30
    eval_every: int = 600
    checkpoint_every: int = 250
    # a short average: with decay 0.999 the averaged weights drifted away from the batch-norm
    # statistics copied from the live generator and sounded collapsed
    ema_decay: float = 0.95
    mode_seeking: float = 0.25
    width: int = 16


RECORDING_GAN_SETTINGS = {"full": RecordingGanSettings(),
                          "quick": RecordingGanSettings(steps=150, log_every=10, eval_every=30, width=8)}


def train_recording_gan(out_dir="runs", steps: int | None = None, command: str = "", data=None,
                        progress: bool = True, restart: bool = False, **settings) -> dict:
    """Train the single-condition SpecGAN on slices of ``data`` (an audio file or a folder), or of the
    book's recording; write ``out_dir/recording-gan.safetensors`` (the generator's moving average; the
    sidecar also keeps the training history for learning curves). ``settings``: fields of
    `RecordingGanSettings` to change."""
    from ..models import gan

    start = time.perf_counter()
    settings = pick_settings("recording-gan", RECORDING_GAN_SETTINGS, steps, **settings)
    model_config = gan.GanConfig(programs=(0,), pitches=(0,), width=settings.width)
    if data is None:
        y, title = book_recording(model_config.sr)
        recordings, skipped, source = [y.mean(axis=0)], [], f"book recording: {title}"
    else:
        recordings, skipped = datasets.user.read_recordings(data, model_config.sr)
        source = f"{data} ({len(recordings)} recordings, {len(skipped)} skipped)"
    parts = [recording_slices(y, model_config) for y in recordings]
    slices = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    generator, discriminator = gan.Generator(model_config), gan.Discriminator(model_config)
    ema = copy.deepcopy(generator)
    optimizers = {name: torch.optim.Adam(module.parameters(), lr=settings.lr, betas=(0.0, 0.9))
                  for name, module in (("generator", generator), ("discriminator", discriminator))}
    out_dir = Path(out_dir)
    history = train.fit({"generator": generator, "discriminator": discriminator, "ema": ema}, optimizers,
                        gan_step(generator, discriminator, ema=ema, ema_decay=settings.ema_decay,
                                 mode_seeking=settings.mode_seeking),
                        gan_batches(slices, model_config, min(settings.batch_size, len(slices["y"]))), settings.steps,
                        evaluate=lambda: score_gan_diversity(ema, slices, 0, 0), eval_every=settings.eval_every,
                        log_every=settings.log_every, grad_clip=None, seed=settings.seed,
                        checkpoint_path=out_dir / "recording-gan.pt", checkpoint_every=settings.checkpoint_every,
                        restart=restart, identity=run_identity(settings, model_config, data, source),
                        config=model_config, started=start, progress=progress, desc="recording-gan")
    metrics = {**{k: round(v, 4) for k, v in history[-1].items() if k.startswith("spread")},
               "steps": settings.steps, "n_slices": len(slices["y"])}
    return _finish("recording-gan", out_dir, ema, model_config, settings, metrics, history, command, source,
                   skipped=skipped, weights="exponential moving average of the generator", history=list(history))
