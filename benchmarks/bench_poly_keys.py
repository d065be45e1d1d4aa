"""Polyphonic models in every key: the shipped weights on chorales in C, in Bach's keys and transposed,
and `train poly-rnn | poly-made --data` on a chorale split in the original keys.

    MUSICLAB_MODE=full .venv/bin/python benchmarks/bench_poly_keys.py [--threads N]
    MUSICLAB_MODE=full .venv/bin/python benchmarks/bench_poly_keys.py --split-only --out DIR
    MUSICLAB_MODE=full .venv/bin/python -m musiclab train poly-made --data DIR --out RUNS

The first line scores the shipped models on the test chorales of the current mode: as stored (in C),
moved back to the key Bach wrote each in, and transposed by -3..+3 semitones. The second writes
``train.npz``, ``valid.npz`` and ``test.npz`` of every chorale in its original key, split 60/20/20
by a hash of its id (the proportions of the 229/76/77 JSB Chorales split; not the same pieces), for
the third, which trains on that folder as on a user's data and reports the test NLL.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from musiclab import datasets, fileio, metrics, symbolic
from musiclab.models import rnn

SHIFTS = (-3, -2, -1, 1, 2, 3)


def write_original_key_split(out: Path) -> dict[str, int]:
    """Write every chorale of the current mode's cache, in its original key, to ``out/{split}.npz``
    (60/20/20 by `datasets.split_ranked`); returns the number of chorales per split."""
    chorales = datasets.load_chorales(progress=False)
    splits = datasets.split_ranked([c.id for c in chorales], valid=0.2, test=0.2)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "valid", "test"):
        rolls = [c.original_roll for c, s in zip(chorales, splits) if s == split]
        fileio.write_atomic(out / f"{split}.npz", lambda tmp: np.savez_compressed(tmp, *rolls))
        counts[split] = len(rolls)
    return counts


def score_in_keys(model, chorales) -> dict[str, float]:
    """Test NLL (nats/frame) in C, in the original keys and at each shift of `SHIFTS` from C."""
    rolls = [c.roll for c in chorales]
    scores = {"in C": metrics.score_rolls(model, rolls)["nll_per_frame"],
              "original keys": metrics.score_rolls(model, [c.original_roll for c in chorales])["nll_per_frame"]}
    for shift in SHIFTS:
        scores[f"{shift:+d}"] = metrics.score_rolls(model, [symbolic.transpose_pianoroll(r, shift)
                                                            for r in rolls])["nll_per_frame"]
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--split-only", action="store_true", help="only write the original-key split to --out")
    parser.add_argument("--out", type=Path, default=Path("runs/chorales-original-keys"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.split_only:
        print(f"wrote {write_original_key_split(args.out)} chorales in their original keys to {args.out}")
        return
    test = datasets.load_chorales("test", progress=False)
    for name in ("poly-rnn", "poly-made"):
        model, _ = rnn.load_pretrained(name)
        scores = score_in_keys(model, test)
        spread = max(abs(v - scores["in C"]) for k, v in scores.items() if k != "in C")
        print(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items())
              + f" nats/frame; largest change from C {spread:.2f}")


if __name__ == "__main__":
    main()
