"""Count-based Markov chains (the "traditional" statistical melody model) on the folk melodies, as
chapter 2 defines its baselines: held-out NLL in nats per token on the valid split of the current
mode, for the uniform guess, the unigram and order-1 and order-2 Markov chains (add-0.1 smoothing,
the first tokens of a tune preceded by RESTs, as `datasets.next_token_windows` does).

Usage: MUSICLAB_MODE=full python benchmarks/bench_markov.py
"""
import math
import time

import numpy as np

from musiclab import config, datasets, symbolic


def markov_nll(train_x, train_y, valid_x, valid_y, order: int, alpha: float = 0.1) -> float:
    """NLL of a count-based Markov chain of ``order`` over the last ``order`` tokens of each context."""
    V = symbolic.VOCAB_SIZE
    key = lambda x: np.ravel_multi_index(x[:, x.shape[1] - order:].T, (V,) * order) if order else np.zeros(len(x), int)
    counts = {}
    for k, y in zip(key(train_x), train_y):
        counts.setdefault(k, np.zeros(V))[y] += 1
    nll = 0.0
    for k, y in zip(key(valid_x), valid_y):
        row = counts.get(k, np.zeros(V)) + alpha
        nll -= math.log(row[y] / row.sum())
    return nll / len(valid_y)


if __name__ == "__main__":
    start = time.perf_counter()
    train_x, train_y = (t.numpy() for t in datasets.next_token_windows(datasets.load_folk("train"), 16))
    valid_x, valid_y = (t.numpy() for t in datasets.next_token_windows(datasets.load_folk("valid"), 16))
    print(f"mode {config.get_mode()}: {len(train_y):,} training tokens, {len(valid_y):,} valid tokens")
    print(f"uniform   {math.log(symbolic.VOCAB_SIZE):.3f} nats/token")
    for order, name in ((0, "unigram"), (1, "order 1 (bigram)"), (2, "order 2 (trigram)"), (3, "order 3")):
        print(f"{name:18s} {markov_nll(train_x, train_y, valid_x, valid_y, order):.3f} nats/token")
    print(f"{time.perf_counter() - start:.0f} s")
