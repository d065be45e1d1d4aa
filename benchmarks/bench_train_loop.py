"""Overhead of `musiclab.train.fit` against a plain PyTorch loop on the same model and data.

Both loops train the chapter-2 neural n-gram for the same number of steps on the same batches
(real event-grid windows when the data cache exists, random tokens otherwise), alternating runs to
cancel drift, and report the median time per step and the ratio fit / plain.

    python benchmarks/bench_train_loop.py [--steps 400] [--repeats 5] [--threads 1] 2>/dev/null
"""
import argparse
import statistics
import time

import torch

from musiclab import config, losses, train
from musiclab.models.ngram import NextTokenConfig, NextTokenMLP


def make_batches(n_batches: int, batch_size: int, model_config: NextTokenConfig):
    generator = torch.Generator().manual_seed(0)
    contexts = torch.randint(0, model_config.vocab_size, (n_batches, batch_size, model_config.context_len),
                             generator=generator)
    targets = torch.randint(0, model_config.vocab_size, (n_batches, batch_size), generator=generator)
    return list(zip(contexts, targets))


def fresh(model_config):
    torch.manual_seed(0)
    model = NextTokenMLP(model_config)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def plain_loop(model_config, batches, n_steps, grad_clip=1.0):
    model, optimizer = fresh(model_config)
    model.train()
    start = time.perf_counter()
    step = 0
    while step < n_steps:
        for context, target in batches:
            loss = losses.categorical_nll(model(context), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            step += 1
            if step == n_steps:
                break
    return time.perf_counter() - start


def musiclab_loop(model_config, batches, n_steps):
    model, optimizer = fresh(model_config)

    def step_fn(batch, update):
        loss = losses.categorical_nll(model(batch[0]), batch[1])
        update(loss)
        return {"loss": loss}

    start = time.perf_counter()
    train.fit(model, optimizer, step_fn, batches, n_steps, progress=True, log_every=10)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model_config = NextTokenConfig()
    batches = make_batches(50, args.batch_size, model_config)
    plain, ours = [], []
    for _ in range(args.repeats):
        plain.append(plain_loop(model_config, batches, args.steps))
        ours.append(musiclab_loop(model_config, batches, args.steps))
    p, o = statistics.median(plain), statistics.median(ours)
    print(f"device {config.get_device()}, torch threads {torch.get_num_threads()}, {args.steps} steps x {args.repeats}")
    print(f"plain PyTorch loop : {1000 * p / args.steps:.3f} ms/step")
    print(f"musiclab.train.fit : {1000 * o / args.steps:.3f} ms/step")
    print(f"overhead           : {100 * (o / p - 1):+.1f} %")


if __name__ == "__main__":
    main()
