"""The melody Transformer's costs: generating 16 bars with and without the key/value cache, and the
relative attention logits computed naively (an explicit (L, L, d) tensor) and by skewing, against L.

    .venv/bin/python benchmarks/bench_transformer.py [--weights PATH] [--threads 1] [--repeats 7]

Generation uses the full-mode model size (or your trained ``--weights``): 256 tokens, the 16th-note
grid's 16 bars of 4/4. Times are wall milliseconds (median) and CPU milliseconds of this process,
which a shared machine inflates less. Memory is the peak of the bytes the call allocates, read from
torch's profiler; time is the median wall time.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from musiclab import recipes
from musiclab.models import rnn, transformer
from timing import repeat_timed  # benchmarks/timing.py


def full_mode_model(position: str = "relative") -> transformer.MelodyTransformer:
    """A model of the full-mode size with the folk data's labels (untrained: timing does not depend on
    the weights)."""
    settings = recipes.transformer.MELODY_TRANSFORMER_SETTINGS["full"]
    config = transformer.MelodyTransformerConfig(
        regions=[rnn.UNKNOWN, "Irish"], tune_types=[rnn.UNKNOWN, "reel"], d_model=settings.d_model,
        n_heads=settings.n_heads, n_layers=settings.n_layers, d_ff=settings.d_ff, position=position,
        max_distance=settings.max_distance)
    return transformer.MelodyTransformer(config).eval()


def peak_allocated_bytes(action) -> int:
    """Peak of the bytes held by tensors that ``action()`` allocates (CPU, torch's profiler)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        action()
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    held = np.cumsum([e.self_cpu_memory_usage for e in events])
    return int(held.max(initial=0))


def bench_generation(model, repeats: int) -> None:
    for use_cache in (True, False):
        wall, cpu = repeat_timed(lambda i: model.generate(256, region="Irish", tune_type="reel", use_cache=use_cache,
                                                          generator=torch.Generator().manual_seed(i)),
                                 repeats if use_cache else max(repeats // 3, 1))
        print(f"16 bars (256 tokens), {'with' if use_cache else 'without'} cache: median {np.median(wall):.0f} ms "
              f"wall, {np.median(cpu):.0f} ms CPU (min {wall.min():.0f} ms wall)")


def bench_relative_logits(lengths, n_heads: int, head_dim: int, repeats: int) -> None:
    print(f"relative logits, batch 1, {n_heads} heads of size {head_dim}: L, naive (ms, MiB), skewed (ms, MiB)")
    for L in lengths:
        q = torch.randn(1, n_heads, L, head_dim)
        embeddings = torch.randn(n_heads, L, head_dim)
        row = [f"L={L:5d}"]
        for method in (transformer.relative_logits_naive, transformer.relative_logits_skewed):
            wall, _ = repeat_timed(lambda i: method(q, embeddings, L), repeats)
            mib = peak_allocated_bytes(lambda: method(q, embeddings, L)) / 2 ** 20
            row.append(f"{method.__name__.rsplit('_', 1)[-1]} {np.median(wall):7.1f} ms {mib:8.1f} MiB")
        print("  ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", help="a trained transformer-melody (default: untrained, full-mode size)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 512, 1024])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    model = transformer.load_pretrained(path=args.weights)[0] if args.weights else full_mode_model()
    config = model.config
    print(f"model: {config.position} position, {config.n_layers} layers, d_model {config.d_model}, "
          f"{sum(p.numel() for p in model.parameters())} parameters")
    bench_generation(model, args.repeats)
    bench_relative_logits(args.lengths, config.n_heads, config.d_model // config.n_heads, args.repeats)


if __name__ == "__main__":
    main()
