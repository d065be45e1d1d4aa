"""Command line: ``python -m musiclab data | train NAME | score NAME FILE | info``.

- ``data``: parse the corpora once and cache them (see `musiclab.datasets.build_all`).
- ``train NAME [--data PATH]``: train one of the book's models at the size of the current mode (on
  your own files with ``--data``) and write its weights with a sidecar recording the command, config,
  data, metrics, device and wall time. Under ``torchrun --nproc_per_node=N -m musiclab train NAME``
  it trains with DistributedDataParallel (`musiclab.train.fit`).
- ``score NAME FILE``: the negative log-likelihood of the piano rolls in FILE under a polyphonic
  model of chapter 5, in nats per frame.
- ``info``: the mode, device, cache folder and versions in use.
- ``student [--out DIR]``: the notebooks without their exercise solutions (see `musiclab.book`).
- ``setup-cell NOTEBOOK...``: write the stand-alone set-up cell into chapter notebooks.

Chapter: notebooks/01_music_as_data.ipynb
"""
from __future__ import annotations

import argparse
import inspect
import os
import platform
import sys
from pathlib import Path

from . import config, symbolic
from .errors import BadInputError, MusiclabError


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


def command_train(args) -> int:
    if args.mode:
        os.environ["MUSICLAB_MODE"] = args.mode
    recipes = _recipes()
    if args.name not in recipes:
        print(f"unknown model {args.name!r}; choose one of: {', '.join(sorted(recipes))}", file=sys.stderr)
        return 2
    from . import train
    from .recipes import accepts_data

    recipe = recipes[args.name]
    if args.data is not None and not accepts_data(recipe):
        print(f"--data: {args.name!r} does not train on your own data; these do: "
              f"{', '.join(sorted(n for n, r in recipes.items() if accepts_data(r)))}", file=sys.stderr)
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
    # your own data gets its own folder, so that a run never resumes from a checkpoint of other data
    out = args.out or (str(Path("runs") / Path(args.data).stem) if args.data else "runs")
    try:
        train.init_distributed()  # under torchrun: join the group (and pick this process's GPU) before any data is built
        result = recipe(out_dir=out, steps=args.steps, command=args.command_line, **extra)
    finally:
        train.close_distributed()
    if train.is_main_process():
        for key, value in result.items():
            if key != "history":
                print(f"{key}: {value}")
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


def command_student(args) -> int:
    from . import book

    notebooks = sorted(Path(args.notebooks).glob("*.ipynb"))
    if not notebooks:
        print(f"{args.notebooks}: no notebooks (.ipynb) there", file=sys.stderr)
        return 2
    for path in book.write_student_edition(notebooks, args.out):
        print(path)
    return 0


def command_setup_cell(args) -> int:
    from . import book

    for path in args.notebooks:
        print(f"{path}: {'updated' if book.set_setup_cell(path) else 'already up to date'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m musiclab", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="parse and cache the corpora")
    data.add_argument("--mode", choices=config.MODES, help="override MUSICLAB_MODE")
    data.add_argument("--quiet", action="store_true", help="no progress bars")
    data.set_defaults(run=command_data)

    train = sub.add_parser("train", help="train one of the book's models")
    train.add_argument("name", help="model name, e.g. next-token")
    train.add_argument("--mode", choices=config.MODES, help="override MUSICLAB_MODE")
    train.add_argument("--steps", type=int, help="number of optimizer steps (default: the mode's)")
    train.add_argument("--out", help="folder for checkpoints and weights (default: runs, or runs/NAME-OF-DATA "
                                     "with --data)")
    train.add_argument("--data", help="train on your own files: a folder of MIDI / ABC / MusicXML files for the "
                                      "symbolic models (for mtnn, rnn-evaluator, cyclegan-symbolic: one subfolder "
                                      "per class, PATH/<class>/*.mid; the CycleGAN takes exactly two), WAV / FLAC / "
                                      "OGG / MP3 recordings (a file or a folder) for the audio models; unusable files "
                                      "are listed and skipped")
    train.add_argument("--melody", choices=symbolic.MELODY_RULES, help="with --data, a melody file with chords "
                                   "or double stops is skipped (single, the default), or keeps the highest note of "
                                   "each chord (top)")
    train.set_defaults(run=command_train)

    score = sub.add_parser("score", help="score piano rolls (MIDI or .npz) with a polyphonic model")
    score.add_argument("name", choices=["poly-rnn", "poly-made"], help="the model")
    score.add_argument("file", help="a MIDI file, or an .npz of (T, 88) 0/1 arrays")
    score.add_argument("--weights", help="weights to use (default: the shipped checkpoint)")
    score.set_defaults(run=command_score)

    student = sub.add_parser("student", help="write the notebooks without their exercise solutions")
    student.add_argument("--notebooks", default="notebooks", help="folder of chapter notebooks (default: notebooks)")
    student.add_argument("--out", default="_build/student", help="output folder (default: _build/student)")
    student.set_defaults(run=command_student)

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
        return 1
