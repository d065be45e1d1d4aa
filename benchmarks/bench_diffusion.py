"""Chapter 7: the latent diffusion model of notes against the chapter-3 GAN, on the GAN chapter's evaluation.

    python benchmarks/bench_diffusion.py [WEIGHTS] [--write-sidecar] [--curves]

WEIGHTS defaults to the shipped ``musiclab/checkpoints/diffusion.safetensors``, whose quality figures
the recipe measured at the end of training (the same `recipes.gan.evaluate_gan` call, kept in its
sidecar's metrics); other weights are measured here. Quality: with
`recipes.gan.evaluate_gan` on the same held-out notes as the GAN (4 per condition, all 6 instruments
x 25 pitches): pitch within 50 cents and instrument accuracy relative to real notes, the Frechet
distance in the classifier's embedding (real-vs-real floor), diversity of 100 samples of violin G4;
the nearest-training-note distance of `memorisation.gan_nearest_training_distances` (the chapter-14
check) for both models; the time to sample 16 notes on one CPU thread (diffusion: the recommended
sampler; GAN: one forward pass), and one widget interaction. The GAN's quality figures are those its
own benchmark stored in ``gan.json`` (``python benchmarks/bench_gan.py --write-sidecar``).

``--curves`` also measures quality against the number of DDIM steps and against the guidance weight,
on a subset (7 pitches x 6 instruments x 2 notes, a classifier trained on 1 real note per condition).
``--write-sidecar`` stores everything in the weights' sidecar under "evaluation" (and "curves"),
where the chapter reads it.
"""
import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from musiclab import memorisation, recipes  # noqa: E402
from musiclab.models import diffusion, gan  # noqa: E402
from musiclab.widgets import diffusion as diffusion_widgets  # noqa: E402

CURVE_STEPS = (1, 2, 5, 10, 20, 50)
CURVE_GUIDANCE = (0.0, 1.0, 2.0, 3.0, 5.0)
CURVE_SUBSET = dict(n_per_condition=2, pitches=[55, 59, 63, 67, 71, 75, 79], n_classifier=1, progress=False)
CURVE_KEYS = ("pitch_accuracy_ratio", "instrument_accuracy_ratio", "frechet_generated", "frechet_real_floor",
              "diversity_mean_distance_generated", "diversity_mean_distance_real")


def interaction_ms(model, repeats: int = 10) -> tuple[float, float]:
    """Median wall and CPU milliseconds of one explorer interaction: a DDIM run of one note with
    every step kept, the figure of its last step and its audio (Griffin-Lim)."""
    cfg = model.config
    gan.log_mel_to_audio(np.zeros((cfg.n_mels, cfg.n_frames)), cfg)  # build the cached pseudo-inverse
    timings, cpu = [], []
    for k in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run = diffusion_widgets.sample_trajectory(model, cfg.programs[k % len(cfg.programs)], cfg.pitches[k],
                                                  cfg.guidance_scale, cfg.sampler_steps, k)
        fig = diffusion_widgets.step_figure(run, len(run.steps) - 1)
        fig.canvas.draw()
        plt.close(fig)
        gan.log_mel_to_audio(run.final, cfg)
        timings.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1000 * float(np.median(timings)), 1000 * float(np.median(cpu))


def nearest_training(generator) -> dict:
    """Median RMS log-mel distance (nats) to the nearest training note of the same condition, of 600
    generated and 600 held-out real notes, and the share of generated notes nearer than the median real one."""
    distances = memorisation.gan_nearest_training_distances(generator)
    held_out_median = float(np.median(distances["held_out"]))
    return {"nearest_training_generated_median": round(float(np.median(distances["generated"])), 4),
            "nearest_training_held_out_median": round(held_out_median, 4),
            "nearest_training_generated_min": round(float(distances["generated"].min()), 4),
            "nearer_than_median_real": round(float(np.mean(distances["generated"] < held_out_median)), 4)}


def curves(model) -> dict:
    """Quality on `CURVE_SUBSET` against the DDIM steps (guidance as recommended) and against the
    guidance weight (steps as recommended)."""
    cfg = model.config
    recommended = (cfg.sampler_steps, cfg.guidance_scale)
    result = {"subset": {k: v for k, v in CURVE_SUBSET.items() if k != "progress"}, "steps": {}, "guidance": {}}
    try:
        for axis, values in (("steps", CURVE_STEPS), ("guidance", CURVE_GUIDANCE)):
            for value in values:
                cfg.sampler_steps, cfg.guidance_scale = (value, recommended[1]) if axis == "steps" else (recommended[0], value)
                if (cfg.sampler_steps, cfg.guidance_scale) == recommended and axis == "guidance":
                    result[axis][str(value)] = result["steps"][str(recommended[0])]  # the same run
                    continue
                start = time.perf_counter()
                scores = recipes.gan.evaluate_gan(model, **CURVE_SUBSET)
                result[axis][str(value)] = {k: scores[k] for k in CURVE_KEYS}
                print(f"{axis} {value}: {result[axis][str(value)]} ({time.perf_counter() - start:.0f} s)", flush=True)
    finally:
        cfg.sampler_steps, cfg.guidance_scale = recommended
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights", nargs="?", default=None)
    parser.add_argument("--write-sidecar", action="store_true")
    parser.add_argument("--curves", action="store_true")
    parser.add_argument("--n-per-condition", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, sidecar = diffusion.load_pretrained("diffusion", args.weights)
    generator, gan_sidecar = gan.load_pretrained("gan")
    if "frechet_generated" in sidecar["metrics"] and args.weights is None:
        # the recipe ends with this same evaluation (`recipes.diffusion.DiffusionSettings.eval_per_condition`)
        result = {k: v for k, v in sidecar["metrics"].items() if k.startswith(("real_", "generated_", "pitch_",
                                                                             "instrument_", "frechet", "diversity", "n_"))}
        result["quality_measured_by"] = sidecar["command"]
    else:
        start = time.perf_counter()
        result = recipes.gan.evaluate_gan(model, n_per_condition=args.n_per_condition)
        result["evaluation_time_s"] = round(time.perf_counter() - start, 1)
    result["sampling_time_16_notes_s"] = round(recipes.diffusion.time_sampling(model), 3)
    result.update(nearest_training(model))
    wall_ms, cpu_ms = interaction_ms(model)
    result["widget_interaction_ms"], result["widget_interaction_cpu_ms"] = round(wall_ms, 1), round(cpu_ms, 1)
    result["gan"] = {**{k: gan_sidecar["evaluation"][k] for k in ("pitch_accuracy_ratio", "instrument_accuracy_ratio",
                                                                 "frechet_generated", "frechet_real_floor",
                                                                 "diversity_mean_distance_generated",
                                                                 "diversity_mean_distance_real")},
                     **nearest_training(generator), "sampling_time_16_notes_s": round(recipes.diffusion.time_sampling(generator), 4)}
    result["command"] = "python benchmarks/bench_diffusion.py" + (f" {args.weights}" if args.weights else "")
    for key, value in result.items():
        print(f"{key}: {value}", flush=True)
    if args.curves:
        sidecar["curves"] = curves(model)
    if args.write_sidecar:
        path = Path(args.weights or Path(diffusion.__file__).parents[1] / "checkpoints" / "diffusion.safetensors")
        path = path.with_suffix(".json")
        sidecar["evaluation"] = result
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(sidecar, indent=2))
        tmp.replace(path)  # atomic: a crash never leaves half a sidecar
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
