"""Chapters 11-12 figures: the shipped classifiers on the test split, single- vs multi-task, surprise.

    MUSICLAB_MODE=full .venv/bin/python benchmarks/bench_evaluation.py [--compare-steps 2000] [--threads 1]

- region / tune type / meter / mode accuracy of the shipped multi-task network (whole tunes and
  crops of 32, 64, 128 steps), German/Chinese/Irish 3-way, per region;
- with ``--compare-steps N``: trains a region-only network for N steps (the shipped network's
  budget is in its sidecar) and prints its test figures beside the shipped one's;
- the RNN evaluator's accuracy after reading the first t steps;
- surprise: how often a note moved by a tritone in a held-out tune is among the 5 most surprising
  notes, and the time of `note_surprise` and of `predict_proba` on a 32-bar tune (CPU).
"""
from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np
import torch

from musiclab import datasets, recipes, surprise, weights
from musiclab.models import mtnn
from musiclab.recipes import evaluation
from timing import median_ms  # benchmarks/timing.py


def print_report(name: str, model, tunes) -> None:
    for n_steps in evaluation.CROP_STEPS:
        report = evaluation.score_classifier(model, tunes, n_steps)
        print(f"{name}, {n_steps or 'whole'} steps: " + "; ".join(
            f"{task} {r['accuracy']:.3f} (balanced {r['balanced_accuracy']:.3f})" for task, r in report.items())
            + f"; region 3-way {report['region']['three_way_accuracy']:.3f}")
    per_region = evaluation.score_classifier(model, tunes)["region"]["per_class"]
    print(f"{name}, per region (whole tunes): {per_region}")


def corrupted_note_detection(tunes, n_tunes: int = 200, top: int = 5, seed: int = 0) -> float:
    """Fraction of tunes in which one note moved by a tritone is among the ``top`` most surprising."""
    rng = np.random.default_rng(seed)
    found = []
    for tune in tunes[:n_tunes]:
        onsets = np.flatnonzero(tune.grid >= 2)[1:]  # not the first note: nothing before it to judge by
        step = int(rng.choice(onsets))
        grid = tune.grid.copy()
        grid[step] += 6 if grid[step] + 6 < 63 else -6
        result = surprise.note_surprise(grid, tune.region, top=top)
        found.append(any(n["step"] == step for n in result["notes"]))
    return float(np.mean(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compare-steps", type=int, default=0, help="train a region-only network this long")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    test = datasets.load_folk("test", progress=False)
    model = mtnn.load_pretrained()
    card = json.loads((weights.CHECKPOINTS / "mtnn.json").read_text())
    print(f"shipped mtnn: {card['command']} ({card['mode']}, {card['metrics']['steps']} steps, "
          f"{card['wall_time_s']:.0f} s); test tunes: {len(test)}")
    print_report("multi-task", model, test)
    if args.compare_steps:
        result = recipes.evaluation.train_mtnn(out_dir=tempfile.mkdtemp(), steps=args.compare_steps, tasks=("region",),
                                               name="mtnn-region", progress=False)
        single = mtnn.load_pretrained("mtnn", result["weights"])
        print_report(f"region only ({args.compare_steps} steps, {result['wall_time_s']:.0f} s)", single, test)

    evaluator = mtnn.load_pretrained("rnn-evaluator")
    for task in mtnn.TASKS:
        print(f"rnn-evaluator {task}, accuracy after t steps (accuracy, n): "
              f"{evaluation.accuracy_vs_steps_read(evaluator, test, task)}")

    print(f"tritone-moved note among the 5 most surprising: {corrupted_note_detection(test):.3f} (200 tunes)")
    grid = np.concatenate([t.grid for t in test if t.meter == "4/4"])[:512]  # 32 bars of 4/4
    print(f"note_surprise, 32 bars (512 steps): median {median_ms(lambda: surprise.note_surprise(grid, 'Irish'), 11):.1f} ms")
    print(f"predict_proba, 32 bars: median {median_ms(lambda: model.predict_proba([grid]), 11):.1f} ms")
    print(f"rnn-evaluator predict_steps, 32 bars: median {median_ms(lambda: evaluator.predict_steps(grid), 11):.1f} ms")


if __name__ == "__main__":
    main()
