"""What every recipe shares: the settings every training has and their presets per mode, what a
checkpoint must match to be resumed, writing weights with a sidecar. (Your own files for ``--data``
are read by `datasets.user`.)"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path

import torch

from .. import config, train, weights
from ..errors import BadInputError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """The settings every recipe's training has; each recipe extends this with its own fields (model
    sizes, loss weights, data sizes) in ONE frozen dataclass whose defaults are the full-mode preset
    and a ``quick`` preset beside it (see `pick_settings`). The sidecar records the settings whole.

    ``lr`` is the initial learning rate (schedules multiply it); ``eval_every`` and
    ``checkpoint_every`` count steps (0: evaluate only at the end); ``seed`` seeds the model's
    initial weights and every step's randomness (`train.seed_step`).

    Chapter: notebooks/02_learning_to_generate.ipynb
    """

    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    log_every: int = 10
    eval_every: int = 0
    checkpoint_every: int = 500
    seed: int = 0


def pick_settings(name: str, presets: dict, steps: int | None = None, **overrides):
    """The settings of recipe ``name`` for the current mode: ``presets[mode]`` with ``steps`` and any
    other field in ``overrides`` replaced. Logs the plan (mode, steps, how long full mode takes) and
    seeds Python, NumPy and torch from the settings' ``seed`` (the model's initial weights).

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    mode = config.get_mode()
    if steps is not None:
        overrides["steps"] = steps
    fields = {f.name for f in dataclasses.fields(presets[mode])}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"{name}: unknown setting(s) {unknown}; the settings are {sorted(fields)}")
    settings = dataclasses.replace(presets[mode], **overrides)
    if not isinstance(settings.steps, int) or settings.steps < 1:
        raise BadInputError(f"steps={settings.steps!r}: train at least one step")
    _log_plan(name, mode, settings.steps, presets["full"].steps)
    config.seed_everything(settings.seed)
    return settings


def _log_plan(name: str, mode: str, steps: int, full_steps: int) -> None:
    """Say which mode runs, how many steps, and what full mode takes (from the shipped sidecar)."""
    shipped = weights.CHECKPOINTS / f"{name}.json"
    full_time = None
    if shipped.exists():
        sidecar = json.loads(shipped.read_text())
        shipped_steps = (sidecar.get("metrics") or {}).get("steps")
        if sidecar.get("mode") == "full" and sidecar.get("wall_time_s") and shipped_steps:
            full_time = (f"{train.format_duration(sidecar['wall_time_s'] * full_steps / shipped_steps)} on "
                         f"{sidecar.get('device', 'cpu')}, measured for the shipped weights")
    if mode == "quick":
        reason = "" if torch.cuda.is_available() else " (no GPU found)"
        log.info("%s: quick mode%s: %d steps of the small model; --mode full trains %d steps of the real one%s",
                 name, reason, steps, full_steps, f": about {full_time}" if full_time else "",
                 extra={"full_steps": full_steps, "full_time_known": full_time is not None})
    else:
        log.info("%s: full mode: %d steps%s", name, steps, f"; {full_steps} take about {full_time}" if full_time
                 else "", extra={"full_steps": full_steps, "full_time_known": True})


def run_identity(settings, model_config, data=None, description: str = "") -> dict:
    """What a checkpoint must match to be resumed (`train.fit`'s ``identity``): the mode, the
    settings, the model config, and the data (your files' `train.files_fingerprint`, or the book's
    data set by its description).

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    return {"mode": config.get_mode(), "data": train.files_fingerprint(data) if data is not None else description,
            "settings": dataclasses.asdict(settings), "config": dataclasses.asdict(model_config)}


def _finite(value):
    """``value`` with every NaN or infinite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _finish(name: str, out_dir: Path, model, model_config, settings, metrics: dict, run, command: str,
            data: str, **extra) -> dict:
    """Write ``out_dir/NAME.safetensors`` with its sidecar: the command, the mode, the settings whole,
    the data, the metrics, the device and the wall time of the whole run (earlier sessions of a
    resumed run included: ``run``, the `train.History` that `train.fit` returned)."""
    wall_time_s = round(run.wall_time_s(), 1)
    meta = _finite({"command": command, "mode": config.get_mode(), "settings": dataclasses.asdict(settings),
                    "data": data, "metrics": metrics, "device": str(config.get_device()),
                    "torch_threads": torch.get_num_threads(), "wall_time_s": wall_time_s,
                    "resumed_from_step": run.resumed_from, **extra})
    save_run_weights(out_dir / f"{name}.safetensors", name, model, model_config, meta)
    return {"weights": str(out_dir / f"{name}.safetensors"), **meta["metrics"], "mode": config.get_mode(),
            "wall_time_s": wall_time_s}


def save_run_weights(path, name: str, model, model_config, meta: dict) -> None:
    """`weights.save_weights` from the first process only (under torchrun the others hold the same
    weights), recording the number of processes: the global batch was that many times larger."""
    if not train.is_main_process():
        return
    n_processes = train.world()[1]
    if n_processes > 1:
        meta = {**meta, "processes": n_processes}
    weights.save_weights(path, name, model, model_config, meta)
