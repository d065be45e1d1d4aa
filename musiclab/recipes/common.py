"""What every recipe shares: the settings every training has and their presets per mode, what a
checkpoint must match to be resumed, writing weights with a sidecar, and reading the user's own
files for ``--data`` (`user_melodies`, `user_classes`, `user_audio`)."""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import torch

from .. import config, datasets, train
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
    shipped = CHECKPOINTS / f"{name}.json"
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
    train.save_weights(out_dir / f"{name}.safetensors", model, model_config, meta)
    return {"weights": str(out_dir / f"{name}.safetensors"), **meta["metrics"], "mode": config.get_mode(),
            "wall_time_s": wall_time_s}


CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


# The user's own data (--data PATH) ---------------------------------------------------------------

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def _report_skipped(skipped: list[tuple[str, str]]) -> None:
    if skipped and train.is_main_process():
        print(f"skipped {len(skipped)} unusable file(s):", file=sys.stderr)
        for name, reason in skipped:
            print(f"  {name}: {reason}", file=sys.stderr)


def user_melodies(data) -> tuple[dict[str, list], str, list]:
    """The melody files in folder ``data`` (MIDI, ABC, MusicXML) for a symbolic recipe.

    Returns ``(tunes by split, description for the sidecar, skipped files)``. Splits come from
    `datasets.split_ranked` by file; unusable files are printed and skipped; fewer than two usable
    files (one must validate) raise ``BadInputError``.
    """
    tunes, skipped = datasets.load_melody_folder(data)
    _report_skipped(skipped)
    if len(tunes) < 2:
        raise BadInputError(f"{data}: {len(tunes)} usable melody file(s) ({len(skipped)} skipped); training "
                            "needs at least 2 (one is held out to validate)")
    splits = {split: [t for t in tunes if t.split == split] for split in datasets.SPLITS}
    counts = ", ".join(f"{len(v)} {k}" for k, v in splits.items())
    return splits, f"your melodies in {data}: {len(tunes)} files ({counts}, split by file), {len(skipped)} skipped", skipped


def user_classes(data, min_per_class: int = 2) -> tuple[dict[str, list], list[str], str, list]:
    """Labelled melodies for a classifier or a style transfer: ``data/<class>/*.mid|*.abc|*.xml...``.

    Each immediate subfolder of ``data`` is one class, named after it; its files are read by
    `datasets.load_melody_folder` and split by file per class (`datasets.split_ranked`: every
    class with two files has one to validate, with ten one to test). A tune's class is its
    ``region``, so the region task and `cyclegan.region_phrases` read it unchanged. Files directly
    in ``data``, unusable files and classes with fewer than ``min_per_class`` usable files are
    printed and skipped; fewer than two classes left raise ``BadInputError``.

    Returns ``(tunes by split, class names sorted, description for the sidecar, skipped files)``.
    """
    root = Path(data)
    if not root.is_dir():
        raise BadInputError(f"{root}: not a folder (expected one subfolder of melody files per class)")
    by_class, skipped = {}, []
    for entry in sorted(e for e in root.iterdir() if not e.name.startswith(".")):
        if not entry.is_dir():
            skipped.append((entry.name, "not in a class subfolder (put it in PATH/<class>/)"))
            continue
        tunes, bad = datasets.load_melody_folder(entry)
        skipped += [(f"{entry.name}/{name}", reason) for name, reason in bad]
        if len(tunes) < min_per_class:
            reason = f"class with {len(tunes)} usable file(s); a class needs at least {min_per_class} (one validates)"
            skipped.append((f"{entry.name}/", reason))
            continue
        for tune in tunes:
            tune.region = entry.name
        by_class[entry.name] = tunes
    _report_skipped(skipped)
    if len(by_class) < 2:
        raise BadInputError(f"{root}: {len(by_class)} usable class folder(s) {sorted(by_class)} "
                            f"({len(skipped)} file(s) or folder(s) skipped); training needs at least 2: one "
                            f"subfolder per class, each with at least {min_per_class} usable melody files")
    tunes = [t for group in by_class.values() for t in group]
    splits = {split: [t for t in tunes if t.split == split] for split in datasets.SPLITS}
    counts = ", ".join(f"{len(v)} {k}" for k, v in splits.items())
    per_class = ", ".join(f"{name} {len(group)}" for name, group in by_class.items())
    description = (f"your labelled melodies in {data}: {len(by_class)} classes from its subfolders ({per_class} "
                   f"files; {counts}, split by file within each class), {len(skipped)} skipped")
    return splits, sorted(by_class), description, skipped


def user_audio(data, sr: int, segment_s: float) -> tuple[dict[str, np.ndarray], str, list]:
    """The recordings in ``data`` (an audio file or a folder: WAV, FLAC, OGG, MP3) for an audio recipe.

    Each file is checked and peak-normalised by `recording.load_recording` (any rate, mono or stereo;
    silent, clipped, too short or unreadable files are printed and skipped), resampled to ``sr`` and
    cut into ``segment_s`` segments (quiet ones dropped, `recording.slice_recording`). Segments are
    split by `datasets.split_ranked` of ``file#index``, so one recording is enough; segments of one
    recording can land in different splits. Returns ``(segments by split [shape=(N, n)], description,
    skipped files)``; nothing usable, or fewer than two segments, raises ``BadInputError``.
    """
    from .. import recording

    path = Path(data)
    if not path.exists():
        raise BadInputError(f"{path}: no such file or folder")
    files = sorted(f for f in path.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES) if path.is_dir() else [path]
    n_samples, ids, segments, skipped = round(segment_s * sr), [], [], []
    for file in files:
        try:
            y, _ = recording.load_recording(file, sr)
            parts = recording.slice_recording(y, sr, n_samples, n_samples)
        except BadInputError as error:
            skipped.append((file.name, str(error).replace(f"{file}: ", "")))
            continue
        ids += [f"{file.name}#{i}" for i in range(len(parts))]
        segments.append(parts)
    _report_skipped(skipped)
    if len(ids) < 2:
        raise BadInputError(f"{path}: no usable recording ({len(files)} audio file(s), {len(skipped)} skipped)"
                            if not ids else f"{path}: one {segment_s} s segment is too little; bring more audio")
    segments = np.concatenate(segments)
    splits = np.array(datasets.split_ranked(ids))
    by_split = {split: segments[splits == split] for split in datasets.SPLITS}
    counts = ", ".join(f"{len(v)} {k}" for k, v in by_split.items())
    return (by_split, f"your recordings in {data}: {len(files) - len(skipped)} files, {segment_s} s segments at "
            f"{sr} Hz ({counts}, split by segment), {len(skipped)} skipped", skipped)
