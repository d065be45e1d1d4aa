"""Command line: ``python -m musiclab data | train NAME | score NAME FILE | info``.

- ``data``: parse the corpora once and cache them (see `musiclab.datasets.build_all`).
- ``train NAME [--data PATH] [--restart]``: train one of the book's models at the size of the current
  mode (on your own files with ``--data``) and write its weights with a sidecar recording the command,
  mode, settings, config, data, metrics, device and wall time. It says first which mode runs and what
  full mode takes; Ctrl-C or SIGTERM saves a checkpoint that the same command resumes exactly
  (exit 130 / 143); a checkpoint of other data or settings, or a damaged one, is an error naming it
  (``--restart`` discards it). Under ``torchrun --nproc_per_node=N -m musiclab train NAME``
  it trains with DistributedDataParallel (`musiclab.train.fit`).
- ``score NAME FILE``: the negative log-likelihood of the piano rolls in FILE under a polyphonic
  model of chapter 4, in nats per frame.
- ``info``: the mode, device, cache folder and versions in use.
- ``student [--out DIR] [--language zh_CN]``: the notebooks without their exercise solutions, in
  English or with their text cells translated from the book's catalogues (see `musiclab.book`).
- ``lab-edition [--out DIR]``: the notebooks with their glued values shown in JupyterLab (``make lab``).
- ``setup-cell NOTEBOOK...``: write the stand-alone set-up cell into chapter notebooks.

Chapter: notebooks/01_music_as_data.ipynb
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import logging
import os
import platform
import sys
from pathlib import Path

from . import config, symbolic
from .errors import BadInputError, MusiclabError, TrainingInterrupted


def _recipes() -> dict:
    from . import recipes

    return recipes.RECIPES


def command_data(args) -> int:
    from . import datasets

    if args.mode:
        os.environ["MUSICLAB_MODE"] = args.mode
    report = datasets.build_all(progress=not args.quiet)
    for name, value in report.items():
        print(f"{name}: {value}")
    return 0


def default_out(data) -> Path:
    """Where ``train --data PATH`` writes by default: ``runs/<PATH's name>-<hash of the resolved path>``,
    so that two data sets with the same name (``/a/songs``, ``/b/songs``) never share a checkpoint."""
    resolved = str(Path(data).expanduser().resolve())
    return Path("runs") / f"{Path(data).stem}-{hashlib.sha256(resolved.encode()).hexdigest()[:8]}"


class _TrainReport(logging.Handler):
    """Prints what training says it does (the recipe's plan, fit's speed, resuming) to stderr, one line
    each; when no shipped weights say how long full mode takes, the speed of the first steps gives a
    lower bound (the full model is larger)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.full_steps, self.full_time_known = None, True

    def emit(self, record):
        from tqdm.auto import tqdm

        message = record.getMessage()
        if hasattr(record, "full_steps"):
            self.full_steps, self.full_time_known = record.full_steps, record.full_time_known
        if hasattr(record, "seconds_per_step") and not self.full_time_known:
            from .train import format_duration

            message += (f"; --mode full ({self.full_steps} steps of a larger model) takes more than "
                        f"{format_duration(record.seconds_per_step * self.full_steps)}")
        tqdm.write(message, file=sys.stderr)  # above the progress bar, not through it


def command_train(args) -> int:
    if args.mode:
        os.environ["MUSICLAB_MODE"] = args.mode
    recipes = _recipes()
    if args.name not in recipes:
        print(f"unknown model {args.name!r}; choose one of: {', '.join(sorted(recipes))}", file=sys.stderr)
        return 2
    from . import train
    from .recipes import accepts_data

    recipe = recipes[args.name].train
    if args.data is not None and not accepts_data(recipe):
        print(f"--data: {args.name!r} does not train on your own data; these do: "
              f"{', '.join(sorted(n for n, r in recipes.items() if accepts_data(r.train)))}", file=sys.stderr)
        return 2
    if args.data is not None and not args.data.strip():
        print("--data: the path is empty; give the folder (or file) of your data", file=sys.stderr)
        return 2
    if args.melody and (args.data is None or "melody" not in inspect.signature(recipe).parameters):
        print(f"--melody: only for the models that read your melody files with --data; {args.name!r} "
              f"{'does not' if args.data is not None else 'got no --data'}", file=sys.stderr)
        return 2
    extra = {"data": args.data} if args.data is not None else {}
    if args.melody:
        extra["melody"] = args.melody
    out = Path(args.out) if args.out else default_out(args.data) if args.data else Path("runs")
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out}: is a file; give a folder for the checkpoint and weights")
    report = _TrainReport()
    logger = logging.getLogger("musiclab")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        # under torchrun: join the group (and pick this process's GPU) before any data is built
        train.init_distributed()
        if train.is_main_process():
            logger.addHandler(report)
        result = recipe(out_dir=out, steps=args.steps, command=args.command_line, restart=args.restart, **extra)
    except TrainingInterrupted as stop:
        if train.is_main_process():
            print(stop, file=sys.stderr)
        return 128 + stop.signal_number
    finally:
        logger.removeHandler(report)
        logger.setLevel(level)
        train.close_distributed()
    if train.is_main_process():
        for key, value in result.items():
            if key not in ("history", "weights", "mode"):
                print(f"{key}: {value}")
        print(f"weights: {result['weights']} ({result['mode']} mode)")
    return 0


def command_score(args) -> int:
    from .recipes import rnn

    try:
        result = rnn.score_pianoroll_file(args.name, args.file, args.weights)
    except BadInputError as error:  # a damaged file, or weights that are not this model's
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.file}: {result['nll_per_frame']:.4f} nats per frame (summed over 88 keys, first frame "
          f"excluded), {result['n_frames']} frames in {result['n_rolls']} piano roll(s), model {args.name}")
    return 0


def command_info(args) -> int:
    import torch

    from . import __version__

    print(f"musiclab {__version__}, Python {platform.python_version()}, torch {torch.__version__}")
    print(f"mode: {config.get_mode()}   device: {config.get_device()}   cache: {config.cache_dir()}")
    return 0


def _chapter_notebooks(folder) -> list[Path]:
    """The notebooks in ``folder``, sorted; an empty list (and a message) when there are none."""
    notebooks = sorted(Path(folder).glob("*.ipynb"))
    if not notebooks:
        print(f"{folder}: no notebooks (.ipynb) there", file=sys.stderr)
    return notebooks


def command_student(args) -> int:
    from . import book

    notebooks = _chapter_notebooks(args.notebooks)
    if not notebooks:
        return 2
    try:
        written = book.write_student_edition(notebooks, args.out, args.language, args.locale)
    except BadInputError as error:  # a notebook or catalogue that cannot be read, or none for a notebook
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def command_lab_edition(args) -> int:
    from . import book

    notebooks = _chapter_notebooks(args.notebooks)
    if not notebooks:
        return 2
    written = book.write_lab_edition(notebooks, args.out)
    print(f"{args.out}: {len(written)} notebooks written, {len(notebooks) - len(written)} kept (newer than their source)")
    return 0


def command_setup_cell(args) -> int:
    from . import book

    for path in args.notebooks:
        print(f"{path}: {'updated' if book.set_setup_cell(path) else 'already up to date'}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give a number of steps of at least 1")
    return value


class _Parser(argparse.ArgumentParser):
    """A command's parser; with ``models`` (None: all) its ``--help`` ends with those models, one line
    each on what they are and what ``--data`` takes, read from `musiclab.recipes.RECIPES` only then."""

    def __init__(self, *args, models=(), show_data: bool = False, **kwargs):
        super().__init__(*args, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
        self.models, self.show_data = models, show_data

    def format_help(self) -> str:
        if self.models != ():
            recipes = _recipes()
            names = sorted(recipes) if self.models is None else self.models
            width = max(map(len, names))
            self.epilog = "models:\n" + "\n".join(
                f"  {name:<{width}}  {recipes[name].about}"
                + (f"\n  {'':<{width}}  --data: {recipes[name].data}" if self.show_data else "") for name in names)
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m musiclab", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = sub.add_parser("data", help="parse and cache the corpora")
    data.add_argument("--mode", choices=config.MODES, help="override MUSICLAB_MODE")
    data.add_argument("--quiet", action="store_true", help="no progress bars")
    data.set_defaults(run=command_data)

    train = sub.add_parser("train", help="train one of the book's models", models=None, show_data=True,
                           description="Train one of the book's models at the size of the mode (quick without a "
                                       "GPU, full with one). An interrupted run (Ctrl-C, SIGTERM) saves a "
                                       "checkpoint; the same command resumes it exactly.")
    train.add_argument("name", help="model name (listed below)")
    train.add_argument("--mode", choices=config.MODES, help="override MUSICLAB_MODE")
    train.add_argument("--steps", type=_positive_int, help="number of optimizer steps (default: the mode's)")
    train.add_argument("--out", help="folder for checkpoints and weights (default: runs, or with --data "
                                     "runs/<PATH's name>-<hash of PATH>)")
    train.add_argument("--restart", action="store_true", help="discard the folder's checkpoint and start over")
    train.add_argument("--data", help="train on your own files: a folder of MIDI / ABC / MusicXML files for the "
                                      "symbolic models (for mtnn, rnn-evaluator, cyclegan-symbolic: one subfolder "
                                      "per class, PATH/<class>/*.mid; the CycleGAN takes exactly two), WAV / FLAC / "
                                      "OGG / MP3 recordings (a file or a folder) for the audio models; unusable files "
                                      "are listed and skipped")
    train.add_argument("--melody", choices=symbolic.MELODY_RULES, help="with --data, a melody file with chords "
                                   "or double stops is skipped (single, the default), or keeps the highest note of "
                                   "each chord (top)")
    train.set_defaults(run=command_train)

    score = sub.add_parser("score", help="score piano rolls (MIDI or .npz) with a polyphonic model",
                           models=["poly-rnn", "poly-made", "transformer-chorale"])
    score.add_argument("name", choices=["poly-rnn", "poly-made", "transformer-chorale"], help="the model")
    score.add_argument("file", help="a MIDI file, or an .npz of (T, 88) 0/1 arrays")
    score.add_argument("--weights", help="weights to use (default: the shipped checkpoint)")
    score.set_defaults(run=command_score)

    student = sub.add_parser("student", help="write the notebooks without their exercise solutions")
    student.add_argument("--notebooks", default="notebooks", help="folder of chapter notebooks (default: notebooks)")
    student.add_argument("--out", default="_build/student", help="output folder (default: _build/student)")
    student.add_argument("--language", help="translate the text cells into this language (e.g. zh_CN)")
    student.add_argument("--locale", default="locale", help="folder of the message catalogues (default: locale)")
    student.set_defaults(run=command_student)

    lab = sub.add_parser("lab-edition", help="write the notebooks for JupyterLab, glued values shown in the text")
    lab.add_argument("--notebooks", default="notebooks", help="folder of chapter notebooks (default: notebooks)")
    lab.add_argument("--out", default="_build/lab", help="output folder (default: _build/lab)")
    lab.set_defaults(run=command_lab_edition)

    setup_cell = sub.add_parser("setup-cell", help="write the stand-alone set-up cell into notebooks")
    setup_cell.add_argument("notebooks", nargs="+", help="chapter notebooks (.ipynb)")
    setup_cell.set_defaults(run=command_setup_cell)

    info = sub.add_parser("info", help="show mode, device, cache folder and versions")
    info.set_defaults(run=command_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.command_line = "python -m musiclab " + " ".join(argv)  # recorded in weight sidecars
    try:
        return args.run(args)
    except MusiclabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
