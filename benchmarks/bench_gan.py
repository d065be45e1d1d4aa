"""Chapter 3: quality and speed of the conditional SpecGAN's checkpoint.

    python benchmarks/bench_gan.py [WEIGHTS] [--write-sidecar]

WEIGHTS defaults to the shipped ``musiclab/checkpoints/gan.safetensors``. Measures, on real notes the
GAN never saw (4 per condition, all 6 instruments x 25 pitches): pitch accuracy by librosa.pyin
(within 50 cents) of generated notes next to real ones, instrument accuracy of a classifier trained
on real notes and the Frechet distance in its embedding (real-vs-real floor), diversity of 100
samples of one condition, and the time of one widget interaction (generator + Griffin-Lim +
figure). ``--write-sidecar`` stores the figures in the weights' JSON sidecar under "evaluation".
"""
import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from musiclab import recipes  # noqa: E402
from musiclab.models import gan  # noqa: E402


def interaction_ms(generator, repeats: int = 10) -> tuple[float, float]:
    """Median wall and CPU milliseconds of one interaction (CPU time is what a machine that is not
    shared with other work would take as wall time, on one thread)."""
    cfg = generator.config
    gan.log_mel_to_audio(np.zeros((cfg.n_mels, cfg.n_frames)), cfg)  # load the vocoder once, outside the timing
    timings, cpu = [], []
    for k in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        log_mel = gan.generate_log_mel(generator, cfg.programs[k % len(cfg.programs)], cfg.pitches[k],
                                       gan.latent([k], cfg.z_dim))[0]
        gan.log_mel_to_audio(log_mel, cfg)
        fig, ax = plt.subplots(figsize=(5, 2.4), layout="constrained")  # as the chapter's latent_view
        ax.imshow(log_mel, origin="lower", aspect="auto", cmap="magma", vmin=-11.5, vmax=1.0)
        ax.set(xlabel="time (s)", ylabel="mel band", title="interaction")
        fig.canvas.draw()
        plt.close(fig)
        timings.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1000 * float(np.median(timings)), 1000 * float(np.median(cpu))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights", nargs="?", default=None)
    parser.add_argument("--write-sidecar", action="store_true")
    parser.add_argument("--n-per-condition", type=int, default=4)
    args = parser.parse_args()
    generator, sidecar = gan.load_pretrained("gan", args.weights)
    start = time.perf_counter()
    result = recipes.gan.evaluate_gan(generator, n_per_condition=args.n_per_condition)
    result["evaluation_time_s"] = round(time.perf_counter() - start, 1)
    wall_ms, cpu_ms = interaction_ms(generator)
    result["widget_interaction_ms"], result["widget_interaction_cpu_ms"] = round(wall_ms, 1), round(cpu_ms, 1)
    result["command"] = "python benchmarks/bench_gan.py" + (f" {args.weights}" if args.weights else "")
    for key, value in result.items():
        print(f"{key}: {value}")
    if args.write_sidecar:
        path = Path(args.weights or Path(gan.__file__).parents[1] / "checkpoints" / "gan.safetensors").with_suffix(".json")
        sidecar["evaluation"] = result
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(sidecar, indent=2))
        tmp.replace(path)  # atomic: a crash never leaves half a sidecar
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
