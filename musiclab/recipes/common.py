"""What every recipe shares: early stopping on a held-out score, writing weights with a sidecar, and
reading the user's own files for ``--data`` (`user_melodies`, `user_classes`, `user_audio`)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from .. import config, datasets, train, weights
from ..errors import BadInputError


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
    save_run_weights(out_dir / f"{name}.safetensors", name, model, model_config, meta)
    return {"weights": str(out_dir / f"{name}.safetensors"), **metrics, "wall_time_s": wall_time_s}


def save_run_weights(path, name: str, model, model_config, meta: dict) -> None:
    """`weights.save_weights` from the first process only (under torchrun the others hold the same
    weights), recording the number of processes: the global batch was that many times larger."""
    if not train.is_main_process():
        return
    n_processes = train.world()[1]
    if n_processes > 1:
        meta = {**meta, "processes": n_processes}
    weights.save_weights(path, name, model, model_config, meta)


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
