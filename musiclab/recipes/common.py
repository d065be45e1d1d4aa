"""What every recipe shares: early stopping on a held-out score, writing weights with a sidecar. (Your
own files for ``--data`` are read by `datasets.user`.)"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from .. import config, train, weights


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
