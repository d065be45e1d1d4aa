"""Chapter 15 watermark figures: detection after each attack, false positives, mark level.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_watermark.py [--clips 200] [--keys 10]

Each of ``--clips`` generated clips (8 s at 44.1 kHz, melody RNN + SoundFont) is marked with its own
key at the default strength and attacked; a detection counts when ``z > watermark.THRESHOLD``. False
positives: every unmarked clip tested with ``--keys`` keys, and every marked clip with ``--keys``
wrong keys. Intervals are exact binomial (Clopper-Pearson) 95 % intervals.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.stats
import torch

from musiclab import watermark

SR = 44100
ATTACKS = {
    "none": lambda y: y,
    "white noise at 10 dB SNR": lambda y: watermark.add_noise(y, snr_db=10),
    "OGG Vorbis round trip": lambda y: watermark.codec_round_trip(y, SR, "OGG"),
    "MP3 round trip": lambda y: watermark.codec_round_trip(y, SR, "MP3"),
    "resampling 44.1 -> 22.05 -> 44.1 kHz": lambda y: watermark.resample_round_trip(y, SR, 22050),
}


def interval(k: int, n: int) -> str:
    low = scipy.stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
    high = scipy.stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return f"{k}/{n} = {100 * k / n:.1f} % (95 % CI {100 * low:.1f}-{100 * high:.1f} %)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--mark-db", type=float, default=25.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    clips = watermark.generated_clips(args.clips, sr=SR, seed=0)
    print(f"{len(clips)} clips of {clips.shape[1] / SR:.1f} s rendered in {time.perf_counter() - start:.0f} s")
    scores = {name: [] for name in ATTACKS}
    null, snrs, embed_s, detect_s = [], [], [], []
    for i, y in enumerate(clips):
        key = 10_000 + i
        t0 = time.perf_counter()
        marked = watermark.embed(y, SR, key, mark_db=args.mark_db)
        embed_s.append(time.perf_counter() - t0)
        snrs.append(watermark.snr_db(y, marked))
        for name, attack in ATTACKS.items():
            t0 = time.perf_counter()
            scores[name].append(watermark.detect(attack(marked), SR, key))
            detect_s.append(time.perf_counter() - t0)
        for j in range(args.keys):
            null.append(watermark.detect(y, SR, 50_000 + 100 * i + j))  # unmarked clip
            null.append(watermark.detect(marked, SR, 90_000 + 100 * i + j))  # marked, wrong key
    print(f"mark level (signal-to-watermark ratio): median {np.median(snrs):.1f} dB, "
          f"range {min(snrs):.1f}-{max(snrs):.1f} dB (mark_db={args.mark_db})")
    print(f"threshold z > {watermark.THRESHOLD}")
    for name, z in scores.items():
        z = np.array(z)
        print(f"detected after {name}: {interval(int((z > watermark.THRESHOLD).sum()), len(z))}; "
              f"z median {np.median(z):.1f}, min {z.min():.1f}")
    null = np.array(null)
    print(f"false positives (unmarked clips and wrong keys): {interval(int((null > watermark.THRESHOLD).sum()), len(null))}; "
          f"null z mean {null.mean():.3f}, std {null.std():.3f}, max {null.max():.2f}")
    print(f"embed {1000 * np.median(embed_s):.0f} ms, detect (attack included) {1000 * np.median(detect_s):.0f} ms "
          f"per 8-s clip (median); total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
