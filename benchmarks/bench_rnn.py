"""Chapter 4 figures from the shipped weights: polyphonic test NLL, melody generation speed, audio RNN cost.

    MUSICLAB_MODE=full .venv/bin/python benchmarks/bench_rnn.py [--threads N] [--repeats 11]

Polyphonic NLL is scored on the test split of the current mode (full: the 34 test chorales of the
JSB-like split) in nats per frame; the other figures are timings on the CPU.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from musiclab import datasets, metrics, recipes
from musiclab.models import audio_rnn, rnn
from timing import repeat_timed  # benchmarks/timing.py


def median_and_worst_ms(action, repeats: int) -> tuple[float, float]:
    """Median and slowest wall milliseconds of ``action(i)`` over ``repeats`` calls."""
    wall, _ = repeat_timed(action, repeats)
    return float(np.median(wall)), float(wall.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")

    test = [c.roll for c in datasets.load_chorales("test", progress=False)]
    for name in ("poly-rnn", "poly-made"):
        model, card = rnn.load_pretrained(name)
        score = metrics.score_rolls(model, test)
        print(f"{name}: test NLL {score['nll_per_frame']:.3f} nats/frame over {score['n_frames']} frames "
              f"({score['n_rolls']} chorales); sidecar test_nll {card['metrics'].get('test_nll')}")
        ms, worst = median_and_worst_ms(lambda i: model.generate(32, prime=test[0][:1],
                                                       generator=torch.Generator().manual_seed(i)), args.repeats)
        print(f"{name}: sampling 32 frames: median {ms:.0f} ms, slowest {worst:.0f} ms")

    melody, _ = rnn.load_pretrained("melody-rnn")
    ms, worst = median_and_worst_ms(lambda i: melody.generate(256, region="Irish", tune_type="reel",
                                                    generator=torch.Generator().manual_seed(i)), args.repeats)
    print(f"melody-rnn: 16 bars (256 steps): median {ms:.0f} ms, slowest {worst:.0f} ms (bar: 300 ms)")

    model, _ = audio_rnn.load_pretrained("audio-rnn")
    prime = recipes.rnn.audio_notes(recipes.rnn.AUDIO_HELD_OUT_PITCHES)[0, :400]
    ms, _ = median_and_worst_ms(lambda i: model.generate(recipes.rnn.AUDIO_SR // 4, prime,
                                               generator=torch.Generator().manual_seed(i)), max(args.repeats // 4, 1))
    print(f"audio-rnn: 0.25 s of audio at {recipes.rnn.AUDIO_SR} Hz in {ms:.0f} ms: "
          f"{ms / 250:.1f} s of computing per second of audio")


if __name__ == "__main__":
    main()
