"""The one training loop of the book and its checkpoints.

Every model in the book trains through `fit`. A model family only writes a *step function*
``step_fn(batch, update) -> dict``: it computes its losses, calls ``update(loss, "name")`` once per
optimizer it wants to step (a GAN steps the discriminator, then the generator), and returns the
numbers to log; ``update.step`` is the number of steps already taken, for schedules such as KL
annealing. `fit` does everything else: device placement, mixed precision on CUDA, gradient
clipping, learning-rate schedules, progress bar, history for learning curves, periodic evaluation
with early stopping, atomic checkpoints, and resuming after an interruption exactly where the run
stopped.

Resuming is exact because nothing in a run depends on how many times it was started:

- schedules are pure functions of the step (`fit`'s ``lr_schedule``, ``update.step`` in a step function);
- before each step `fit` seeds torch, NumPy and Python's ``random`` from ``(seed, step)``, so the
  shuffle of each pass over the data, random crops and dropout masks are the same whether the run
  was interrupted or not; a resumed run replays the current pass's batches up to its step
  (loading them, not training on them) and continues with the next one;
- the checkpoint holds the step, the start of the current pass, the weights, the optimizers, the
  gradient scaler, the history, the best-so-far weights and score, and the wall time so far.

Started by ``torchrun --nproc_per_node=N``, `fit` trains with DistributedDataParallel (see
`init_distributed`): every process holds the whole model and walks the same batches, each step
takes N of them and gives process r the r-th, and the gradients are averaged across processes
before each optimizer step, so one step sees N batches (the global batch is N times a recipe's
batch size). Only the first process writes checkpoints and weights and shows progress.

Chapter: notebooks/02_learning_to_generate.ipynb
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import math
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import config as _config
from . import fileio
from .errors import BadInputError, CheckpointError, TrainingDivergedError, TrainingInterrupted

log = logging.getLogger(__name__)
RESTART_HINT = "remove the file or pass --restart to start over"  # restart=True in Python


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


def _mix(*values: int) -> int:
    """SplitMix64 over ``values``: neighbouring inputs give unrelated 64-bit seeds."""
    mask, x = 2**64 - 1, 0
    for value in values:
        x = (x + value + 0x9E3779B97F4A7C15) & mask
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        x ^= x >> 31
    return x


def seed_step(seed: int, step: int, *more: int) -> None:
    """Seed torch, NumPy and Python's ``random`` from ``(seed, step, *more)``: every random draw of a
    training step (shuffles, crops, dropout, noise) becomes a pure function of the step.

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    mixed = _mix(seed, step, *more)
    # the generators themselves: torch.manual_seed also visits every other backend, 40x slower
    torch.default_generator.manual_seed(mixed)
    device = _config.get_device()
    if device.type == "cuda":
        torch.cuda.manual_seed_all(mixed)
    elif device.type == "mps":
        torch.mps.manual_seed(mixed)
    np.random.seed(mixed % 2**32)
    random.seed(mixed)


class StepBatches:
    """The batches of each step, drawn from ``batches`` (e.g. a DataLoader) pass after pass.

    ``take(step)`` seeds the random generators from ``(seed, step)`` (`seed_step`) and returns the
    ``n_per_step`` batches of that step; a pass that runs out starts a new one (a new shuffle),
    reseeded, and a pass that ends inside a step's group drops that partial group, so that every
    step's batches come from one pass. What a step sees is thereby fixed by the step and the step
    at which its pass began (``pass_start``): `replay` rebuilds the iterator of a resumed run.

    Chapter: notebooks/02_learning_to_generate.ipynb
    """

    def __init__(self, batches: Iterable, seed: int = 0, n_per_step: int = 1):
        self.batches, self.seed, self.n_per_step = batches, seed, n_per_step
        self.iterator, self.pass_start = None, 0

    def _new_pass(self, step: int) -> None:
        seed_step(self.seed, step)
        self.iterator, self.pass_start = iter(self.batches), step

    def take(self, step: int) -> list:
        seed_step(self.seed, step)
        if self.iterator is None:
            self._new_pass(step)
        group, fresh = [], self.pass_start == step
        while len(group) < self.n_per_step:
            try:
                group.append(next(self.iterator))
            except StopIteration:
                if fresh:
                    raise BadInputError("the training data yielded no batches (is the data set empty, or smaller "
                                        "than one batch?)") from None
                self._new_pass(step)
                group, fresh = [], True
        return group

    def replay(self, pass_start: int, step: int) -> None:
        """Walk the batches of steps ``pass_start .. step - 1`` again, so that ``take(step)`` continues
        the pass a resumed run was in (the batches are loaded, not trained on)."""
        self.iterator = None  # take(pass_start) starts the pass as it did the first time
        for earlier in range(pass_start, step):
            self.take(earlier)


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


class _OwnForward(nn.Module):
    """What DistributedDataParallel wraps: runs ``module``'s own (class) forward. The module's instance
    ``forward`` is pointed at the DDP wrapper, and this detour keeps that from calling itself."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return type(self.module).forward(self.module, *args, **kwargs)


@contextlib.contextmanager
def _distributed(modules: dict[str, nn.Module], optimizers: dict):
    """Put every module that an optimizer trains under `torch.nn.parallel.DistributedDataParallel`
    while the block runs.

    The step functions call the modules themselves, so each module's ``forward`` is routed through
    its DDP wrapper (restored afterwards; a module without a ``forward`` of its own has its children
    wrapped instead): the gradients of whatever goes through ``forward`` are
    averaged across processes during backward, the module objects and their state-dict names stay
    as they are, and checkpoints are written from the modules, not the wrappers. DDP copies the first
    process's weights to all when it wraps, and its buffers (batch-norm statistics) before every
    forward pass.
    """
    trained = {id(p) for optimizer in optimizers.values() for group in optimizer.param_groups for p in group["params"]}
    device = _config.get_device()
    device_ids = [torch.cuda.current_device()] if device.type == "cuda" else None
    wrapped = []

    def wrap(module: nn.Module) -> None:
        if not any(id(p) in trained for p in module.parameters()):
            return
        if type(module).forward is nn.Module.forward:  # a container that is never called (CycleGAN's two
            for child in module.children():            # generators): its children are what the steps call
                wrap(child)
            return
        ddp = nn.parallel.DistributedDataParallel(_OwnForward(module), device_ids=device_ids)
        module.forward = ddp.__call__
        wrapped.append(module)

    try:
        for module in modules.values():
            wrap(module)
        yield
    finally:
        for module in wrapped:
            del module.forward


def _mean_over_processes(values: dict, device: torch.device) -> dict:
    """Average logged numbers over the processes, so that the history is the global batch's."""
    if not values:
        return values
    stacked = torch.stack([torch.as_tensor(v, dtype=torch.float32, device=device) for v in values.values()])
    torch.distributed.all_reduce(stacked)
    return dict(zip(values, stacked / world()[1]))


def _any_process(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` is set in any process (so that all processes stop at the same step)."""
    value = torch.tensor(float(flag), device=device)
    torch.distributed.all_reduce(value)
    return bool(value.item())


# The updater: one optimizer step with clipping and mixed precision --------------------------------


class Updater:
    """``update(loss, name)``: backward, clip the gradient norm, step optimizer ``name``.

    ``step`` is the number of training steps already taken (`fit` sets it before each step), so a
    step function computes schedules from it. On CUDA the forward pass runs under autocast
    (bfloat16 where supported, else float16 with a gradient scaler, which keeps small float16
    gradients from underflowing to zero).
    """

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer], grad_clip: float | None,
                 device: torch.device):
        self.optimizers, self.grad_clip = optimizers, grad_clip
        self.amp_dtype = None
        if device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.device = device
        self.step = 0

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


def _apply_lr_schedule(optimizers: dict, lr_schedule, step: int) -> None:
    """Set each optimizer's learning rate to its initial one times ``lr_schedule(step)``."""
    for name, optimizer in optimizers.items():
        schedule = lr_schedule.get(name) if isinstance(lr_schedule, Mapping) else lr_schedule
        if schedule is not None:
            factor = schedule(step)
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor


# Schedules: pure functions of the step --------------------------------------------------------------


def linear_decay(step: int, n_steps: int, floor: float = 0.0) -> float:
    """Learning-rate factor falling linearly from 1 at step 0 to 0 at ``n_steps``, held at ``floor``.

    Chapter: notebooks/06_vae.ipynb
    """
    return max(floor, 1.0 - step / n_steps)


def constant_then_linear_decay(step: int, n_steps: int) -> float:
    """Learning-rate factor 1 for the first half of ``n_steps``, then linearly down to 0 (Zhu et al. 2017).

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """
    return min(1.0, 2.0 * (1.0 - step / n_steps))


# Stopping on a signal ------------------------------------------------------------------------------


class _StopOnSignal:
    """While active, SIGTERM and a first SIGINT (Ctrl-C) only ask the loop to stop after the current
    step, so that the checkpoint holds a whole step; a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.signal_number, self.previous = None, {}

    def _handle(self, signal_number, frame):
        if signal_number == signal.SIGINT and self.signal_number is not None:
            raise KeyboardInterrupt
        self.signal_number = signal_number

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for number in (signal.SIGINT, signal.SIGTERM):
                self.previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc):
        for number, handler in self.previous.items():
            signal.signal(number, handler)


# The loop ------------------------------------------------------------------------------------------


class History(list):
    """What `fit` returns: one row per logged step (a list of dicts), plus the run as a whole.

    ``resumed_from`` is the step the run resumed at (None when it started fresh), ``best_step``
    and ``best_score`` those of the kept best weights (``keep_best``), and `wall_time_s` the
    seconds of the whole run so far, earlier sessions included.

    Chapter: notebooks/02_learning_to_generate.ipynb
    """

    def __init__(self, rows=(), earlier_s: float = 0.0, started: float | None = None):
        super().__init__(rows)
        self.earlier_s, self.started = earlier_s, time.perf_counter() if started is None else started
        self.resumed_from, self.best_step, self.best_score = None, None, None

    def wall_time_s(self) -> float:
        """Seconds the run has taken up to now: earlier sessions plus this one."""
        return self.earlier_s + time.perf_counter() - self.started


def fit(modules: nn.Module | dict[str, nn.Module],
        optimizers: torch.optim.Optimizer | dict[str, torch.optim.Optimizer],
        step_fn: Callable,
        batches: Iterable,
        n_steps: int,
        *,
        evaluate: Callable[[], dict] | None = None,
        eval_every: int = 0,
        keep_best: str | None = None,
        log_every: int = 10,
        grad_clip: float | None = 1.0,
        lr_schedule: Callable[[int], float] | Mapping[str, Callable[[int], float]] | None = None,
        seed: int = 0,
        checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int = 0,
        restart: bool = False,
        identity: dict | None = None,
        config=None,
        started: float | None = None,
        progress: bool = True,
        desc: str = "training") -> History:
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
        ``update.step`` is the number of steps taken before this one.
    batches : iterable
        e.g. a DataLoader; passed over again and again (`StepBatches`).
    evaluate : callable ``() -> dict``, optional
        Called under ``torch.no_grad()`` every ``eval_every`` steps and at the end.
    keep_best : str, optional
        A key of ``evaluate``'s dict, lower is better: the weights of the best evaluation are kept
        (and checkpointed) and loaded into ``modules`` at the end (early stopping).
    lr_schedule : callable ``step -> factor``, or dict of optimizer name -> callable, optional
        Before each step every learning rate is set to its initial value times ``factor``.
    seed : int
        Every step's randomness is seeded from ``(seed, step)`` (`seed_step`).
    checkpoint_path : path, optional
        If the file exists, training resumes from it exactly (see the module docstring); it is
        written atomically every ``checkpoint_every`` steps, at the end, and on Ctrl-C or SIGTERM.
        ``restart=True`` deletes it first.
    identity : dict, optional
        What the run is trained on and with (data fingerprint, settings, config): stored in the
        checkpoint; resuming from a checkpoint with a different identity raises `CheckpointError`.
    config : dataclass or dict, optional
        Stored in the checkpoint, so that the model can be rebuilt from it.
    started : float, optional
        ``time.perf_counter()`` when the run began in this process (data preparation included),
        for the run's wall time; default: now.

    Returns
    -------
    history : History
        One row per logged step: ``{"step": int, "<name>": float, ..., "time_s": float}`` (``time_s``:
        seconds since the run began, earlier sessions included); evaluation rows carry their own keys
        (e.g. ``"valid_loss"``).

    Raises
    ------
    TrainingDivergedError
        The loss or the weights became NaN or infinite (the last good checkpoint is left as it was).
    TrainingInterrupted
        Ctrl-C or SIGTERM, after the checkpoint was written.
    CheckpointError
        The checkpoint is damaged, of another model, written for another identity, or further
        than ``n_steps``.
    """
    if n_steps < 1:
        raise BadInputError(f"n_steps={n_steps}: train at least one step")
    modules = modules if isinstance(modules, dict) else {"model": modules}
    optimizers = optimizers if isinstance(optimizers, dict) else {"main": optimizers}
    device = _config.get_device()
    for module in modules.values():
        module.to(device).train()
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
    rank, world_size = world()
    update = Updater(optimizers, grad_clip, device)
    history = History(started=started)
    best = {"score": math.inf, "step": None, "modules": None}
    data = StepBatches(batches, seed, world_size)
    step, saved_step = 0, None
    sums: dict[str, torch.Tensor | float] = {}  # logged numbers summed since the last history row
    n_summed, timed_from = 0, None

    path = Path(checkpoint_path) if checkpoint_path is not None else None
    if path is not None and restart and rank == 0:
        path.unlink(missing_ok=True)
    if path is not None and path.exists() and not restart:
        state = _read_checkpoint(path)
        _check_identity(path, state, identity)
        if state["step"] > n_steps:
            raise CheckpointError(f"{path} is at step {state['step']}, beyond the {n_steps} steps asked for; "
                                  f"nothing to train: ask for more steps, or {RESTART_HINT}")
        _restore(path, state, modules, optimizers, update)
        step = saved_step = history.resumed_from = state["step"]
        history[:] = state["history"]
        history.earlier_s = state["wall_time_s"]
        if state["best"] is not None:
            best = state["best"]
        sums, n_summed = state["unlogged"]["sums"], state["unlogged"]["n"]
        if step < n_steps:
            log.info("%s: resuming %s at step %d of %d", desc, path, step, n_steps)
            data.replay(state["pass_start"], step)
        else:
            log.info("%s: %s already trained all %d steps; evaluating and writing the weights again (--restart "
                     "starts over)", desc, path, n_steps)
    progress = progress and rank == 0
    distributed = world_size > 1 and init_distributed()

    def run_evaluation():
        nonlocal best
        for module in modules.values():
            module.eval()
        with torch.no_grad(), update.autocast():
            row = {"step": step, **{k: float(v) for k, v in evaluate().items()}}
        for module in modules.values():
            module.train()
        history.append(row)
        if keep_best is not None and row[keep_best] < best["score"]:
            best = {"score": row[keep_best], "step": step,
                    "modules": {name: {k: v.detach().clone() for k, v in module.state_dict().items()}
                                for name, module in modules.items()}}

    def save():
        nonlocal saved_step
        _check_weights_finite(modules, step, path, saved_step)
        if path is not None and rank == 0:
            save_checkpoint(path, modules, optimizers, step, history, config, scaler=update.scaler,
                            pass_start=data.pass_start, seed=seed, best=best, identity=identity,
                            wall_time_s=history.wall_time_s(),
                            unlogged={"sums": {k: float(v) for k, v in sums.items()}, "n": n_summed})
        saved_step = step

    def diverged(values: dict) -> None:
        broken = {k: v for k, v in values.items() if not math.isfinite(v)}
        if broken:
            raise TrainingDivergedError(f"training diverged: {broken} by step {step}; lower the learning rate or "
                                        f"check the data for NaN; {_last_good(path, saved_step)}")

    bar = tqdm(total=n_steps, initial=step, desc=desc, disable=not progress, leave=False)
    with _StopOnSignal() as stop, (_distributed(modules, optimizers) if distributed else contextlib.nullcontext()):
        try:
            while step < n_steps:
                stop_now = stop.signal_number is not None
                if distributed and step % log_every == 0:
                    stop_now = _any_process(stop_now, device)
                if stop_now:
                    raise KeyboardInterrupt
                _apply_lr_schedule(optimizers, lr_schedule, step)
                batch = data.take(step)[rank]
                if distributed:  # the same batches everywhere, but each process its own dropout masks
                    seed_step(seed, step, rank)
                update.step = step
                with update.autocast():
                    logged = step_fn(move_to_device(batch, device), update)
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
                    row["time_s"] = round(history.wall_time_s(), 3)
                    diverged(row)
                    history.append(row)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k not in ("step", "time_s")})
                    sums, n_summed = {}, 0
                timed_from = _report_speed(timed_from, step, n_steps, desc)
                if evaluate is not None and eval_every and step % eval_every == 0 and step < n_steps:
                    run_evaluation()
                if checkpoint_every and step % checkpoint_every == 0:
                    diverged({k: float(v) for k, v in sums.items()})
                    save()
                bar.update(1)
        except KeyboardInterrupt:
            save()
            raise TrainingInterrupted(step, path if rank == 0 else None,
                                      stop.signal_number or signal.SIGINT) from None
        finally:
            bar.close()  # before any message, so that it does not land inside the bar
    if evaluate is not None:
        run_evaluation()
    for module in modules.values():
        module.eval()
    save()
    if best["modules"] is not None:
        for name, module in modules.items():
            module.load_state_dict(best["modules"][name])
    history.best_step, history.best_score = best["step"], (best["score"] if best["step"] is not None else None)
    return history


def _report_speed(timed_from, step: int, n_steps: int, desc: str):
    """Log the speed and the time left once, a few steps in (the first steps include warm-up).

    Returns the ``(step, time)`` the timing counts from, or None once reported."""
    if timed_from is None:
        return (step, time.perf_counter()) if step < n_steps else False
    if timed_from is False:
        return False
    first_step, first_time = timed_from
    elapsed = time.perf_counter() - first_time
    if step - first_step >= 5 and elapsed >= 2.0 or step == n_steps:
        if step > first_step:
            seconds_per_step = elapsed / (step - first_step)
            left = f", about {format_duration(seconds_per_step * (n_steps - step))} for the {n_steps - step} steps left"
            log.info("%s: %.3g s per step%s", desc, seconds_per_step, left if step < n_steps else "",
                     extra={"seconds_per_step": seconds_per_step})
        return False
    return timed_from


def format_duration(seconds: float) -> str:
    """``42 s``, ``7 min``, ``2.5 h``: a duration as a reader would say it."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _last_good(path, saved_step) -> str:
    if path is None:
        return "no checkpoint was written (no checkpoint path)"
    if saved_step is None:
        return "no checkpoint of this run was written yet"
    return f"the last good checkpoint is {path} (step {saved_step})"


def _check_weights_finite(modules: dict[str, nn.Module], step: int, path, saved_step) -> None:
    """Refuse to save NaN or infinite weights (the loss can stay finite while a weight is not)."""
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise TrainingDivergedError(f"training diverged: {name}.{key} holds NaN or inf at step {step}; "
                                            f"lower the learning rate or check the data for NaN; "
                                            f"{_last_good(path, saved_step)}")


# Checkpoints (resumable training state) ------------------------------------------------------------


def save_checkpoint(path, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                    step: int, history: list[dict], config=None, *, scaler=None, pass_start: int = 0,
                    seed: int = 0, best: dict | None = None, identity: dict | None = None,
                    wall_time_s: float = 0.0, unlogged: dict | None = None) -> None:
    """Write the training state atomically: a crash mid-write never leaves a broken file.

    ``unlogged`` holds the numbers summed since the last history row (``{"sums": ..., "n": ...}``), so
    that a run resumed between two rows logs the same averages as an uninterrupted one.
    """
    state = {
        "config": _as_dict(config),
        "identity": identity,
        "step": step,
        "pass_start": pass_start,
        "seed": seed,
        "wall_time_s": wall_time_s,
        "history": list(history),
        "modules": {name: module.state_dict() for name, module in modules.items()},
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "scaler": scaler.state_dict() if scaler is not None else {},
        "best": best if best is not None and best.get("modules") is not None else None,
        "unlogged": unlogged or {"sums": {}, "n": 0},
    }
    fileio.write_atomic(path, lambda tmp: torch.save(state, tmp))


def _read_checkpoint(path: Path) -> dict:
    """Load a checkpoint's state (tensors and plain data only) and check its shape; `CheckpointError`
    naming the file otherwise."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise CheckpointError(f"{path}: not a readable musiclab checkpoint ({error.__class__.__name__}); "
                              f"{RESTART_HINT}") from None
    problem = None
    if not isinstance(state, dict):
        problem = f"holds a {type(state).__name__}, not a training state"
    elif not isinstance(state.get("modules"), dict) or not state["modules"]:
        problem = "holds no module weights"
    elif not isinstance(state.get("step"), int) or state["step"] < 0:
        problem = f"has no valid step ({state.get('step')!r})"
    elif not isinstance(state.get("history"), list) or not all(isinstance(r, dict) for r in state["history"]):
        problem = "has no valid history"
    if problem:
        raise CheckpointError(f"{path}: damaged checkpoint, it {problem}; {RESTART_HINT}")
    state.setdefault("optimizers", {})
    for key, default in (("pass_start", 0), ("wall_time_s", 0.0), ("scaler", {}), ("best", None), ("identity", None),
                         ("unlogged", {"sums": {}, "n": 0})):
        state.setdefault(key, default)
    return state


def _check_identity(path: Path, state: dict, identity: dict | None) -> None:
    """`CheckpointError` when the checkpoint was written for other data, settings or config."""
    stored = state["identity"]
    if identity is None or stored == identity:
        return
    if stored is None:
        raise CheckpointError(f"{path} does not record the data and settings it was trained with (an older "
                              "checkpoint); pass --restart to start over, or --out for another folder")
    differences = []
    for key in identity:
        old, new = stored.get(key), identity[key]
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and {"path", "files", "sha256"} <= old.keys() & new.keys():
            differences.append(f"{key}: {old['path']} -> {new['path']}" if old["path"] != new["path"] else
                               f"{key}: the files in {new['path']} changed since ({old['files']} -> {new['files']} "
                               "files; added, removed or modified)")
        elif isinstance(old, dict) and isinstance(new, dict):
            fields = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new), key=str)
                      if old.get(k) != new.get(k)]
            differences.append(f"{key}: {', '.join(fields[:4])}{', ...' if len(fields) > 4 else ''}")
        else:
            differences.append(f"{key}: {old!r} -> {new!r}")
    raise CheckpointError(f"{path} was written by another run ({'; '.join(differences)}); pass --restart to "
                          "start over, or --out for another folder")


def _restore(path: Path, state: dict, modules: dict[str, nn.Module], optimizers: dict, update) -> None:
    missing = set(modules) - set(state["modules"])
    if missing:
        raise CheckpointError(f"{path}: checkpoint has no weights for {sorted(missing)} (another model's?); "
                              f"{RESTART_HINT}")
    try:
        for name, module in modules.items():
            weights = state["modules"][name]
            if any(torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()
                   for v in weights.values()):
                raise CheckpointError(f"{path}: checkpoint holds NaN or inf weights in {name!r} (training "
                                      f"diverged); {RESTART_HINT}")
            module.load_state_dict(weights)
        for name, optimizer in optimizers.items():
            if name in state["optimizers"]:
                optimizer.load_state_dict(state["optimizers"][name])
        if update is not None and state["scaler"]:
            update.scaler.load_state_dict(state["scaler"])
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
        raise CheckpointError(f"{path}: checkpoint does not fit this model ({first_line[:160]}); it was written "
                              f"for another model or mode; {RESTART_HINT}") from None


def load_checkpoint(path, modules: dict[str, nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer] | None = None) -> tuple[int, list[dict]]:
    """Restore weights (and optimizer state) in place; return ``(step, history)``.

    Loaded with ``weights_only=True``: a checkpoint can hold tensors and plain data, never code.
    """
    path = Path(path)
    state = _read_checkpoint(path)
    _restore(path, state, modules, optimizers or {}, None)
    return state["step"], state["history"]


def read_checkpoint_config(path) -> dict:
    """Return the config dict stored in a checkpoint, to rebuild its model."""
    return _read_checkpoint(Path(path))["config"]


def files_fingerprint(path) -> dict:
    """What a run on the user's files at ``path`` was trained on: the resolved path and a hash of
    every file's path, size and modification time under it (a file, or a folder walked whole), so
    that a checkpoint is never resumed on other or changed files.

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    root = Path(path).expanduser().resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return {"path": str(root), "files": len(files), "sha256": digest.hexdigest()[:16]}


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

