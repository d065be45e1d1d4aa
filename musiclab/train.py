"""The one training loop of the book and its checkpoints.

Every model in the book trains through `fit`. A model family only writes a *step function*
``step_fn(batch, update) -> dict``: it computes its losses, calls ``update(loss, "name")`` once per
optimizer it wants to step (a GAN steps the discriminator, then the generator), and returns the
numbers to log. `fit` does everything else: device placement, mixed precision on CUDA, gradient
clipping, progress bar, history for learning curves, periodic evaluation, atomic checkpoints and
resuming after an interruption.

Started by ``torchrun --nproc_per_node=N``, `fit` trains with DistributedDataParallel (see
`init_distributed`): every process holds the whole model, takes every N-th batch, and the gradients
are averaged across processes before each optimizer step, so one step sees N batches (the global
batch is N times a recipe's batch size). Only the first process writes checkpoints and weights and
shows progress.

Chapter: notebooks/02_learning_to_generate.ipynb
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from . import config as _config
from . import fileio
from .errors import BadInputError


# Batches and devices ------------------------------------------------------------------------------


def move_to_device(batch, device: torch.device):
    """Move a tensor, or the tensors inside a tuple / list / dict, to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: move_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(value, device) for value in batch)
    return batch


def cycle(batches: Iterable):
    """Yield batches forever, starting a new pass (a new shuffle) when one ends."""
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise BadInputError("the training data yielded no batches (is the data set empty?)")


def _as_dict(obj) -> dict:
    if obj is None:
        return {}
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    return dict(obj)


# Several processes (torchrun): DistributedDataParallel ---------------------------------------------


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: ``(0, 1)`` unless started by torchrun with N > 1."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True in the process that writes files and prints progress (rank 0; the only one normally)."""
    return world()[0] == 0


def init_distributed() -> bool:
    """Join the process group that ``torchrun`` describes in the environment (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``, ``LOCAL_RANK``), once: the gloo backend on CPU,
    nccl on CUDA (one GPU per process, ``cuda:LOCAL_RANK``). Returns whether training is distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not torch.distributed.is_initialized():
        device = _config.get_device()
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def close_distributed() -> None:
    """Leave the process group at the end of a torchrun command (nothing to do otherwise)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _replicate(modules: dict[str, nn.Module], optimizers: dict) -> None:
    """Put every module that an optimizer trains under DistributedDataParallel, in place.

    ``replicate`` wraps the module's own forward in DDP's hooks (it builds a
    `torch.nn.parallel.DistributedDataParallel` over the parameters), so the step functions, which
    call the model directly, need no change and the state dict keeps its names. At the first forward
    DDP copies the first process's weights to all; during backward it averages the gradients.
    Buffers (batch-norm statistics) start equal and then stay per process; the first process's are saved.
    """
    from torch.distributed._composable.replicate import DDP, replicate

    trained = {id(p) for optimizer in optimizers.values() for group in optimizer.param_groups for p in group["params"]}
    device = _config.get_device()
    for module in modules.values():
        if any(id(p) in trained for p in module.parameters()) and not isinstance(module, DDP):
            replicate(module, device_id=torch.device("cuda", torch.cuda.current_device()) if device.type == "cuda"
                      else torch.device("cpu"), forward_sync_buffers=False)


def _mean_over_processes(values: dict, device: torch.device) -> dict:
    """Average logged numbers over the processes, so that the history is the global batch's."""
    if not values:
        return values
    stacked = torch.stack([torch.as_tensor(v, dtype=torch.float32, device=device) for v in values.values()])
    torch.distributed.all_reduce(stacked)
    return dict(zip(values, stacked / world()[1]))


# The updater: one optimizer step with clipping and mixed precision --------------------------------


class Updater:
    """``update(loss, name)``: backward, clip the gradient norm, step optimizer ``name``.

    On CUDA the forward pass runs under autocast (bfloat16 where supported, else float16 with a
    gradient scaler, which keeps small float16 gradients from underflowing to zero).
    """

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer], grad_clip: float | None,
                 device: torch.device):
        self.optimizers, self.grad_clip = optimizers, grad_clip
        self.amp_dtype = None
        if device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.device = device

    def autocast(self):
        """Context for the forward pass: mixed precision on CUDA, a no-op elsewhere."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def __call__(self, loss: torch.Tensor, name: str | None = None) -> None:
        if name is None:
            if len(self.optimizers) != 1:
                raise BadInputError(f"update() needs an optimizer name, one of {list(self.optimizers)}")
            name = next(iter(self.optimizers))
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        # The backward pass runs outside autocast; it reuses the dtypes the forward pass chose.
        with torch.autocast(self.device.type, enabled=False):
            self.scaler.scale(loss).backward()
        if self.grad_clip:
            self.scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()


# The loop ------------------------------------------------------------------------------------------


def fit(modules: nn.Module | dict[str, nn.Module],
        optimizers: torch.optim.Optimizer | dict[str, torch.optim.Optimizer],
        step_fn: Callable,
        batches: Iterable,
        n_steps: int,
        *,
        evaluate: Callable[[], dict] | None = None,
        eval_every: int = 0,
        log_every: int = 10,
        grad_clip: float | None = 1.0,
        checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int = 0,
        config=None,
        progress: bool = True,
        desc: str = "training") -> list[dict]:
    """Train for ``n_steps`` optimizer steps and return the history.

    Parameters
    ----------
    modules : nn.Module or dict of name -> nn.Module
        Moved to `config.get_device()` and put in train mode (eval mode during ``evaluate``).
    optimizers : Optimizer or dict of name -> Optimizer
        A single optimizer is called ``"main"``.
    step_fn : callable ``(batch, update) -> dict``
        ``batch`` is already on the device. Call ``update(loss)`` (or ``update(loss, name)``)
        to take an optimizer step; return a dict of floats or scalar tensors to log.
    batches : iterable
        e.g. a DataLoader; passed over again and again.
    evaluate : callable ``() -> dict``, optional
        Called under ``torch.no_grad()`` every ``eval_every`` steps and at the end.
    checkpoint_path : path, optional
        If the file exists, training resumes from it (weights, optimizer state, step, history).
        It is written atomically every ``checkpoint_every`` steps, at the end, and on Ctrl-C.
    config : dataclass or dict, optional
        Stored in the checkpoint, so that the model can be rebuilt from it.

    Returns
    -------
    history : list of dict
        One row per logged step: ``{"step": int, "<name>": float, ..., "time_s": float}``;
        evaluation rows carry their own keys (e.g. ``"valid_loss"``).
    """
    modules = modules if isinstance(modules, dict) else {"model": modules}
    optimizers = optimizers if isinstance(optimizers, dict) else {"main": optimizers}
    device = _config.get_device()
    for module in modules.values():
        module.to(device).train()

    step, history = 0, []
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        step, history = load_checkpoint(checkpoint_path, modules, optimizers)
    distributed = init_distributed()
    if distributed:
        _replicate(modules, optimizers)
    rank, world_size = world()
    progress = progress and rank == 0
    update = Updater(optimizers, grad_clip, device)

    def run_evaluation():
        for module in modules.values():
            module.eval()
        with torch.no_grad(), update.autocast():
            row = {"step": step, **{k: float(v) for k, v in evaluate().items()}}
        for module in modules.values():
            module.train()
        history.append(row)
        return row

    def save():
        if checkpoint_path is not None and rank == 0:
            save_checkpoint(checkpoint_path, modules, optimizers, step, history, config)

    sums: dict[str, torch.Tensor | float] = {}
    n_summed, start = 0, time.perf_counter()
    bar = tqdm(total=n_steps, initial=step, desc=desc, disable=not progress, leave=False)
    data = cycle(batches)
    if distributed:  # every process walks the same batches (same seed) and takes its share
        data = itertools.islice(data, rank, None, world_size)
    try:
        while step < n_steps:
            batch = move_to_device(next(data), device)
            with update.autocast():
                logged = step_fn(batch, update)
            step += 1
            # Sums stay on the device as tensors: converting with .item() every step would force a
            # device synchronisation per step, which is most of a loop's overhead on a GPU.
            for key, value in logged.items():
                value = value.detach().float() if isinstance(value, torch.Tensor) else float(value)
                sums[key] = sums.get(key, 0.0) + value
            n_summed += 1
            if step % log_every == 0 or step == n_steps:
                if distributed:
                    sums = _mean_over_processes(sums, device)
                row = {"step": step, **{k: float(v) / n_summed for k, v in sums.items()}}
                row["time_s"] = time.perf_counter() - start
                _check_finite(row, step)
                history.append(row)
                bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k not in ("step", "time_s")})
                sums, n_summed = {}, 0
            if evaluate is not None and eval_every and step % eval_every == 0 and step < n_steps:
                run_evaluation()
            if checkpoint_every and step % checkpoint_every == 0:
                _check_finite({k: float(v) for k, v in sums.items()}, step)
                save()
            bar.update(1)
    except KeyboardInterrupt:
        save()
        bar.close()
        if rank == 0:
            print(f"Interrupted at step {step}; checkpoint saved, run again to resume.")
        raise
    bar.close()
    if evaluate is not None:
        run_evaluation()
    for module in modules.values():
        module.eval()
    save()
    return history


def _check_finite(values: dict, step: int) -> None:
    """Stop on NaN/inf. Checked when logging or saving, not every step (that would synchronise a GPU
    each step), and before a checkpoint is written, so the last good checkpoint is never overwritten."""
    broken = {k: v for k, v in values.items() if not math.isfinite(v)}
    if broken:
        raise FloatingPointError(f"{broken} by step {step}; lower the learning rate or check the data for NaN")


# Checkpoints (resumable training state) ------------------------------------------------------------


def save_checkpoint(path, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                    step: int, history: list[dict], config=None) -> None:
    """Write the training state atomically: a crash mid-write never leaves a broken file."""
    state = {
        "config": _as_dict(config),
        "step": step,
        "history": history,
        "modules": {name: module.state_dict() for name, module in modules.items()},
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
    }
    fileio.write_atomic(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path, modules: dict[str, nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer] | None = None) -> tuple[int, list[dict]]:
    """Restore weights (and optimizer state) in place; return ``(step, history)``.

    Loaded with ``weights_only=True``: a checkpoint can hold tensors and plain data, never code.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise BadInputError(f"{path}: not a readable musiclab checkpoint ({error.__class__.__name__})") from None
    missing = set(modules) - set(state["modules"])
    if missing:
        raise BadInputError(f"{path}: checkpoint has no weights for {sorted(missing)}")
    for name, module in modules.items():
        module.load_state_dict(state["modules"][name])
    for name, optimizer in (optimizers or {}).items():
        if name in state["optimizers"]:
            optimizer.load_state_dict(state["optimizers"][name])
    return state["step"], state["history"]


def read_checkpoint_config(path) -> dict:
    """Return the config dict stored in a checkpoint, to rebuild its model."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)["config"]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

