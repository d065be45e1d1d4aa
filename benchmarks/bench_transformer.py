"""The melody Transformer measured: its costs (generating 16 bars with and without the key/value
cache; the relative attention logits computed naively and by skewing, against L), its learning
against the melody RNN on the same CPU budget, and its samples (copy rates, MGEval overlap).

    .venv/bin/python benchmarks/bench_transformer.py speed [--weights PATH] [--threads 1] [--repeats 7]
    OMP_NUM_THREADS=1 MUSICLAB_MODE=full .venv/bin/python benchmarks/bench_transformer.py budget --out DIR --run rnn --steps 1000
    OMP_NUM_THREADS=1 MUSICLAB_MODE=full .venv/bin/python benchmarks/bench_transformer.py budget --out DIR --run absolute --steps 600
    OMP_NUM_THREADS=1 MUSICLAB_MODE=full .venv/bin/python benchmarks/bench_transformer.py quality --budget DIR
    .venv/bin/python benchmarks/bench_transformer.py merge --budget DIR   (if the budget runs ended later)

``speed`` uses the full-mode model size (or your trained ``--weights``): 256 tokens, the 16th-note
grid's 16 bars of 4/4. Times are wall milliseconds (median) and CPU milliseconds of this process,
which a shared machine inflates less. Memory is the peak of the bytes the call allocates, read from
torch's profiler.

``budget`` retrains, one thread each, the melody RNN at its shipped settings (for longer, so that
its curve spans the Transformer's budget) and the Transformer with absolute instead of relative
position; each run's evaluations record the CPU seconds spent training so far
(`recipes.transformer.cpu_clocked`). Both are scored on the folk test split at the end.

``quality`` scores the shipped melody RNN and Transformer on the test split, generates melodies
from both and measures copy rates of 8- and 12-note runs against the training set (beside held-out
real tunes) and the MGEval overlap of 8-bar melodies (chapter 13's leaderboard row); with
``--budget``, it writes both results into the Transformer's sidecar, where the chapter reads them.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from musiclab import datasets, leaderboard, memorisation, metrics, recipes, train, weights
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


def clock_every_fit() -> None:
    """Make every `train.fit` evaluation also record ``train_cpu_s`` (`recipes.transformer.cpu_clocked`),
    so that a recipe without its own clock (the melody RNN's) logs CPU time too."""
    fit = train.fit

    def clocked_fit(*args, evaluate=None, **kwargs):
        already = getattr(evaluate, "__name__", "") == "clocked"  # the Transformer's recipe clocks itself
        return fit(*args, evaluate=evaluate if already else recipes.transformer.cpu_clocked(evaluate), **kwargs)

    train.fit = clocked_fit


def test_nll(model) -> float:
    """Held-out NLL (nats per token) on the folk test split, cut into the recipes' chunks."""
    settings = recipes.rnn.MELODY_RNN_SETTINGS["full"]
    data = recipes.rnn.melody_sequences(datasets.load_folk("test"), model.config, settings.length)
    return recipes.rnn.score_melody(model, data)["valid_nll"]


def curve_of(result) -> list[dict]:
    return [{k: round(row[k], 4) for k in ("step", "train_cpu_s", "valid_nll")} for row in result["history"]
            if "valid_nll" in row]


def budget(out_dir: Path, run: str, steps: int) -> None:
    clock_every_fit()
    if run == "rnn":
        result = recipes.rnn.train_melody(out_dir=out_dir, steps=steps, eval_every=100, progress=False)
        scores = {"curve": curve_of(result), "test_nll": test_nll(rnn.load_pretrained(path=result["weights"])[0]),
                  "settings": f"melody-rnn full preset, --steps {steps}, evaluated every 100 steps"}
    else:
        result = recipes.transformer.train_transformer_melody(out_dir=out_dir, steps=steps, position="absolute",
                                                              progress=False, name="transformer-melody-absolute")
        scores = {"curve": curve_of(result), "test_nll": result["test_nll"],
                  "settings": f"transformer-melody full preset, position absolute, --steps {steps}"}
    print(run, "test NLL", scores["test_nll"])
    (out_dir / f"budget-{run}.json").write_text(json.dumps(scores, indent=1))


def generated_melodies(model, conditions, n_steps: int, seed: int = 0) -> list[np.ndarray]:
    rng = torch.Generator().manual_seed(seed)
    return [model.generate(n_steps, region=region, tune_type=tune_type, generator=rng) for region, tune_type in conditions]


def quality(n_melodies: int, budget_path: str | None) -> None:
    train_tunes, test_tunes = datasets.load_folk("train"), datasets.load_folk("test")
    train_grids, test_grids = [t.grid for t in train_tunes], [t.grid for t in test_tunes]
    picks = np.random.default_rng(0).choice(len(test_tunes), n_melodies, replace=False)
    conditions = [(test_tunes[i].region, test_tunes[i].tune_type) for i in picks]
    models = {"melody RNN": rnn.load_pretrained("melody-rnn")[0],
              "Transformer": transformer.load_pretrained("transformer-melody")[0]}
    generated16 = {name: generated_melodies(model, conditions, 256) for name, model in models.items()}
    ref8 = leaderboard.excerpts(test_grids, 8, n_melodies, seed=0)
    real8 = [leaderboard.excerpts(train_grids, 8, n_melodies, seed=k) for k in range(1, 5)]
    index = metrics.ngram_index(train_grids, 8, transposition_invariant=True)
    generated8 = {name: [g[:128] for g in grids] for name, grids in generated16.items()}
    table = leaderboard.leaderboard(ref8, generated8, real8, index)
    report = {"n_melodies": n_melodies, "models": {}}
    held_out = [test_grids[i] for i in picks]
    for name, model in models.items():
        copies = memorisation.copy_rate_curve(generated16[name], train_grids, held_out, ns=(8, 12))
        report["models"][name] = {"test_nll": round(test_nll(model), 4), "mgeval_overlap_8_bars": round(table[name]["overlap"], 4),
                                  **{f"copied_{n}_note_runs": round(g, 4) for n, g in zip(copies["n"], copies["generated"])}}
        report["held_out_copied"] = {f"copied_{n}_note_runs": round(h, 4) for n, h in zip(copies["n"], copies["held_out"])}
    report["real_mgeval_overlap_8_bars"] = {"mean": round(table["real (ceiling)"]["overlap"], 4),
                                            "spread": round(table["real (ceiling)"]["spread"]["overlap"], 4)}
    print(json.dumps(report, indent=1))
    if budget_path:
        Path(budget_path, "quality.json").write_text(json.dumps(report, indent=1))
        merge_into_sidecar(budget_path)


def merge_into_sidecar(budget_path) -> None:
    """Write quality.json and the budget runs of folder ``budget_path`` into the shipped
    Transformer's sidecar, under ``comparison``, where the chapter reads them."""
    folder = Path(budget_path)
    runs = {"melody RNN": folder / "budget-rnn.json", "Transformer, absolute position": folder / "budget-absolute.json"}
    missing = [str(path) for path in runs.values() if not path.exists()]
    if missing:
        print(f"not merged yet, missing {missing}: run `merge --budget {folder}` when they are there")
        return
    path = Path(weights.__file__).parent / "checkpoints" / "transformer-melody.json"
    sidecar = json.loads(path.read_text())
    sidecar["comparison"] = {**json.loads((folder / "quality.json").read_text()),
                             "budget": {name: json.loads(run.read_text()) for name, run in runs.items()},
                             "command": "benchmarks/bench_transformer.py budget (--run rnn, --run absolute), "
                                        "then quality --budget"}
    path.write_text(json.dumps(sidecar, indent=2) + "\n")
    print(f"merged into {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    speed = commands.add_parser("speed", help="generation with and without the cache; relative logits")
    speed.add_argument("--weights", help="a trained transformer-melody (default: untrained, full-mode size)")
    speed.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    speed.add_argument("--repeats", type=int, default=7)
    speed.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 512, 1024])
    run = commands.add_parser("budget", help="melody RNN and absolute-position Transformer with a CPU clock")
    run.add_argument("--out", required=True, help="folder for the runs and budget.json")
    run.add_argument("--run", choices=("rnn", "absolute"), required=True)
    run.add_argument("--steps", type=int, required=True, help="optimizer steps of the run")
    scored = commands.add_parser("quality", help="test NLL, copy rates and MGEval overlap of both shipped models")
    scored.add_argument("--melodies", type=int, default=200)
    scored.add_argument("--budget", help="the --out folder of `budget`: write everything into the shipped sidecar")
    merge = commands.add_parser("merge", help="write quality.json and the budget runs into the shipped sidecar")
    merge.add_argument("--budget", required=True, help="the --out folder of `budget` and `quality`")
    args = parser.parse_args()
    torch.set_num_threads(getattr(args, "threads", 1))
    print(f"torch threads: {torch.get_num_threads()}")
    if args.command == "budget":
        budget(Path(args.out), args.run, args.steps)
    elif args.command == "quality":
        quality(args.melodies, args.budget)
    elif args.command == "merge":
        merge_into_sidecar(args.budget)
    else:
        model = transformer.load_pretrained(path=args.weights)[0] if args.weights else full_mode_model()
        config = model.config
        print(f"model: {config.position} position, {config.n_layers} layers, d_model {config.d_model}, "
              f"{sum(p.numel() for p in model.parameters())} parameters")
        bench_generation(model, args.repeats)
        bench_relative_logits(args.lengths, config.n_heads, config.d_model // config.n_heads, args.repeats)


if __name__ == "__main__":
    main()
