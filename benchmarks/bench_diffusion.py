"""Chapter 7: the latent diffusion model of notes against the chapter-3 GAN, on the GAN chapter's evaluation.

    python benchmarks/bench_diffusion.py [WEIGHTS] [--write-sidecar] [--part quality|curves|all]

WEIGHTS defaults to the shipped ``musiclab/checkpoints/diffusion.safetensors``.

``--part quality`` (the default): both the diffusion model and the shipped chapter-3 GAN through
`recipes.gan.evaluate_gan` in one process, so with the same instrument classifier and the same
held-out notes (4 per condition, all 6 instruments x 25 pitches): pitch within 50 cents and
instrument accuracy relative to real notes, the Frechet distance in the classifier's embedding
(real-vs-real floor), diversity of 100 samples of violin G4; for both, the nearest-training-note
distance of `memorisation.gan_nearest_training_distances` (the chapter-15 check) and the time to
sample 16 notes on one CPU thread (diffusion: the recommended sampler; GAN: one forward pass); and
the time of one explorer interaction.

``--part curves``: quality against the number of DDIM steps and against the guidance weight, on a
subset (5 pitches x 6 instruments x 2 notes, a classifier trained on 1 real note per condition).
``--part ceiling``: the Frechet distance of real notes sent through the same log-mel inversion
(Griffin-Lim), with the quality part's classifier and notes (`recipes.gan.evaluate_gan` without the
pitch tracking, so a few minutes); both models' own distances are measured again beside it and must
equal the quality part's. Stored as ``frechet_real_roundtrip`` in "evaluation".

``--part vocoder``: the same Frechet distances and instrument accuracy (no pitch tracking) with the
shipped neural vocoder (`models.vocoder`) as the way back to sound instead of Griffin-Lim, for the
classifier's training notes, the real round trip and both models. Stored as "evaluation_vocoder".

The parts can run at the same time; ``--write-sidecar`` stores each in the weights' sidecar
("evaluation", "curves"), where the chapter reads them.
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
from musiclab.models import diffusion, gan, vocoder  # noqa: E402
from musiclab.widgets import diffusion as diffusion_widgets  # noqa: E402

CURVE_STEPS = (1, 2, 5, 20, 50)
CURVE_GUIDANCE = (0.0, 1.0, 3.0)
CURVE_SUBSET = dict(n_per_condition=2, pitches=[55, 61, 67, 73, 79], n_classifier=1, progress=False)
CURVE_KEYS = ("pitch_accuracy_ratio", "instrument_accuracy_ratio", "frechet_generated", "frechet_real_floor",
              "diversity_mean_distance_generated", "diversity_mean_distance_real")


def interaction_ms(model, repeats: int = 10) -> tuple[float, float]:
    """Median wall and CPU milliseconds of one explorer interaction: a DDIM run of one note with
    every step kept, the figure of its last step and its audio (Griffin-Lim)."""
    cfg = model.config
    gan.log_mel_to_audio(np.zeros((cfg.n_mels, cfg.n_frames)), cfg)  # load the vocoder once, outside the timing
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
                setting = (value, recommended[1]) if axis == "steps" else (recommended[0], value)
                cfg.sampler_steps, cfg.guidance_scale = setting
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


def quality(model, generator, weights, n_per_condition: int) -> dict:
    """Both models through `recipes.gan.evaluate_gan` in this one process (the same classifier and
    held-out notes), plus memorisation, sampling time and the explorer's interaction time."""
    result = {}
    for name, net in (("diffusion", model), ("gan", generator)):
        start = time.perf_counter()
        scores = recipes.gan.evaluate_gan(net, n_per_condition=n_per_condition)
        scores["evaluation_time_s"] = round(time.perf_counter() - start, 1)
        scores["sampling_time_16_notes_s"] = round(recipes.diffusion.time_sampling(net), 4)
        scores.update(nearest_training(net))
        if name == "diffusion":
            result.update(scores)
        else:
            result["gan"] = scores
        print(f"{name}: {scores}", flush=True)
    wall_ms, cpu_ms = interaction_ms(model)
    result["widget_interaction_ms"], result["widget_interaction_cpu_ms"] = round(wall_ms, 1), round(cpu_ms, 1)
    result["command"] = "python benchmarks/bench_diffusion.py" + (f" {weights}" if weights else "")
    return result


def ceiling(model, generator, stored: dict) -> dict:
    """``stored`` (the quality part's "evaluation") with ``frechet_real_roundtrip`` set, after checking
    that this run reproduces the stored Frechet distances of both models and the floor."""
    for name, net, reference in (("diffusion", model, stored), ("gan", generator, stored["gan"])):
        scores = recipes.gan.evaluate_gan(net, pitch=False, progress=False)
        print(f"{name}: {scores}", flush=True)
        for key in ("frechet_generated", "frechet_real_floor"):
            assert abs(scores[key] - reference[key]) < 1e-3, f"{name} {key}: {scores[key]} here, {reference[key]} stored"
        reference["frechet_real_roundtrip"] = scores["frechet_real_roundtrip"]
    return stored


def through_vocoder(model, generator) -> dict:
    """Both models scored by `recipes.gan.evaluate_gan` with the shipped vocoder as the inverter."""
    voc = vocoder.load_pretrained("vocoder")[0]
    result = {"inverter": "vocoder (musiclab/checkpoints/vocoder.safetensors)"}
    for name, net in (("diffusion", model), ("gan", generator)):
        scores = recipes.gan.evaluate_gan(net, pitch=False, progress=False,
                                          inverter=lambda log_mel_spec: vocoder.log_mel_to_audio(voc, log_mel_spec))
        result[name] = {k: scores[k] for k in ("instrument_accuracy_ratio", "frechet_generated", "frechet_real_floor",
                                               "frechet_real_roundtrip")}
        print(f"{name}: {result[name]}", flush=True)
    return result


def store(path: Path, key: str, value) -> None:
    """Set ``key`` in the JSON sidecar at ``path``, re-read just before (the quality and the curves
    parts may run at the same time), written atomically."""
    sidecar = json.loads(path.read_text())
    sidecar[key] = value
    tmp = path.with_name(f".{path.name}.{key}.tmp")
    tmp.write_text(json.dumps(sidecar, indent=2))
    tmp.replace(path)  # atomic: a crash never leaves half a sidecar
    print(f"wrote {key} to {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights", nargs="?", default=None)
    parser.add_argument("--write-sidecar", action="store_true")
    parser.add_argument("--part", choices=("quality", "curves", "ceiling", "vocoder", "all"), default="quality",
                        help="quality: the table against the GAN; curves: steps and guidance; ceiling: real notes "
                             "through the inversion (after quality); vocoder: the same with the neural vocoder; "
                             "all: quality and curves")
    parser.add_argument("--n-per-condition", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _ = diffusion.load_pretrained("diffusion", args.weights)
    path = Path(args.weights or Path(diffusion.__file__).parents[1] / "checkpoints" / "diffusion.safetensors")
    parts = {}
    if args.part in ("quality", "all"):
        parts["evaluation"] = quality(model, gan.load_pretrained("gan")[0], args.weights, args.n_per_condition)
    if args.part in ("curves", "all"):
        parts["curves"] = curves(model)
    if args.part == "ceiling":
        stored = json.loads(path.with_suffix(".json").read_text())["evaluation"]
        parts["evaluation"] = ceiling(model, gan.load_pretrained("gan")[0], stored)
    if args.part == "vocoder":
        parts["evaluation_vocoder"] = through_vocoder(model, gan.load_pretrained("gan")[0])
    for key, value in parts.items():
        print(f"{key}: {json.dumps(value)}")
        if args.write_sidecar:
            store(path.with_suffix(".json"), key, value)


if __name__ == "__main__":
    main()
