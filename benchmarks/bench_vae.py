"""Chapter 6 figures: the shipped VAEs measured on held-out data, and widget interaction times.

    MUSICLAB_MODE=full python benchmarks/bench_vae.py [--melody PATH] [--timbre PATH]

Melody VAE: greedy and teacher-forced 2-bar reconstruction accuracy (all tokens and note-on
tokens) on every 2-bar slice of the test split, overall and per region, with the always-hold
baseline; total KL, active units; Jensen-Shannon divergences between 1,000 prior samples and the
held-out slices (randomly transposed, as in training) on pitch-class, interval and note-length
histograms. Timbre VAE: 5-NN instrument
accuracy on held-out pitches in latent space and on raw log-mels. Widgets: the median time of one
interaction (decode + figure + audio), over 5 repeats.
"""
from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from musiclab import audio, config, datasets, losses, metrics, plot, recipes, symbolic  # noqa: E402
from musiclab.models import vae  # noqa: E402
from timing import median_ms  # noqa: E402  (benchmarks/timing.py)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--melody", help="melody VAE weights (default: the shipped ones)")
    parser.add_argument("--timbre", help="timbre VAE weights (default: the shipped ones)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    melody, sidecar = vae.load_pretrained("vae-melody", args.melody)
    print(f"mode {config.get_mode()}; melody VAE from: {sidecar['command']} ({sidecar['wall_time_s']} s)")
    test_tunes = datasets.load_folk("test")
    tokens = recipes.vae.melody_slices(test_tunes, transpose=None)
    scores = vae.reconstruction_accuracy(melody, tokens)
    print("\n| test slices | greedy | teacher-forced | greedy note-on | teacher-forced note-on | always-hold |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = [("all regions", scores)]
    for region in sorted({t.region for t in test_tunes}):
        rows.append((region, vae.reconstruction_accuracy(
            melody, recipes.vae.melody_slices([t for t in test_tunes if t.region == region], transpose=None))))
    for name, s in rows:
        print(f"| {name} ({s['n_slices']}) | {s['greedy']:.3f} | {s['teacher_forced']:.3f} | {s['greedy_note_on']:.3f} "
              f"| {s['teacher_forced_note_on']:.3f} | {s['always_hold']:.3f} |")

    stats = vae.posterior_statistics(melody, tokens)
    print(f"\ntotal KL {stats['kl_per_dim'].sum():.1f} nats; active units {stats['active_units']}/{melody.config.z_dim}")
    generator = torch.Generator().manual_seed(0)
    samples = melody.decode(torch.randn(1000, melody.config.z_dim, generator=generator), temperature=1.0,
                            generator=generator).numpy()
    # the model was trained on randomly transposed slices: compare with held-out slices transposed alike
    torch.manual_seed(0)
    transposed = datasets.GridSliceDataset(test_tunes, n_bars=2)
    real = metrics.melody_statistics(np.stack([transposed[i].numpy() for i in range(len(transposed))]))
    fake = metrics.melody_statistics(samples)
    for key in ("pitch_class", "interval", "duration"):
        jsd = losses.js_divergence(torch.tensor(real[key]), torch.tensor(fake[key])).item()
        print(f"JSD(held-out, prior samples) on {key}: {jsd:.4f} nats")
    print(f"notes per bar: held-out {real['notes_per_bar']:.2f}, prior samples {fake['notes_per_bar']:.2f}")

    timbre, timbre_sidecar = vae.load_pretrained("vae-timbre", args.timbre)
    notes = vae.timbre_note_set(timbre.config)
    held_out = recipes.vae.timbre_split(notes)
    t_scores = recipes.vae.score_timbre(timbre, notes, held_out)
    print(f"\ntimbre VAE ({timbre_sidecar['command']}): 5-NN instrument accuracy on held-out pitches: latent "
          f"{t_scores['knn_latent']:.3f}, raw log-mel {t_scores['knn_log_mel']:.3f}; RMSE {t_scores['test_rmse']:.3f}")

    phrase_a, phrase_b = tokens[0], tokens[7]

    def melody_interaction():
        with torch.no_grad():
            mu, _ = melody.encode(torch.stack([phrase_a, phrase_b]))
            grid = melody.decode(vae.interpolate(mu[0], mu[1], 7))[3].numpy()
        notes_ = symbolic.grid_to_notes(grid)
        fig, ax = plt.subplots(figsize=(4.2, 2.0))
        plot.plot_notes(notes_, ax=ax)
        fig.canvas.draw()
        plt.close(fig)
        audio.render_notes(notes_, program=73)

    def timbre_interaction():
        with torch.no_grad():
            mu, _ = timbre.encode(torch.from_numpy(notes["x"][:2]))
            x = timbre.decode(vae.interpolate(mu[0], mu[1], 9, spherical=False))[4].numpy()
        fig, ax = plt.subplots(figsize=(3.4, 2.4))
        plot.plot_spectrogram(x * timbre.config.log_scale + timbre.config.log_center, sr=timbre.config.sr,
                              hop_length=timbre.config.hop_length, ax=ax)
        fig.canvas.draw()
        plt.close(fig)
        vae.timbre_to_audio(x, timbre.config)

    print(f"\none melody interpolation interaction: {median_ms(melody_interaction):.0f} ms (median of 5)")
    print(f"one timbre interpolation interaction: {median_ms(timbre_interaction):.0f} ms (median of 5)")


if __name__ == "__main__":
    main()
