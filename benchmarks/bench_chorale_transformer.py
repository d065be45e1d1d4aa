"""Chapter 5 chorale figures from the shipped weights: the chorale Transformer against poly-made.

    MUSICLAB_MODE=full .venv/bin/python benchmarks/bench_chorale_transformer.py [--threads N] [--repeats 5]

Both models are scored on the same test chorales of the current mode (full: the 34 test chorales of
the JSB-like split, stored in C) in nats per frame, then in Bach's keys and shifted by -3..+3
semitones (`bench_poly_keys.score_in_keys`); then their size, their training time (from the sidecars)
and the time to sample 32 frames after a test chorale's first chord.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from bench_poly_keys import score_in_keys  # benchmarks/bench_poly_keys.py
from musiclab import datasets, recipes, weights
from timing import repeat_timed  # benchmarks/timing.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")

    test = datasets.load_chorales("test", progress=False)
    scores = recipes.transformer.compare_chorale_models("test")
    for name, score in scores.items():
        model, card = recipes.rnn.load_pianoroll_model(name)
        n_parameters = sum(p.numel() for p in model.parameters())
        size_mb = (weights.CHECKPOINTS / f"{name}.safetensors").stat().st_size / 2 ** 20
        print(f"{name}: test NLL {score['nll_per_frame']:.3f} nats/frame over {score['n_frames']} frames "
              f"({score['n_rolls']} chorales); sidecar test {card['metrics'].get('test_nll')}, valid "
              f"{card['metrics'].get('valid_nll')}, best step {card['metrics'].get('best_step')} of "
              f"{card['metrics'].get('steps')}; {n_parameters:,} parameters, {size_mb:.1f} MB; trained in "
              f"{card['wall_time_s'] / 60:.1f} min wall ({card['mode']} mode, {card.get('torch_threads')} thread(s))")
        in_keys = score_in_keys(model, test)
        spread = max(abs(v - in_keys["in C"]) for k, v in in_keys.items() if k != "in C")
        print(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in in_keys.items())
              + f" nats/frame; largest change from C {spread:.2f}")
        wall, _ = repeat_timed(lambda i: model.generate(32, prime=test[0].roll[:1],
                                                        generator=torch.Generator().manual_seed(i)), args.repeats)
        print(f"{name}: sampling 32 frames: median {np.median(wall):.0f} ms, slowest {wall.max():.0f} ms")


if __name__ == "__main__":
    main()
