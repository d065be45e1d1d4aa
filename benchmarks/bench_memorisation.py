"""Chapter 15 memorisation figures for the shipped generators, against real held-out music.

    MUSICLAB_MODE=full OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_memorisation.py [--tunes 200]

- melody-rnn: ``--tunes`` generated 256-step melodies (`recipes.rnn.melody_generation_report`) vs the
  test-split tunes: copy rate of n-note pitch runs against the train split (`metrics.copy_rate`).
- vae-melody: 1,000 prior samples (temperature 1) vs every untransposed 2-bar test slice, runs
  compared transposition-invariantly (the VAE trained on all transpositions of the train split).
- gan: nearest training note (same condition) of 600 generated and 600 held-out real notes.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from musiclab import config, datasets, memorisation, recipes
from musiclab.models import gan, rnn, vae


def show(name: str, curve: dict) -> None:
    for n, g, h in zip(curve["n"], curve["generated"], curve["held_out"]):
        print(f"{name} n={n:2d}: generated {100 * g:5.1f} %, held-out real {100 * h:5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tunes", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    train, test = datasets.load_folk("train", progress=False), datasets.load_folk("test", progress=False)
    train_grids = [t.grid for t in train]
    print(f"mode {config.get_mode()}: {len(train)} training tunes, {len(test)} test tunes")
    model, _ = rnn.load_pretrained("melody-rnn")
    generated = recipes.rnn.melody_generation_report(model, train, test, n_tunes=args.tunes)["generated"]
    show("melody-rnn", memorisation.copy_rate_curve(generated, train_grids, [t.grid for t in test]))
    melody_vae, _ = vae.load_pretrained("vae-melody")
    samples = melody_vae.decode(torch.randn(1000, melody_vae.config.z_dim, generator=torch.Generator().manual_seed(0)),
                                temperature=1.0).numpy()
    held_out = recipes.vae.melody_slices(test, transpose=None).numpy()
    print(f"vae-melody: 1000 prior samples, {len(held_out)} held-out 2-bar slices (transposition-invariant runs)")
    show("vae-melody", memorisation.copy_rate_curve(samples, train_grids, held_out, ns=range(4, 11),
                                                    transposition_invariant=True))
    generator, _ = gan.load_pretrained()
    distances = memorisation.gan_nearest_training_distances(generator)
    for name, d in distances.items():
        print(f"gan {name}: nearest training note (same condition), RMS log-mel nats: median {np.median(d):.3f}, "
              f"5th percentile {np.percentile(d, 5):.3f}, min {d.min():.3f} (n={len(d)})")
    print(f"gan: generated notes closer to a training note than the median held-out real note: "
          f"{100 * np.mean(distances['generated'] < np.median(distances['held_out'])):.1f} %")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
